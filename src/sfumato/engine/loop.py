"""The denoising loop: scale the input, predict the noise, step the scheduler, and let hooks in.

Everything a feature needs to change lives outside it: the noise prediction (``predict``:
guidance, prompt schedules, tiling), the latents after each step (``after_step``: inpainting's
latent blending), and what happens when a full step is done (``on_step``: progress, previews).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

NoisePredictor = Callable[["torch.Tensor", "torch.Tensor", int], "torch.Tensor"]
"""(scaled latents, timestep, 0-based step) -> noise prediction, float32."""
AfterStep = Callable[["torch.Tensor", int], "torch.Tensor"]
"""(latents after scheduler call ``i``, i) -> latents to continue from."""
OnStep = Callable[[int, "torch.Tensor", "torch.Tensor | None"], None]
"""(1-based step done, latents, predicted clean latents or None)."""


@dataclass
class LoopOutcome:
    latents: torch.Tensor
    denoised: torch.Tensor | None  # the scheduler's last prediction of the clean latents, if it gives one
    stopped_early: bool = False

    @property
    def best_latents(self) -> torch.Tensor:
        """What to decode: the clean prediction when the loop was stopped half-way."""
        if self.stopped_early and self.denoised is not None:
            return self.denoised
        return self.latents


def denoise(
    scheduler: Any,
    timesteps: torch.Tensor,
    latents: torch.Tensor,
    predict: NoisePredictor,
    *,
    steps: int,
    generators: list[torch.Generator],
    after_step: AfterStep | None = None,
    on_step: OnStep | None = None,
    should_stop: Callable[[], bool] | None = None,
    step_options: dict[str, Any] | None = None,
) -> LoopOutcome:
    """Run ``timesteps`` (``steps`` full steps: second-order samplers call the UNet twice a step).

    ``should_stop`` is asked before every UNet call; True ends the loop early (it may also raise).
    ``step_options`` (DDIM's ``eta``, Euler's ``s_churn``…) go to the schedulers whose step takes them.
    """
    accepted = inspect.signature(scheduler.step).parameters
    step_kwargs: dict[str, Any] = {k: v for k, v in (step_options or {}).items() if k in accepted}
    if "generator" in accepted:
        step_kwargs["generator"] = generators if len(generators) > 1 else generators[0]
    order = int(getattr(scheduler, "order", 1))
    # Calls that do not finish a step (a second-order sampler's first half, PLMS's warm-up) report nothing.
    warmup = max(0, len(timesteps) - steps * order)
    last = len(timesteps) - 1
    done = 0
    denoised: torch.Tensor | None = None
    for i, t in enumerate(timesteps):
        if should_stop is not None and should_stop():
            return LoopOutcome(latents, denoised, stopped_early=True)
        model_input = scheduler.scale_model_input(latents, t)
        noise_pred = predict(model_input, t, min(done, steps - 1))
        output = scheduler.step(noise_pred, t, latents, **step_kwargs, return_dict=True)
        latents = output.prev_sample
        denoised = getattr(output, "pred_original_sample", None)
        if after_step is not None:
            latents = after_step(latents, i)
        if i == last or ((i + 1) > warmup and (i + 1) % order == 0):
            done = min(done + 1, steps)
            if on_step is not None:
                on_step(done, latents, denoised)
    return LoopOutcome(latents, denoised)
