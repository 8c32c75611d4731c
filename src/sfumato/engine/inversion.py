"""Recovering the noise that builds a picture: DDIM inversion, exact by fixed-point iteration.

Deterministic DDIM (eta 0) takes the latents ``x_t`` at noise level ``a_t`` (alpha-bar) to the
level ``a_s`` below it with the model's noise estimate at ``x_t``::

    x_s = sqrt(a_s / a_t) * x_t + (sqrt(1 - a_s) - sqrt(a_s (1 - a_t) / a_t)) * eps(x_t, t)

Inverting a step means finding the ``x_t`` that this maps to a known ``x_s``. Plain DDIM inversion
(``method="ddim"``) guesses ``eps(x_t) ~ eps(x_s)``: cheap, but with few steps the error adds up
and the regenerated picture drifts. ``method="fixed-point"`` (the default) solves the step's own
equation, ``x_t = sqrt(a_t / a_s) * x_s + (sqrt(1 - a_t) - sqrt(a_t (1 - a_s) / a_s)) * eps(x_t, t)``,
by iterating it from the DDIM guess until it no longer moves, so regenerating with the same prompt
and steps retraces the path back to the picture (exact inversion for few steps).

Noise levels run from the clean picture (alpha-bar 1) up through the schedule's timesteps (the
model's own scheduler config, DDIM spacing). Guidance is 1 (the prompt's prediction alone): the
path CFG would take is not invertible this way.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from sfumato.core.errors import InvalidRequest

if TYPE_CHECKING:
    import torch
    from PIL import Image

    from sfumato.models.components import Components

Method = Literal["ddim", "fixed-point"]
METHODS: tuple[str, ...] = ("ddim", "fixed-point")
FIXED_POINT_ITERATIONS = 6
FIXED_POINT_TOLERANCE = 1e-4  # relative change of x_t at which an iteration stops early

Predict = Callable[["torch.Tensor", int], "torch.Tensor"]
"""(latents at level i of the schedule, i >= 1) -> the noise estimate eps there."""


@dataclass
class Schedule:
    """Timesteps from the least to the most noisy, with alpha-bar for each; level 0 is the picture."""

    timesteps: list[int]  # level i (1..n) is timesteps[i - 1]
    alphas: list[float]  # alpha-bar at level i (0..n); alphas[0] = 1

    @property
    def steps(self) -> int:
        return len(self.timesteps)


@dataclass
class Inversion:
    latents: list[torch.Tensor]  # the path from the picture's latents (0) to its noise (n)
    schedule: Schedule
    residual: float  # the largest relative change of the last fixed-point iteration (0 for ddim)

    @property
    def noise(self) -> torch.Tensor:
        return self.latents[-1]


def schedule(components: Components, steps: int) -> Schedule:
    from diffusers import DDIMScheduler

    if not 1 <= steps <= 1000:
        raise InvalidRequest(f"{steps} inversion steps is out of range.", "Use 1-1000 steps, e.g. 20.")
    scheduler: Any = DDIMScheduler.from_config(components.scheduler_config)
    scheduler.set_timesteps(steps)
    timesteps = sorted(int(t) for t in scheduler.timesteps)
    alphas_cumprod = scheduler.alphas_cumprod
    return Schedule(timesteps, [1.0, *(float(alphas_cumprod[t]) for t in timesteps)])


def model_eps(
    components: Components, output: torch.Tensor, latents: torch.Tensor, alpha: float
) -> torch.Tensor:
    """The UNet's output as a noise estimate, whatever the model predicts (epsilon or v)."""
    kind = components.scheduler_config.get("prediction_type", "epsilon")
    if kind == "v_prediction":
        return alpha**0.5 * output + (1 - alpha) ** 0.5 * latents
    if kind == "epsilon":
        return output
    raise InvalidRequest(
        f"Inversion needs a model that predicts noise or v; this one predicts {kind!r}.",
        "Use an epsilon or v-prediction model.",
    )


def ddim_step(x: torch.Tensor, eps: torch.Tensor, alpha_from: float, alpha_to: float) -> torch.Tensor:
    """Deterministic DDIM from noise level ``alpha_from`` to ``alpha_to`` (either direction)."""
    scale = (alpha_to / alpha_from) ** 0.5
    return scale * x + ((1 - alpha_to) ** 0.5 - scale * (1 - alpha_from) ** 0.5) * eps


def invert_latents(
    latents: torch.Tensor,
    plan: Schedule,
    predict: Predict,
    method: Method = "fixed-point",
    iterations: int = FIXED_POINT_ITERATIONS,
) -> Inversion:
    """The path from ``latents`` (level 0) up to level n, each level from the one below it."""
    if method not in METHODS:
        raise InvalidRequest(f"Unknown inversion method {method!r}.", f"Use one of: {', '.join(METHODS)}.")
    path = [latents]
    worst = 0.0
    for level in range(1, plan.steps + 1):
        below, alpha_below, alpha = path[-1], plan.alphas[level - 1], plan.alphas[level]
        x = ddim_step(below, predict(below, level), alpha_below, alpha)
        if method == "fixed-point":
            x, change = _fixed_point(x, below, alpha_below, alpha, level, predict, iterations)
            worst = max(worst, change)
        path.append(x)
    return Inversion(path, plan, worst)


def _fixed_point(
    x: torch.Tensor,
    below: torch.Tensor,
    alpha_below: float,
    alpha: float,
    level: int,
    predict: Predict,
    iterations: int,
) -> tuple[torch.Tensor, float]:
    """Iterate the step's equation from the DDIM guess ``x``; stops when it settles, and when it starts
    to move away (a model too steep for the step size) it keeps the best iterate, never worse than the guess."""
    best, best_change = x, float("inf")
    for _ in range(iterations):
        following = ddim_step(below, predict(x, level), alpha_below, alpha)
        change = float((following - x).norm() / x.norm().clamp_min(1e-12))
        if change >= best_change:
            break
        best, best_change, x = following, change, following
        if change < FIXED_POINT_TOLERANCE:
            break
    return best, best_change


def regenerate_latents(
    inversion: Inversion,
    predict: Predict,
    after_step: Callable[[torch.Tensor, int], torch.Tensor] | None = None,
) -> torch.Tensor:
    """DDIM down from the inversion's noise to level 0; ``after_step(x, level)`` may alter each level."""
    plan = inversion.schedule
    x = inversion.noise
    for level in range(plan.steps, 0, -1):
        x = ddim_step(x, predict(x, level), plan.alphas[level], plan.alphas[level - 1])
        if after_step is not None:
            x = after_step(x, level - 1)
    return x


def prompt_predictor(components: Components, prompt: str, plan: Schedule, size: tuple[int, int]) -> Predict:
    """The prompt's own noise estimate (guidance 1) at each level of ``plan``; ``size`` is (width, height)."""
    import torch

    from sfumato.engine.guidance import GuidedUNet
    from sfumato.prompts.encoder import encode_prompt

    cond = encode_prompt(components, prompt, steps=plan.steps)
    uncond = encode_prompt(components, "", steps=plan.steps)
    guided = GuidedUNet(components, cond, uncond, 1.0, images=1, size=(size[1], size[0]))

    def predict(x: torch.Tensor, level: int) -> torch.Tensor:
        t = torch.tensor(plan.timesteps[level - 1], device=components.device)
        output = guided(x.to(components.device), t, plan.steps - level)
        return model_eps(components, output, x, plan.alphas[level])

    return predict


def picture_latents(components: Components, picture: Image.Image) -> torch.Tensor:
    """The picture's latents (the VAE's mean, not a sample: inversion must not add noise of its own)."""
    from sfumato.engine import latents as lat

    mean, _ = lat.encode_distribution(components, lat.pil_to_tensor(picture))
    return lat.scale_latents(components, mean)


def latents_picture(components: Components, latents: torch.Tensor) -> Image.Image:
    from sfumato.engine import latents as lat

    return lat.tensor_to_pils(lat.decode(components, latents, []))[0]


def checked_picture(components: Components, picture: Image.Image) -> Image.Image:
    """The picture as RGB, at a size the VAE and UNet take (multiples of 8, cropped, never scaled)."""
    rgb = picture.convert("RGB")
    width, height = rgb.width - rgb.width % 8, rgb.height - rgb.height % 8
    if width < 8 or height < 8:
        raise InvalidRequest(
            f"The picture is {rgb.width}x{rgb.height}; too small to invert.", "Use 64x64 or more."
        )
    return rgb.crop((0, 0, width, height))


def invert(
    components: Components,
    picture: Image.Image,
    prompt: str,
    steps: int = 20,
    method: Method = "fixed-point",
) -> Inversion:
    """The noise (and the path to it) that regenerates ``picture`` with ``prompt`` in ``steps`` DDIM steps."""
    picture = checked_picture(components, picture)
    plan = schedule(components, steps)
    predict = prompt_predictor(components, prompt, plan, picture.size)
    return invert_latents(picture_latents(components, picture), plan, predict, method)


def regenerate(components: Components, inversion: Inversion, prompt: str) -> Image.Image:
    """The picture DDIM makes from the inversion's noise with ``prompt`` (guidance 1)."""
    height, width = (side * components.vae_scale_factor for side in inversion.noise.shape[-2:])
    predict = prompt_predictor(components, prompt, inversion.schedule, (width, height))
    return latents_picture(components, regenerate_latents(inversion, predict))


def psnr(a: Image.Image, b: Image.Image) -> float:
    """Peak signal-to-noise ratio in dB between two RGB pictures of one size (inf when equal)."""
    import math

    import numpy as np

    error = np.mean((np.asarray(a.convert("RGB"), float) - np.asarray(b.convert("RGB"), float)) ** 2)
    return math.inf if error == 0 else 10 * math.log10(255**2 / error)
