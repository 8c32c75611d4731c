"""What the prompt panel holds: the words and the settings of the next generation.

"Imagination" and "time vs quality" are presets over real request fields; the panel shows the
numbers they set, and a recipe from the gallery fills the same fields back.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from typing import Any, TypeVar

from sfumato.core.request import GenerationRequest


@dataclass(frozen=True)
class Imagination:
    name: str
    cfg_scale: float  # how closely the picture follows the prompt
    denoising_strength: float  # how much of a picture under the frame may change


@dataclass(frozen=True)
class Quality:
    name: str
    steps: int
    sampler: str
    schedule_type: str = "Automatic"


IMAGINATION = (
    Imagination("Faithful", cfg_scale=9.0, denoising_strength=0.4),
    Imagination("Balanced", cfg_scale=7.0, denoising_strength=0.65),
    Imagination("Free", cfg_scale=4.0, denoising_strength=0.9),
)
QUALITY = (
    Quality("Draft", steps=10, sampler="Euler a"),
    Quality("Balanced", steps=20, sampler="DPM++ 2M", schedule_type="Karras"),
    Quality("Best", steps=40, sampler="DPM++ 2M", schedule_type="Karras"),
)


P = TypeVar("P", Imagination, Quality)


@dataclass
class PromptState:
    prompt: str = ""
    negative_prompt: str = ""
    cfg_scale: float = 7.0
    denoising_strength: float = 0.65
    steps: int = 20
    sampler: str = "DPM++ 2M"
    schedule_type: str = "Karras"
    seed: int = -1
    batch_size: int = 4  # variants per frame
    model: str | None = None
    vae: str | None = None  # a VAE file's name from the model library; None = the checkpoint's own
    _listeners: list[Callable[[], None]] = field(default_factory=list, repr=False)

    def subscribe(self, listener: Callable[[], None]) -> None:
        self._listeners.append(listener)

    def update(self, **values: Any) -> None:
        for name, value in values.items():
            if name.startswith("_") or name not in _FIELDS:
                raise ValueError(f"{name} is not a prompt setting")
            setattr(self, name, value)
        for listener in list(self._listeners):
            listener()

    def apply_imagination(self, preset: Imagination) -> None:
        self.update(cfg_scale=preset.cfg_scale, denoising_strength=preset.denoising_strength)

    def apply_quality(self, preset: Quality) -> None:
        self.update(steps=preset.steps, sampler=preset.sampler, schedule_type=preset.schedule_type)

    def request_fields(self) -> dict[str, Any]:
        values = {name: getattr(self, name) for name in _FIELDS}
        for name in ("model", "vae"):
            if values[name] is None:
                del values[name]
        return values

    def use_recipe(self, recipe: GenerationRequest) -> None:
        """Take a picture's recipe back into the panel (its prompt, settings and seed)."""
        self.update(
            prompt=recipe.prompt,
            negative_prompt=recipe.negative_prompt,
            cfg_scale=recipe.cfg_scale,
            denoising_strength=recipe.denoising_strength,
            steps=recipe.steps,
            sampler=recipe.sampler,
            schedule_type=recipe.schedule_type,
            seed=recipe.seed,
            model=recipe.model,
            vae=recipe.vae,
        )


def matching_preset(presets: tuple[P, ...], state: PromptState) -> P | None:
    """The preset whose numbers the state has now, if any (the panel shows "Custom" otherwise)."""
    for preset in presets:
        values = {k: v for k, v in asdict(preset).items() if k != "name"}
        if all(getattr(state, k) == v for k, v in values.items()):
            return preset
    return None


_FIELDS = [f.name for f in fields(PromptState) if not f.name.startswith("_")]
