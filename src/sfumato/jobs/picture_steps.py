"""Post-processing steps on a picture that is already made (a layer of the studio's canvas): upscale,
restore faces, detail. Unlike ``extras`` this may re-render: the detailer loads the picture's model."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from PIL import Image

from sfumato.core.events import CancelToken
from sfumato.core.postprocess import DetailStep, PostprocessStep
from sfumato.core.request import GenerationRequest
from sfumato.core.settings import Settings

if TYPE_CHECKING:
    from sfumato.models.cache import ModelCache


@dataclass
class StepsDone:
    picture: Image.Image
    notes: list[str] = field(default_factory=list)


def run_picture_steps(
    settings: Settings,
    picture: Image.Image,
    steps: Sequence[PostprocessStep],
    recipe: GenerationRequest,
    *,
    cache: ModelCache | None = None,
    cancel: CancelToken | None = None,
) -> StepsDone:
    """``picture`` (RGB) after ``steps``; ``recipe`` gives the detailer its model, prompt and settings.
    What would fail is refused before any model loads, as for a generation."""
    from sfumato.jobs.runner import check_limits
    from sfumato.postprocess.steps import StepContext, run_steps
    from sfumato.prompts.networks import LibraryResolver

    check_limits(settings, recipe.model_copy(update={"postprocess": list(steps)}))
    components = None
    if any(isinstance(step, DetailStep) for step in steps):
        from sfumato.models.loading import load_model

        components = load_model(settings, recipe.model, vae=recipe.vae, cache=cache)
    notes: list[str] = list(components.notes) if components is not None else []
    context = StepContext(
        settings=settings,
        notes=notes,
        components=components,
        cancel=cancel,
        resolve=LibraryResolver(settings),
    )
    context.recipe = recipe
    return StepsDone(run_steps(picture.convert("RGB"), steps, context), context.notes)
