"""Hires fix, as A1111 does it: the first pass's latents upscaled (in latent space, or decoded, resized
in pixels and encoded again), then a second img2img pass at the larger size with its own denoising
strength, steps, sampler and prompts.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from sfumato.core.request import HIRES_UPSCALERS, LATENT_UPSCALERS, GenerationRequest, Hires
from sfumato.engine import latents as lat

if TYPE_CHECKING:
    import torch

    from sfumato.engine.loop import NoisePredictor, OnStep
    from sfumato.models.components import Components
    from sfumato.models.upscalers import UpscalerModel
    from sfumato.prompts.networks import Resolver

# A1111's latent upscalers: torch interpolation mode and antialiasing.
_LATENT_MODES: dict[str, tuple[str, bool]] = {
    "Latent": ("bilinear", False),
    "Latent (antialiased)": ("bilinear", True),
    "Latent (bicubic)": ("bicubic", False),
    "Latent (bicubic antialiased)": ("bicubic", True),
    "Latent (nearest)": ("nearest", False),
    "Latent (nearest-exact)": ("nearest-exact", False),
}
assert set(_LATENT_MODES) == set(LATENT_UPSCALERS)


@dataclass(frozen=True)
class HiresPlan:
    hires: Hires
    width: int
    height: int
    steps: int  # the second pass's schedule
    steps_run: int  # of which the last ``steps_run`` run (its denoising strength)
    sampler: str
    prompt: str
    negative_prompt: str
    model: UpscalerModel | None = None  # the upscaler model, when the hires upscaler names one


def plan_hires(request: GenerationRequest, width: int, height: int) -> HiresPlan | None:
    hires = request.hires
    if hires is None:
        return None
    target_width, target_height = hires.target(width, height)
    steps = hires.steps or request.steps
    return HiresPlan(
        hires=hires,
        width=target_width,
        height=target_height,
        steps=steps,
        steps_run=min(steps, max(1, int(steps * hires.denoising_strength))),
        sampler=hires.sampler or request.sampler,
        prompt=hires.prompt or request.prompt,
        negative_prompt=hires.negative_prompt or request.negative_prompt,
    )


def with_upscaler_model(plan: HiresPlan, components: Components, resolve: Resolver) -> HiresPlan:
    """The plan with its upscaler model loaded, when it names one (not a latent or built-in upscaler)."""
    name = plan.hires.upscaler
    if name in HIRES_UPSCALERS:
        return plan
    from sfumato.core.errors import ModelNotFound
    from sfumato.models.upscalers import load_upscaler

    path = resolve("upscaler", name)
    if path is None or not path.is_file():
        raise ModelNotFound(
            f"No hires upscaler named {name!r}.",
            f"Use one of {', '.join(HIRES_UPSCALERS)} or an upscaler in your folders (`sfumato models list`).",
        )
    return replace(
        plan, model=load_upscaler(path, device=components.device, dtype=components.dtype, name=name)
    )


def _cover(size: tuple[int, int], target: tuple[int, int]) -> tuple[tuple[int, int], tuple[int, int]]:
    """(width, height) that covers ``target`` keeping the aspect ratio, and the crop's offset in it."""
    scale = max(target[0] / size[0], target[1] / size[1])
    covered = (max(target[0], round(size[0] * scale)), max(target[1], round(size[1] * scale)))
    return covered, ((covered[0] - target[0]) // 2, (covered[1] - target[1]) // 2)


def upscale(
    components: Components,
    latents: torch.Tensor,
    plan: HiresPlan,
    notes: list[str],
    *,
    tiled_vae: bool | None = None,
) -> torch.Tensor:
    """The first pass's UNet latents brought to the second pass's size (a different aspect ratio is
    covered, then cropped in the middle, as A1111's "resize and crop")."""
    import torch

    factor = components.vae_scale_factor
    if plan.hires.upscaler in _LATENT_MODES:
        mode, antialias = _LATENT_MODES[plan.hires.upscaler]
        size = (latents.shape[-1], latents.shape[-2])
        (width, height), (x, y) = _cover(size, (plan.width // factor, plan.height // factor))
        bigger = torch.nn.functional.interpolate(
            latents.float(), size=(height, width), mode=mode, antialias=antialias
        ).to(latents.dtype)
        return bigger[..., y : y + plan.height // factor, x : x + plan.width // factor]
    from PIL import Image

    from sfumato.models.upscalers import enlarge

    resample = Image.Resampling.LANCZOS if plan.hires.upscaler == "Lanczos" else Image.Resampling.NEAREST
    from sfumato.engine.tiled_vae import should_tile

    first = should_tile(components, latents.shape[-1] * factor, latents.shape[-2] * factor, tiled_vae)
    pictures = lat.tensor_to_pils(lat.decode(components, latents, notes, tiled=first))
    if plan.model is not None:  # enlarged by the model, then to the exact size by Lanczos below
        pictures = [enlarge(plan.model, p, (plan.width, plan.height)) for p in pictures]
        resample = Image.Resampling.LANCZOS
    (width, height), (x, y) = _cover(pictures[0].size, (plan.width, plan.height))
    resized = [
        p.resize((width, height), resample).crop((x, y, x + plan.width, y + plan.height)) for p in pictures
    ]
    pixels = torch.cat([lat.pil_to_tensor(p) for p in resized])
    tiled = should_tile(components, plan.width, plan.height, tiled_vae)
    mean, _ = lat.encode_distribution(components, pixels, tiled=tiled)
    return lat.scale_latents(components, mean).to(latents.dtype)


def second_pass(
    components: Components,
    request: GenerationRequest,
    plan: HiresPlan,
    init: torch.Tensor,
    guided: NoisePredictor,
    first_index: int,
    *,
    on_step: OnStep,
    should_stop: Callable[[], bool],
) -> torch.Tensor:
    """Denoise the upscaled latents ``init`` from partway (the hires denoising strength), each picture
    with noise of its own seed at the new size."""
    import torch

    from sfumato.engine.loop import denoise
    from sfumato.engine.samplers import make_scheduler, partway_timesteps, step_options
    from sfumato.engine.seeds import batch_noise

    factor = components.vae_scale_factor
    shape = (4, plan.height // factor, plan.width // factor)
    noises = batch_noise(
        shape,
        request.seed,
        request.variation_seed,
        request.variation_strength,
        first_index,
        init.shape[0],
        frozen=request.frozen_noise,
        per_position=request.noise_per_position,
    )
    noise = torch.cat([n.noise for n in noises]).to(init.device)
    scheduler: Any = make_scheduler(plan.sampler, request.schedule_type, components.scheduler_config)
    timesteps = partway_timesteps(
        scheduler,
        plan.steps,
        plan.steps_run,
        init.device,
        sampler=plan.sampler,
        schedule_type=request.schedule_type,
        sdxl=components.is_sdxl,
    )
    latents = scheduler.add_noise(init, noise.to(init.dtype), timesteps[:1].repeat(init.shape[0]))
    outcome = denoise(
        scheduler,
        timesteps,
        latents,
        guided,
        steps=plan.steps_run,
        generators=[n.generator for n in noises],
        on_step=on_step,
        should_stop=should_stop,
        step_options=step_options(request),
    )
    return outcome.best_latents
