"""Run one request end to end: load the model, generate, save every picture to the archive.

The CLI calls this directly; the job worker calls it for each job it claims.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from sfumato.core.errors import SfumatoError
from sfumato.core.events import CancelToken, ProgressCallback
from sfumato.core.images import ImageFormat
from sfumato.core.request import GenerationRequest
from sfumato.core.result import GeneratedImage
from sfumato.core.settings import Settings
from sfumato.core.timing import Timings

if TYPE_CHECKING:
    from sfumato.archive.index import Record
    from sfumato.models.cache import ModelCache
    from sfumato.models.components import Components


@dataclass(frozen=True)
class SavedPicture:
    record: Record  # the archive's entry; its path is relative to the outputs folder
    item: GeneratedImage  # the picture and the recipe that reproduces it
    file: Path  # where it was written


@dataclass
class RunOutput:
    pictures: list[SavedPicture] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # things the user should know (fp32 VAE retry…)
    timings: dict[str, float] = field(default_factory=dict)  # seconds per phase, model load to save


def check_limits(settings: Settings, request: GenerationRequest) -> None:
    """What the settings forbid, checked before any model is loaded or file written."""
    if settings.blocklists:
        from sfumato.analysis.blocklist import load_blocklists, request_prompts

        load_blocklists(settings.blocklists).check(request_prompts(request))
    if request.init_image is not None and (request.outpaint or request.upscale):
        from sfumato.core.images import load_image
        from sfumato.core.request import check_canvas, grown_size

        size = load_image(request.init_image, "init image").size
        check_canvas(*grown_size(request, size), settings.max_canvas_side)


def run_request(
    settings: Settings,
    request: GenerationRequest,
    *,
    on_progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
    components: Components | None = None,
    cache: ModelCache | None = None,
    image_format: ImageFormat = "png",
    on_saved: Callable[[SavedPicture], None] | None = None,
) -> RunOutput:
    """``cache`` keeps models loaded between runs (the server's worker owns one)."""
    from sfumato.archive.index import Archive
    from sfumato.engine.generate import generate
    from sfumato.models.loading import load_model
    from sfumato.prompts.networks import LibraryResolver

    check_limits(settings, request)
    timings = Timings()
    if components is None:
        with timings.measure("model load"):
            components = load_model(settings, request.model, vae=request.vae, cache=cache)
    archive = Archive(settings)
    output = RunOutput(notes=list(components.notes), timings=timings.seconds)

    def render(job: GenerationRequest) -> list[SavedPicture]:
        assert components is not None
        result = generate(
            components,
            job,
            on_progress=on_progress,
            cancel=cancel,
            preview_every=settings.preview_every,
            resolve=LibraryResolver(settings),
        )
        output.notes += [note for note in result.notes if note not in output.notes]
        timings.add(result.timings)
        saved = []
        with timings.measure("save and index"):
            for generated in result.images:
                item = _nsfw_filtered(settings, job, generated, output.notes)
                if item is None:
                    continue
                record = archive.save(item, format=image_format)
                if settings.embed_on_save:
                    _remember(settings, record, output.notes)
                picture = SavedPicture(record=record, item=item, file=archive.path_of(record))
                saved.append(picture)
                output.pictures.append(picture)
                if on_saved is not None:
                    on_saved(picture)
        return saved

    for picture in render(request):
        if request.fix_crop:
            _fix_crop(settings, picture, render, output.notes)
    return output


def _nsfw_filtered(
    settings: Settings, job: GenerationRequest, item: GeneratedImage, notes: list[str]
) -> GeneratedImage | None:
    mode = job.nsfw_filter or settings.nsfw_filter
    if mode == "off":
        return item
    from sfumato.analysis.nsfw import apply_filter

    kept, note = apply_filter(item, mode, settings)
    if note:
        notes.append(note)
    return kept


def _remember(settings: Settings, record: Record, notes: list[str]) -> None:
    """Concept search embeds on save when asked; a CLIP that fails here must not lose the picture."""
    from sfumato.analysis.archive_search import remember_picture

    try:
        remember_picture(settings, record)
    except SfumatoError as error:
        note = f"Not embedded for concept search: {error}"
        if note not in notes:
            notes.append(note)


def _fix_crop(
    settings: Settings,
    picture: SavedPicture,
    render: Callable[[GenerationRequest], list[SavedPicture]],
    notes: list[str],
) -> None:
    """generate --fix-crop: the saved picture outpainted where its subject is cut off, saved beside it."""
    from sfumato.core.errors import InvalidRequest
    from sfumato.jobs.fix_crop import fix_crop_request

    try:
        fix = fix_crop_request(str(picture.file))
        check_limits(settings, fix)
    except InvalidRequest as error:
        notes.append(f"{picture.file.name} was not fixed: {error.message}")
        return
    render(fix)
