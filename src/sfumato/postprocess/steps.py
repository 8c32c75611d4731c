"""The post-processing dispatcher: each step of a request, by its ``kind``, run on a finished picture.

A kind without a function here is refused before anything renders (``check_steps``), never skipped.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from PIL import Image

from sfumato.core.errors import InvalidRequest
from sfumato.core.postprocess import BUILTIN_UPSCALERS, PostprocessStep, UpscaleStep
from sfumato.core.settings import Settings

if TYPE_CHECKING:
    from sfumato.models.upscalers import UpscalerModel


@dataclass
class StepContext:
    """What the steps of one job share: the settings, the notes for the user, models loaded once."""

    settings: Settings
    notes: list[str] = field(default_factory=list)
    upscalers: dict[str, UpscalerModel] = field(default_factory=dict)
    components: Any = None  # the job's loaded diffusion model, for steps that re-render (the detailer)
    recipe: Any = None  # the picture's recipe (GenerationRequest), for steps that need its prompt
    cancel: Any = None  # the job's CancelToken
    resolve: Any = None  # finds the LoRAs and embeddings a detailer prompt names
    number: int = 1  # the running step's place in the list (ADetailer numbers its infotext keys)
    crops: list[Image.Image] = field(default_factory=list)  # the detailer's crops, when it keeps them
    infotext: dict[str, str] = field(default_factory=dict)  # what the face steps write in the picture

    def upscaler(self, name: str) -> UpscalerModel:
        if name not in self.upscalers:
            from sfumato.models.upscalers import open_upscaler

            self.upscalers[name] = open_upscaler(self.settings, name)
        return self.upscalers[name]


StepFunction = Callable[[Image.Image, Any, StepContext], Image.Image]


def upscale_step(picture: Image.Image, step: UpscaleStep, context: StepContext) -> Image.Image:
    from sfumato.postprocess.upscale import target_size, upscale_picture

    builtin = step.upscaler in BUILTIN_UPSCALERS
    if not builtin:  # refuse an oversized result before loading the model
        from sfumato.postprocess.upscale import check_size

        check_size(target_size(picture.size, step), context.settings.max_canvas_side)
    return upscale_picture(
        picture,
        step,
        max_side=context.settings.max_canvas_side,
        model=None if builtin else context.upscaler(step.upscaler),
    )


def face_step(picture: Image.Image, step: Any, context: StepContext) -> Image.Image:
    """Restore faces or re-render details (postprocess/face_steps.py)."""
    from sfumato.postprocess.face_steps import run_face_step

    done = run_face_step(
        picture,
        step,
        recipe=context.recipe,
        components=context.components,
        settings=context.settings,
        number=context.number,
        cancel=context.cancel,
        resolve=context.resolve,
    )
    context.notes += [note for note in done.notes if note not in context.notes]
    context.crops += done.crops
    context.infotext |= done.infotext
    return done.picture


def step_functions() -> dict[str, StepFunction]:
    """Each step kind Sfumato can run, and its function."""
    return {"upscale": upscale_step, "restore_faces": face_step, "detail": face_step}


def check_steps(steps: Sequence[PostprocessStep]) -> None:
    """Refuse a request whose steps Sfumato cannot run, before any picture is made."""
    known = step_functions()
    for step in steps:
        if step.kind not in known:
            raise InvalidRequest(
                f"The post-processing step {step.kind!r} is not available in this version of Sfumato.",
                f"Remove it from the request; available: {', '.join(sorted(known))}.",
            )


def run_steps(picture: Image.Image, steps: Sequence[PostprocessStep], context: StepContext) -> Image.Image:
    functions = step_functions()
    for number, step in enumerate(steps, start=1):
        context.number = number
        picture = functions[step.kind](picture, step, context)
    return picture


def infotext_params(steps: Sequence[PostprocessStep]) -> dict[str, str]:
    """What A1111 writes in a picture's text for its post-processing (the extras tab's keys)."""
    params: dict[str, str] = {}
    for step in steps:
        if isinstance(step, UpscaleStep):
            if step.width or step.height:
                params["Postprocess upscale to"] = f"{step.width}x{step.height}"
            else:
                params["Postprocess upscale by"] = _number(step.scale)
            params["Postprocess upscaler"] = step.upscaler
    return params


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def check_step_sizes(settings: Settings, request: Any) -> None:
    """Refuse upscale steps whose result would exceed ``max_canvas_side``, when the picture's size is
    known before rendering (width and height given, or an init picture)."""
    from sfumato.models.upscalers import find_upscaler
    from sfumato.postprocess.upscale import check_size, target_size

    for step in request.postprocess:  # an unknown name is refused before anything renders
        if isinstance(step, UpscaleStep) and step.upscaler not in BUILTIN_UPSCALERS:
            find_upscaler(settings, step.upscaler)
    size = _rendered_size(request)
    if size is None:
        return
    for step in request.postprocess:
        if isinstance(step, UpscaleStep):
            size = target_size(size, step)
            check_size(size, settings.max_canvas_side)


def _rendered_size(request: Any) -> tuple[int, int] | None:
    if request.init_image is not None:
        from sfumato.core.images import load_image
        from sfumato.core.request import grown_size

        return grown_size(request, load_image(request.init_image, "init image").size)
    if request.width is None or request.height is None:
        return None
    if request.hires is not None:
        return request.hires.target(request.width, request.height)
    return request.width, request.height
