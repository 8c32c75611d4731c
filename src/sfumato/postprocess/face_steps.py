"""The face steps of a request's post-processing (restore faces, detail), run on one finished picture.

The runner calls :func:`run_face_steps` on each picture before it is saved. Upscale steps belong to
the upscaler's dispatcher and are passed over here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from PIL import Image

from sfumato.core.postprocess import DetailStep, RestoreFacesStep

if TYPE_CHECKING:
    from sfumato.core.events import CancelToken
    from sfumato.core.request import GenerationRequest
    from sfumato.core.settings import Settings
    from sfumato.models.components import Components
    from sfumato.prompts.networks import Resolver


@dataclass
class FaceStepResult:
    picture: Image.Image
    notes: list[str] = field(default_factory=list)
    crops: list[Image.Image] = field(default_factory=list)  # detail crops, when the step keeps them
    infotext: dict[str, str] = field(default_factory=dict)  # what A1111 / ADetailer write for it


def run_face_step(
    picture: Image.Image,
    step: RestoreFacesStep | DetailStep,
    *,
    recipe: GenerationRequest,
    components: Components,
    settings: Settings,
    number: int = 1,
    cancel: CancelToken | None = None,
    resolve: Resolver | None = None,
) -> FaceStepResult:
    """One restore-faces or detail step on a picture. ``recipe`` is the picture's own (the detailer
    takes its prompts, steps, sampler and seed); ``number`` is the step's place in the list (1-based,
    for ADetailer's numbered infotext keys)."""
    if isinstance(step, RestoreFacesStep):
        from sfumato.postprocess.faces import restore_faces

        restored = restore_faces(picture, step, settings)
        infotext = {"Face restoration": step.model}
        if step.model.lower() == "codeformer":
            infotext["CodeFormer weight"] = f"{step.codeformer_weight:g}"
        if step.visibility < 1:
            infotext["Face restoration visibility"] = f"{step.visibility:g}"
        return FaceStepResult(restored.picture, restored.notes, [], infotext)
    from sfumato.postprocess.detailer import detail

    detailed = detail(picture, step, components, recipe, resolve=resolve, cancel=cancel)
    suffix = "" if number == 1 else f" {number}"
    infotext = {f"ADetailer model{suffix}": f"{step.target} ({step.detector})"}
    if step.prompt:
        infotext[f"ADetailer prompt{suffix}"] = step.prompt
    infotext[f"ADetailer denoising strength{suffix}"] = f"{step.denoising_strength:g}"
    infotext[f"ADetailer inpaint padding{suffix}"] = str(step.padding)
    crops = detailed.crops if step.save_crops else []
    return FaceStepResult(detailed.picture, detailed.notes, crops, infotext)


def check_face_steps(settings: Settings, request: GenerationRequest) -> None:
    """What would fail only after the render, checked before it: the restorer files, the detector
    files and onnxruntime, the detailer's order."""
    from pathlib import Path

    from sfumato.core.errors import InvalidRequest
    from sfumato.postprocess.detect import BUILTIN_DETECTORS, onnx_session
    from sfumato.postprocess.faces import find_restorer_file

    for step in request.postprocess:
        if isinstance(step, RestoreFacesStep):
            find_restorer_file(settings, step.model)
        elif isinstance(step, DetailStep) and step.detector not in BUILTIN_DETECTORS:
            if not step.detector.lower().endswith(".onnx"):
                raise InvalidRequest(
                    f"Unknown detector {step.detector!r}.",
                    f"Use one of {', '.join(BUILTIN_DETECTORS)}, or a YOLO detector file in ONNX format.",
                )
            onnx_session(Path(step.detector))
