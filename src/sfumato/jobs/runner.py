"""Run one request end to end: load the model, generate, save every picture to the archive.

The CLI calls this directly; the job worker calls it for each job it claims.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

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
    from sfumato.postprocess.steps import StepContext


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
    if request.postprocess:
        from sfumato.postprocess.steps import check_step_sizes, check_steps

        check_steps(request.postprocess)
        check_step_sizes(settings, request)
    if settings.blocklists:
        from sfumato.analysis.blocklist import load_blocklists, request_prompts

        load_blocklists(settings.blocklists).check(request_prompts(request))
    if request.init_image is not None and (request.outpaint or request.upscale):
        from sfumato.core.images import load_image
        from sfumato.core.request import check_canvas, grown_size

        size = load_image(request.init_image, "init image").size
        check_canvas(*grown_size(request, size), settings.max_canvas_side)
    if request.postprocess:
        from sfumato.postprocess.face_steps import check_face_steps

        check_face_steps(settings, request)


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
    steps = _step_context(settings, components, output.notes, cancel)

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
        for generated in result.images:
            crops: list[Any] = []
            item = generated
            if item.recipe.anatomy_gate is not None:
                with timings.measure("anatomy gate"):
                    item = _gate(settings, components, item, output.notes, cancel, steps.resolve)
            if job.postprocess:
                with timings.measure("post-processing"):
                    item, crops = _postprocessed(item, job, steps)
            filtered = _nsfw_filtered(settings, job, item, output.notes)  # the final picture is checked
            if filtered is None:
                continue
            item = filtered
            with timings.measure("save and index"):
                record = archive.save(item, format=image_format)
                if settings.embed_on_save:
                    _remember(settings, record, output.notes)
                picture = SavedPicture(record=record, item=item, file=archive.path_of(record))
                _save_crops(picture, crops)
                saved.append(picture)
                output.pictures.append(picture)
                if on_saved is not None:
                    on_saved(picture)
        return saved

    for picture in render(request):
        if request.fix_crop:
            _fix_crop(settings, picture, render, output.notes)
    return output


def _step_context(
    settings: Settings, components: Components, notes: list[str], cancel: CancelToken | None
) -> StepContext:
    from sfumato.postprocess.steps import StepContext
    from sfumato.prompts.networks import LibraryResolver

    return StepContext(
        settings=settings,
        notes=notes,
        components=components,
        cancel=cancel,
        resolve=LibraryResolver(settings),
    )


def _postprocessed(
    item: GeneratedImage, job: GenerationRequest, context: StepContext
) -> tuple[GeneratedImage, list[Any]]:
    """The picture after the request's post-processing steps, in order, with what A1111 writes for them,
    and the detailer's crops when it keeps them."""
    from dataclasses import replace

    from sfumato.postprocess.steps import infotext_params, run_steps

    context.recipe, context.crops, context.infotext = item.recipe, [], {}
    picture = run_steps(item.image, job.postprocess, context)
    extra = {**item.extra, **infotext_params(job.postprocess), **context.infotext}
    return replace(item, image=picture, extra=extra), context.crops


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


def _gate(
    settings: Settings,
    components: Components,
    item: GeneratedImage,
    notes: list[str],
    cancel: CancelToken | None,
    resolve: Any,
) -> GeneratedImage:
    from sfumato.archive.files import save_image
    from sfumato.engine.generate import generate
    from sfumato.models.loading import BUILTIN_MODEL
    from sfumato.postprocess.anatomy_gate import NOT_CHECKED, checker_for, rejected_folder, run_gate

    gate = item.recipe.anatomy_gate
    assert gate is not None
    check = checker_for(components.info.name == BUILTIN_MODEL)
    if check is None:
        if NOT_CHECKED not in notes:
            notes.append(NOT_CHECKED)
        return item

    def render(seed: int) -> GeneratedImage:
        result = generate(
            components, item.recipe.model_copy(update={"seed": seed}), cancel=cancel, resolve=resolve
        )
        return replace(result.images[0], index=item.index)

    outcome = run_gate(item, gate, check, render)
    notes += outcome.notes
    folder = rejected_folder(settings.outputs, gate)
    if folder is not None:
        for rejected in outcome.rejected:
            save_image(rejected, folder)
        if outcome.rejected:
            notes.append(f"Anatomy gate: {len(outcome.rejected)} set-aside picture(s) kept in {folder}.")
    return outcome.item


def _save_crops(picture: SavedPicture, crops: list[Any]) -> None:
    """The detailer's re-rendered crops, each a PNG of its own beside the picture (for compositing)."""
    import io

    from sfumato.archive.files import save_bytes

    for crop in crops:
        buffer = io.BytesIO()
        crop.save(buffer, format="PNG")
        save_bytes(buffer.getvalue(), picture.file.parent, picture.item.recipe.seed, "detail-crop", ".png")
