"""Stylise a clip's keyframes with one prompt and seed, and write an EbSynth project folder.

EbSynth paints the frames between keyframes from the stylised keyframes; it expects a folder with the
source frames (``video/0001.png`` …) and the stylised keyframes named by their frame number
(``keys/0001.png``, ``keys/0011.png`` …), at the frames' size. The folder appears under its final
name only complete; ``preview.mp4`` shows each frame beside the keyframe EbSynth would start from.

Every keyframe is an img2img request of its own, saved to the archive with its recipe. With
``frozen_noise`` every keyframe uses the seed itself, so the starting noise and the encode noise are
the same for every frame; without it keyframe k uses seed + k, as the pictures of a batch do.
"""

from __future__ import annotations

import secrets
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from sfumato.core.errors import InvalidRequest, OutputError
from sfumato.core.request import MAX_SIDE, MIN_SIDE, GenerationRequest
from sfumato.engine.keyframes import KeyframeChoice, consistency_ratio, scene_change, thumbnail

if TYPE_CHECKING:
    from PIL import Image

    from sfumato.archive.video import Clip
    from sfumato.core.events import CancelToken, ProgressCallback
    from sfumato.core.settings import Settings

FRAMES_FOLDER = "video"
KEYS_FOLDER = "keys"
PREVIEW = "preview.mp4"
MIN_DIGITS = 4  # EbSynth's default pattern is [####]

README = """\
EbSynth project made by Sfumato
===============================

{frames} source frames are in {video}/ and {keys} stylised keyframe(s) in {keys_folder}/
(frames {numbers}), each named by its frame number with {digits} digits, at the frames' size.

In EbSynth (ebsynth.com):
1. Drag the {video} folder onto "Video" (or type {video}/{pattern}.png).
2. Drag the {keys_folder} folder onto "Keyframes" (or type {keys_folder}/{pattern}.png).
3. Keep the "Output" EbSynth proposes (one out_ folder per keyframe) and press "Run All".
4. Each keyframe's folder holds the frames painted from it; blend neighbouring folders where they
   overlap (EbSynth's "Export to AE"), or take for each frame the folder of the nearest keyframe.

{preview} shows each source frame beside the keyframe it is stylised from.
The recipe of every keyframe (prompt, seed, frozen noise…) is stored in the picture Sfumato saved
to its archive; consistency (stylised change / source change between keyframes): {consistency}.
"""


@dataclass
class Keyframe:
    number: int  # 1-based frame number
    source: Image.Image  # the frame as it is in the clip


@dataclass
class KeyframeProject:
    """A project folder being written: the frames are in place, the keyframes not yet stylised."""

    folder: Path  # where it will appear when complete
    work: Path  # where it is written meanwhile
    fps: float
    frame_count: int = 0
    keyframes: list[Keyframe] = field(default_factory=list)

    @property
    def digits(self) -> int:
        return max(MIN_DIGITS, len(str(self.frame_count)))

    def name(self, number: int) -> str:
        return f"{number:0{self.digits}d}.png"


@dataclass(frozen=True)
class KeyframesResult:
    folder: Path
    keyframes: list[int]  # frame numbers
    consistency: float | None
    pictures: list[Path] = field(default_factory=list)  # the archived stylised keyframes
    notes: list[str] = field(default_factory=list)


def start_project(clip: Clip, choice: KeyframeChoice, folder: Path) -> KeyframeProject:
    """Write the clip's frames into a hidden folder beside ``folder`` and pick the keyframes."""
    if folder.exists():
        raise OutputError(f"{str(folder)!r} already exists.", "Choose another output folder or remove it.")
    work = folder.parent / f".{folder.name}.sfumato-{secrets.token_hex(4)}.tmp"
    try:
        (work / FRAMES_FOLDER).mkdir(parents=True)
        (work / KEYS_FOLDER).mkdir()
    except OSError as error:
        raise OutputError(f"The folder {str(folder)!r} could not be made: {error.strerror}.") from None
    project = KeyframeProject(folder=folder, work=work, fps=clip.fps)
    try:
        previous = None
        for number, frame in enumerate(clip.frames(), start=1):
            small = thumbnail(frame) if choice.scene_changes else None
            change = None if previous is None or small is None else scene_change(previous, small)
            previous = small
            frame.save(work / FRAMES_FOLDER / f"{number:0{MIN_DIGITS}d}.png")
            project.frame_count = number
            if choice.is_keyframe(number, change):
                project.keyframes.append(Keyframe(number, frame))
        if project.frame_count == 0:
            raise InvalidRequest(
                f"{str(clip.path)!r} has no frames.", "Give a video with at least one frame."
            )
        choice.check_found(project.frame_count)
        _widen_names(project)
    except BaseException:
        discard(project)
        raise
    return project


def _widen_names(project: KeyframeProject) -> None:
    """Past 9999 frames every name gets as many digits as the last one, so names sort in order."""
    if project.digits == MIN_DIGITS:
        return
    frames = project.work / FRAMES_FOLDER
    for number in range(1, project.frame_count + 1):
        (frames / f"{number:0{MIN_DIGITS}d}.png").rename(frames / project.name(number))


def discard(project: KeyframeProject) -> None:
    shutil.rmtree(project.work, ignore_errors=True)


def render_size(request: GenerationRequest, frame: Image.Image) -> tuple[int, int]:
    """The request's size when given, else the frame's, in multiples of 8 the model can take."""

    def side(value: int) -> int:
        return max(MIN_SIDE, min(MAX_SIDE, round(value / 8) * 8))

    return request.width or side(frame.width), request.height or side(frame.height)


def keyframe_requests(project: KeyframeProject, base: GenerationRequest) -> list[GenerationRequest]:
    """One img2img request per keyframe: the frame as init picture (inline, so the recipe keeps it)."""
    from sfumato.core.images import to_data_uri
    from sfumato.engine.seeds import image_seed, resolve_seed

    seed = resolve_seed(base.seed)
    variation = resolve_seed(base.variation_seed)
    requests = []
    for index, key in enumerate(project.keyframes):
        offset = 0 if base.frozen_noise else index
        width, height = render_size(base, key.source)
        requests.append(
            base.model_copy(
                update={
                    "init_image": to_data_uri(key.source),
                    "width": width,
                    "height": height,
                    "seed": image_seed(seed, offset),
                    "variation_seed": image_seed(variation, offset),
                    "batch_size": 1,
                    "batch_count": 1,
                }
            )
        )
    return requests


def finish_project(project: KeyframeProject, stylised: list[Image.Image]) -> KeyframesResult:
    """Write the keyframes, the preview and the README, then move the folder to its final name."""
    from PIL import Image

    from sfumato.archive.video import write_mp4

    try:
        keys: dict[int, Image.Image] = {}
        for key, picture in zip(project.keyframes, stylised, strict=True):
            sized = picture.convert("RGB").resize(key.source.size, Image.Resampling.LANCZOS)
            sized.save(project.work / KEYS_FOLDER / project.name(key.number))
            keys[key.number] = sized
        ratio = consistency_ratio(*_comparable(project, stylised))
        write_mp4(project.work / PREVIEW, _preview_frames(project, keys), project.fps)
        (project.work / "README.txt").write_text(_readme(project, ratio), encoding="utf-8")
        project.work.rename(project.folder)
    except OSError as error:
        discard(project)
        raise OutputError(f"The project {str(project.folder)!r} could not be written: {error}.") from None
    except BaseException:
        discard(project)
        raise
    return KeyframesResult(project.folder, [key.number for key in project.keyframes], ratio)


def _comparable(project: KeyframeProject, stylised: list[Image.Image]) -> tuple[list, list]:
    """Source and stylised keyframes at one size (the first render's), so changes compare."""
    from PIL import Image

    size = stylised[0].size
    sources = [key.source.resize(size, Image.Resampling.LANCZOS) for key in project.keyframes]
    return sources, [p.convert("RGB").resize(size, Image.Resampling.LANCZOS) for p in stylised]


def _preview_frames(project: KeyframeProject, keys: dict[int, Image.Image]):
    """Each source frame beside the keyframe at or before it, at the first frame's size."""
    from PIL import Image

    first = project.keyframes[0].number
    current = keys[first]
    size = project.keyframes[0].source.size
    for number in range(1, project.frame_count + 1):
        current = keys.get(number, current)
        with Image.open(project.work / FRAMES_FOLDER / project.name(number)) as frame:
            source = frame.convert("RGB").resize(size)
        sheet = Image.new("RGB", (size[0] * 2, size[1]))
        sheet.paste(source, (0, 0))
        sheet.paste(current.resize(size), (size[0], 0))
        yield sheet


def _readme(project: KeyframeProject, ratio: float | None) -> str:
    numbers = [key.number for key in project.keyframes]
    shown = ", ".join(map(str, numbers[:20])) + (" …" if len(numbers) > 20 else "")
    return README.format(
        frames=project.frame_count,
        keys=len(numbers),
        video=FRAMES_FOLDER,
        keys_folder=KEYS_FOLDER,
        numbers=shown,
        digits=project.digits,
        pattern="[" + "#" * project.digits + "]",
        preview=PREVIEW,
        consistency=describe_consistency(ratio),
    )


def describe_consistency(ratio: float | None) -> str:
    if ratio is None:
        return "not measurable (needs two keyframes whose source frames differ)"
    return f"{ratio:.3f}"


def default_folder(settings: Settings, source: Path) -> Path:
    import time

    stamp = time.strftime("%Y%m%d-%H%M%S")
    base = settings.outputs / "ebsynth" / f"{source.stem or 'clip'}-{stamp}"
    folder, count = base, 1
    while folder.exists():  # two runs in one second
        count += 1
        folder = base.with_name(f"{base.name}-{count}")
    return folder


def run_keyframes(
    settings: Settings,
    clip: Clip,
    choice: KeyframeChoice,
    base: GenerationRequest,
    folder: Path,
    *,
    on_progress: ProgressCallback | None = None,
    on_keyframe: Callable[[int, int], None] | None = None,
    cancel: CancelToken | None = None,
) -> KeyframesResult:
    """The CLI's path: every keyframe rendered here with one loaded model, then the project written."""
    from sfumato.jobs.runner import run_request
    from sfumato.models.cache import ModelCache

    if base.init_image is not None or base.mask is not None:
        raise InvalidRequest("The keyframes are the init pictures.", "Leave out the init image and mask.")
    folder.parent.mkdir(parents=True, exist_ok=True)
    project = start_project(clip, choice, folder)
    cache = ModelCache(settings.model_cache_bytes)
    stylised: list[Image.Image] = []
    files: list[Path] = []
    notes: list[str] = []
    try:
        requests = keyframe_requests(project, base)
        for done, request in enumerate(requests):
            if on_keyframe is not None:
                on_keyframe(done, len(requests))
            output = run_request(settings, request, on_progress=on_progress, cancel=cancel, cache=cache)
            picture = output.pictures[0]
            stylised.append(picture.item.image)
            files.append(picture.file)
            notes += [note for note in output.notes if note not in notes]
    except BaseException:
        discard(project)
        raise
    if on_keyframe is not None:
        on_keyframe(len(requests), len(requests))
    result = finish_project(project, stylised)
    return KeyframesResult(result.folder, result.keyframes, result.consistency, files, notes)
