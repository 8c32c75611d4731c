"""txt2img, img2img and inpaint: one request in, pictures with their recipes out."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sfumato.core.errors import InvalidRequest
from sfumato.core.events import CancelToken, ProgressCallback, StepProgress
from sfumato.core.inpainting import SoftInpainting
from sfumato.core.request import GenerationRequest, Mode
from sfumato.core.result import GeneratedImage, GenerationResult
from sfumato.core.timing import Timings
from sfumato.engine import latents as lat
from sfumato.engine.guidance import GuidedUNet
from sfumato.engine.hires import HiresPlan, plan_hires, second_pass, upscale
from sfumato.engine.inputs import StartingPictures, starting_pictures
from sfumato.engine.loop import AfterStep, NoisePredictor, OnStep, denoise
from sfumato.engine.samplers import make_scheduler, partway_timesteps, resolve_schedule, step_options
from sfumato.engine.seeds import ImageNoise, batch_noise, image_seed, resolve_seed
from sfumato.engine.tiled_vae import should_tile

if TYPE_CHECKING:
    import torch

    from sfumato.models.components import Components
    from sfumato.prompts.conditioning import Conditioning
    from sfumato.prompts.networks import Resolver


@dataclass(frozen=True)
class Plan:
    """The request with everything left open decided: size, seeds and how many steps run."""

    request: GenerationRequest
    width: int
    height: int
    seed: int
    variation_seed: int
    steps_run: int  # fewer than ``request.steps`` for img2img/inpaint (denoising strength)
    hires: HiresPlan | None = None  # the hires fix's second pass

    @property
    def total_steps(self) -> int:
        return self.steps_run + (self.hires.steps_run if self.hires is not None else 0)

    def recipe(self, index: int) -> GenerationRequest:
        return self.request.model_copy(
            update={
                "width": self.width,
                "height": self.height,
                "seed": image_seed(self.seed, 0 if self.request.frozen_noise else index),
                "variation_seed": image_seed(self.variation_seed, 0 if self.request.frozen_noise else index),
                "batch_size": 1,
                "batch_count": 1,
                "fix_crop": False,  # the fix is a picture of its own, with its own recipe
            }
        )


LCM_MAX_STEPS = 50  # LCM's timesteps are a subset of a 50-step schedule


def plan(components: Components, request: GenerationRequest) -> Plan:
    if request.sampler == "LCM" and request.steps > LCM_MAX_STEPS:
        raise InvalidRequest(
            f"The LCM sampler runs at most {LCM_MAX_STEPS} steps; {request.steps} were asked.",
            "Use 2-8 steps, as LCM is made for, or another sampler.",
        )
    size = components.native_size
    width, height = request.width or size, request.height or size
    if request.outpaint is not None:
        from sfumato.engine.outpaint import canvas_size

        width, height = canvas_size(request)
    steps_run = request.steps
    if request.mode != Mode.txt2img:
        # As diffusers (and A1111 without "fix steps"): strength s runs the last s * steps steps.
        steps_run = min(request.steps, max(1, int(request.steps * request.denoising_strength)))
    return Plan(
        request=request,
        width=width,
        height=height,
        seed=resolve_seed(request.seed),
        variation_seed=resolve_seed(request.variation_seed),
        steps_run=steps_run,
        hires=plan_hires(request, width, height),
    )


@dataclass
class _Start:
    """Latent-space inputs shared by every batch of a job (img2img/inpaint); empty for txt2img."""

    mean: torch.Tensor | None = None  # VAE latent distribution of the init picture
    std: torch.Tensor | None = None
    latent_mask: torch.Tensor | None = None  # [1, 1, h, w], 1 = repaint
    extra_channels: torch.Tensor | None = None  # inpainting UNet: mask + masked-picture latents
    masked_content: str = "original"
    soft: SoftInpainting | None = None  # soft inpainting: latent_mask holds grey levels


def generate(
    components: Components,
    request: GenerationRequest,
    *,
    on_progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
    preview_every: int = 5,
    resolve: Resolver | None = None,
) -> GenerationResult:
    """Run a request: ``batch_count`` batches of ``batch_size`` pictures, image i with seed + i.

    ``cancel.cancel()`` raises :class:`~sfumato.core.errors.Cancelled` at the next step;
    ``cancel.skip()`` ends the current batch with what it has and goes on with the next.
    ``resolve`` finds the LoRA and embedding files the prompts name (default: the configured model
    folders). LoRAs are applied for this job only: the model is restored exactly afterwards, also
    when the job fails or is cancelled. A LoRA that is not found raises ModelNotFound.
    """
    from sfumato.engine.tiling import seamless_tiling

    with seamless_tiling(components, request.tiling):
        return _generate(
            components,
            request,
            on_progress=on_progress,
            cancel=cancel,
            preview_every=preview_every,
            resolve=resolve,
        )


def _generate(
    components: Components,
    request: GenerationRequest,
    *,
    on_progress: ProgressCallback | None,
    cancel: CancelToken | None,
    preview_every: int,
    resolve: Resolver | None,
) -> GenerationResult:
    from sfumato.models.lora import applied_loras, format_hashes
    from sfumato.prompts.networks import default_resolver, prompt_loras

    if request.upscale is not None:
        from sfumato.engine.tiled_upscale import upscale_tiled

        return upscale_tiled(
            components,
            request,
            on_progress=on_progress,
            cancel=cancel,
            preview_every=preview_every,
            resolve=resolve,
        )
    if request.outpaint is not None:
        from sfumato.engine.outpaint_tiles import outpaint_in_tiles, wants_tiles

        if wants_tiles(components, request):
            return outpaint_in_tiles(
                components,
                request,
                on_progress=on_progress,
                cancel=cancel,
                preview_every=preview_every,
                resolve=resolve,
            )
    job = plan(components, request)
    _check_memory(components, job)
    timings = Timings()
    resolve = resolve or default_resolver()
    _, schedule_note = resolve_schedule(request.sampler, request.schedule_type)
    notes: list[str] = [schedule_note] if schedule_note else []
    pictures = starting_pictures(request, job.width, job.height)
    notes += pictures.notes
    loras, lora_notes = prompt_loras(request.prompt, request.negative_prompt, resolve)
    with applied_loras(components, loras) as applied:
        extra: dict[str, str] = {}
        if applied:
            extra["Lora hashes"] = format_hashes([(lora.spec.label, lora.hash) for lora in applied])
        lora_notes += [note for lora in applied for note in lora.notes]
        images = _render(
            components,
            job,
            pictures,
            notes,
            extra,
            resolve,
            timings,
            on_progress=on_progress,
            cancel=cancel,
            preview_every=preview_every,
        )
    return GenerationResult(images=images, notes=_unique([*notes, *lora_notes]), timings=timings.seconds)


def _check_memory(components: Components, job: Plan) -> None:
    """Refuse before the first step a job that would not fit in the free memory (engine/memory_check.py)."""
    from sfumato.engine.memory_check import available_bytes, check_memory

    width, height = (job.hires.width, job.hires.height) if job.hires is not None else (job.width, job.height)
    tiled = should_tile(components, width, height, job.request.tiled_vae)
    available = available_bytes(components.device)
    check_memory(components, width, height, job.request.batch_size, tiled_vae=tiled, available=available)


def _unique(notes: list[str]) -> list[str]:
    return list(dict.fromkeys(notes))


def _render(
    components: Components,
    job: Plan,
    pictures: StartingPictures,
    notes: list[str],
    extra: dict[str, str],
    resolve: Resolver,
    timings: Timings,
    *,
    on_progress: ProgressCallback | None,
    cancel: CancelToken | None,
    preview_every: int,
) -> list[GeneratedImage]:
    from sfumato.models.lora import format_hashes
    from sfumato.prompts.encoder import encode_prompt

    request = job.request
    if job.hires is not None:
        from dataclasses import replace

        from sfumato.engine.hires import with_upscaler_model

        job = replace(job, hires=with_upscaler_model(job.hires, components, resolve))

    conditionings: list[Conditioning] = []

    def guide(prompt: str, negative: str, steps: int, size: tuple[int, int], start: _Start) -> GuidedUNet:
        with timings.measure("prompt encode"):
            cond, uncond = (
                encode_prompt(components, text, steps=steps, clip_skip=request.clip_skip, resolve=resolve)
                for text in (prompt, negative)
            )
        conditionings.extend((cond, uncond))
        return GuidedUNet(
            components,
            cond,
            uncond,
            request.cfg_scale,
            images=request.batch_size,
            size=(size[1], size[0]),
            extra_channels=start.extra_channels,
            aesthetic_score=request.aesthetic_score,
            negative_aesthetic_score=request.negative_aesthetic_score,
        )

    start = _encode_start(
        components,
        pictures,
        request.batch_size,
        (job.width, job.height),
        request.soft_inpainting,
        request.tiled_vae,
    )
    guided = guide(request.prompt, request.negative_prompt, job.steps_run, (job.width, job.height), start)
    hires_guided = None
    if job.hires is not None:
        size = (job.hires.width, job.hires.height)
        hires_start = _encode_start(
            components, StartingPictures(), request.batch_size, size, tiled_vae=request.tiled_vae
        )
        hires_guided = guide(
            job.hires.prompt, job.hires.negative_prompt, job.hires.steps_run, size, hires_start
        )
    notes += [note for c in conditionings for note in c.notes if note not in notes]
    embeddings = dict(hash for c in conditionings for hash in c.embedding_hashes)
    if embeddings:
        extra["TI hashes"] = format_hashes(list(embeddings.items()))
    images: list[GeneratedImage] = []
    for batch in range(request.batch_count):
        if cancel is not None:
            cancel.raise_if_cancelled()
        first = batch * request.batch_size
        renders = _run_batch(
            components,
            job,
            start,
            (guided, hires_guided),
            batch,
            notes,
            timings,
            on_progress=on_progress,
            cancel=cancel,
            preview_every=preview_every,
        )
        for offset, render in enumerate(renders):
            index = first + offset
            images.append(
                GeneratedImage(
                    image=pictures.finish(render),
                    recipe=job.recipe(index),
                    model=components.info,
                    index=index,
                    extra=dict(extra),
                )
            )
    return images


def _encode_start(
    components: Components,
    pictures: StartingPictures,
    images: int,
    size: tuple[int, int],
    soft: SoftInpainting | None = None,
    tiled_vae: bool | None = None,
) -> _Start:
    import torch

    mean = std = latent_mask = None
    repaint = torch.ones((1, 1, size[1], size[0]))
    if pictures.init is not None:
        tiled = should_tile(components, size[0], size[1], tiled_vae)
        mean, std = lat.encode_distribution(components, lat.pil_to_tensor(pictures.init), tiled=tiled)
    if pictures.mask is not None:
        repaint = (lat.mask_to_tensor(pictures.mask) >= 0.5).float()
        # A latent is repainted if any pixel under it is: thin masks must not vanish at 1/8 scale.
        latent_mask = torch.nn.functional.max_pool2d(repaint, components.vae_scale_factor).to(
            components.device
        )
        if soft is not None:
            from sfumato.engine.soft_inpaint import soft_latent_mask

            grey = lat.mask_to_tensor(pictures.mask)
            latent_mask = soft_latent_mask(grey, components.vae_scale_factor).to(components.device)
    extra = None
    if components.is_inpainting:
        # Without a mask an inpainting model repaints everything (A1111 does the same for txt2img).
        init = (
            lat.pil_to_tensor(pictures.init)
            if pictures.init is not None
            else torch.zeros((1, 3, size[1], size[0]))
        )
        tiled = should_tile(components, size[0], size[1], tiled_vae)
        masked_mean, _ = lat.encode_distribution(components, init * (1 - repaint), tiled=tiled)
        mask_channel = torch.nn.functional.max_pool2d(repaint, components.vae_scale_factor).to(
            masked_mean.device
        )
        extra = torch.cat([mask_channel, lat.scale_latents(components, masked_mean)], dim=1).repeat(
            images, 1, 1, 1
        )
    return _Start(
        mean=mean,
        std=std,
        latent_mask=latent_mask,
        extra_channels=extra,
        masked_content=pictures.masked_content.value,
        soft=soft if pictures.mask is not None else None,
    )


def _run_batch(
    components: Components,
    job: Plan,
    start: _Start,
    guides: tuple[GuidedUNet, GuidedUNet | None],
    batch: int,
    notes: list[str],
    timings: Timings,
    *,
    on_progress: ProgressCallback | None,
    cancel: CancelToken | None,
    preview_every: int,
) -> list:
    import torch

    request = job.request
    device = components.device
    factor = components.vae_scale_factor
    shape = (4, job.height // factor, job.width // factor)
    first = batch * request.batch_size
    noises = batch_noise(
        shape,
        job.seed,
        job.variation_seed,
        request.variation_strength,
        first,
        request.batch_size,
        frozen=request.frozen_noise,
        per_position=request.noise_per_position,
    )
    generators = [n.generator for n in noises]
    noise = torch.cat([n.noise for n in noises]).to(device)

    scheduler: Any = make_scheduler(request.sampler, request.schedule_type, components.scheduler_config)
    timesteps = partway_timesteps(
        scheduler,
        request.steps,
        job.steps_run,
        device,
        sampler=request.sampler,
        schedule_type=request.schedule_type,
        sdxl=components.is_sdxl,
    )
    after_step: AfterStep | None = None
    if start.mean is None or start.std is None:
        latents = noise * scheduler.init_noise_sigma
    else:
        init = _init_latents(components, start, noises, start.masked_content)
        latents = scheduler.add_noise(init, noise, timesteps[:1].repeat(noise.shape[0]))
        if start.latent_mask is not None and start.soft is not None:
            from sfumato.engine.soft_inpaint import soft_blend

            after_step = soft_blend(scheduler, timesteps, init, noise, start.latent_mask, start.soft)
        elif start.latent_mask is not None and start.extra_channels is None:
            after_step = _blend_outside_mask(scheduler, timesteps, init, noise, start.latent_mask)

    def should_stop() -> bool:
        if cancel is None:
            return False
        cancel.raise_if_cancelled()
        return cancel.take_skip()

    def progress(done: int, size: tuple[int, int]) -> OnStep:
        def on_step(step: int, current: torch.Tensor, denoised: torch.Tensor | None) -> None:
            if on_progress is None:
                return
            picture = None
            if preview_every > 0 and step % preview_every == 0:
                picture = lat.preview(components, denoised if denoised is not None else current, size)
            on_progress(StepProgress(done + step, job.total_steps, batch, request.batch_count, picture))

        return on_step

    guided, hires_guided = guides
    predict: NoisePredictor = guided
    hires_predict: NoisePredictor | None = hires_guided
    if request.tiled_diffusion is not None:
        from sfumato.engine.tiled_diffusion import tiled

        native = components.native_size
        predict = tiled(guided, request.tiled_diffusion, native, (job.width, job.height))
        if hires_guided is not None and job.hires is not None:
            hires_size = (job.hires.width, job.hires.height)
            hires_predict = tiled(hires_guided, request.tiled_diffusion, native, hires_size)
    with timings.measure("denoise"):
        outcome = denoise(
            scheduler,
            timesteps,
            latents,
            predict,
            steps=job.steps_run,
            generators=generators,
            after_step=after_step,
            on_step=progress(0, (job.width, job.height)),
            should_stop=should_stop,
            step_options=step_options(request),
        )
        result = outcome.best_latents
        if job.hires is not None and hires_predict is not None and not outcome.stopped_early:
            result = second_pass(
                components,
                job.request.model_copy(update={"seed": job.seed, "variation_seed": job.variation_seed}),
                job.hires,
                upscale(components, result, job.hires, notes, tiled_vae=request.tiled_vae),
                hires_predict,
                first,
                on_step=progress(job.steps_run, (job.hires.width, job.hires.height)),
                should_stop=should_stop,
            )
    with timings.measure("decode"):
        width, height = (
            (job.hires.width, job.hires.height) if job.hires is not None else (job.width, job.height)
        )
        tiled = should_tile(components, width, height, request.tiled_vae)
        pixels = lat.decode(components, result, notes, tiled=tiled)
        return lat.tensor_to_pils(pixels)


def _init_latents(
    components: Components, start: _Start, noises: list[ImageNoise], masked_content: str
) -> torch.Tensor:
    """Each picture's own sample of the init picture's latents, with the masked area prepared."""
    import torch

    assert start.mean is not None and start.std is not None
    eps = torch.cat([n.draw(tuple(start.mean.shape)) for n in noises]).to(start.mean.device)
    init = lat.scale_latents(components, start.mean + start.std * eps)
    mask = start.latent_mask
    if mask is not None and masked_content == "latent noise":
        fresh = torch.cat([n.draw(tuple(init.shape)) for n in noises]).to(init.device)
        init = init * (1 - mask) + fresh * mask
    elif mask is not None and masked_content == "latent nothing":
        init = init * (1 - mask)
    return init


def _blend_outside_mask(
    scheduler: Any, timesteps: torch.Tensor, init: torch.Tensor, noise: torch.Tensor, mask: torch.Tensor
) -> AfterStep:
    """An ordinary UNet inpaints by resetting the area outside the mask to the init picture, noised to match."""

    def blend(latents: torch.Tensor, i: int) -> torch.Tensor:
        if i + 1 < len(timesteps):
            known = scheduler.add_noise(init, noise, timesteps[i + 1 : i + 2].repeat(init.shape[0]))
        else:
            known = init
        return known * (1 - mask) + latents * mask

    return blend
