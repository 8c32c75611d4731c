"""The recipe that trains Sfumato's built-in demo model from scratch on the synthetic world.

Three stages, each its own Trainer run in ``<out>/<stage>/``, resumed from its newest checkpoint:

1. ``text``: a small CLIP text encoder (real 49408-token vocabulary, 77 positions) learns to read
   captions by predicting their attributes with linear heads; it is then frozen. Training it
   jointly with the UNet from scratch never picks up the text (see docs on the experiment).
2. ``vae``: an AutoencoderKL with 4 latent channels at f=4 (96x96 -> 24x24x4).
3. ``unet``: a UNet2DConditionModel on the VAE's latents, v-prediction, min-SNR weighting, EMA.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from sfumato.demo import world
from sfumato.training.trainer import TrainConfig, Trainer

if TYPE_CHECKING:
    import torch
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from torch import nn
    from transformers import CLIPTextModel

STAGES = ("text", "vae", "unet", "decoder")
# Steps of each stage of the shipped model (batch sizes below): the same command makes the same model
# on any machine; a faster machine can afford more steps.
TEXT_STEPS = 300
VAE_STEPS = 2000
UNET_STEPS = 7000
DECODER_STEPS = 4000  # the decoder alone, encoder frozen, so the latents the UNet learned stay valid
DECODER_CROP = 32
VAE_CROP = 48  # the VAE is fully convolutional: 48x48 crops train it 4x faster than whole images
VAE_BATCH = 16
EDGE_WEIGHT = 8.0  # pixels near an edge count this much more: shapes, not flat areas, carry the meaning
LATENT_FACTOR = 4
CAPTION_DROPOUT = 0.1
POOL_SIZE = 24576  # scenes rendered and encoded once for the UNet stage; captions vary per step

TEXT_CONFIG: dict[str, Any] = {
    "vocab_size": 49408,
    "hidden_size": 128,
    "intermediate_size": 512,
    "num_hidden_layers": 3,
    "num_attention_heads": 4,
    "max_position_embeddings": 77,
    "hidden_act": "quick_gelu",
    "projection_dim": 128,
    "bos_token_id": 49406,
    "eos_token_id": 49407,
    "pad_token_id": 1,
}
VAE_CONFIG: dict[str, Any] = {
    "in_channels": 3,
    "out_channels": 3,
    "down_block_types": ["DownEncoderBlock2D"] * 3,
    "up_block_types": ["UpDecoderBlock2D"] * 3,
    "block_out_channels": [32, 64, 64],
    "layers_per_block": 1,
    "latent_channels": 4,
    "norm_num_groups": 8,
    "sample_size": world.NATIVE_SIZE,
    "mid_block_add_attention": False,
    "scaling_factor": 1.0,
}
UNET_CONFIG: dict[str, Any] = {
    "sample_size": world.NATIVE_SIZE // LATENT_FACTOR,
    "in_channels": 4,
    "out_channels": 4,
    "down_block_types": ["DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"],
    "up_block_types": ["CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"],
    "block_out_channels": [32, 64, 128],
    "layers_per_block": 1,
    "cross_attention_dim": 128,
    "attention_head_dim": 4,
    "norm_num_groups": 8,
    "addition_embed_type": "text",
    "addition_embed_type_num_heads": 4,
}
SCHEDULER_CONFIG: dict[str, Any] = {
    "_class_name": "EulerDiscreteScheduler",
    "num_train_timesteps": 1000,
    "beta_start": 0.00085,
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
    "prediction_type": "v_prediction",
    "timestep_spacing": "leading",
    "steps_offset": 1,
    "clip_sample": False,  # DDIM would otherwise clip latents to [-1, 1]
    "set_alpha_to_one": False,
}

# Attribute heads of the text stage: each object slot and the background, plus "unspecified"/"none".
_UNSPECIFIED, _NONE = "unspecified", "none"
HEADS: dict[str, list[str]] = {
    "background": [*world.BACKGROUNDS, _UNSPECIFIED],
    "count": ["1", "2"],
    **{
        f"{attr}{slot}": [*values, _UNSPECIFIED, _NONE]
        for slot in (0, 1)
        for attr, values in (
            ("shape", world.SHAPES),
            ("colour", world.COLOURS),
            ("position", world.POSITIONS),
            ("size", world.SIZES),
        )
    },
}


@dataclass
class DemoPlan:
    out: Path
    seed: int = 0
    batch: int = 32
    pool_size: int = POOL_SIZE
    text_steps: int = TEXT_STEPS
    vae_steps: int = VAE_STEPS
    unet_steps: int = UNET_STEPS
    decoder_steps: int = DECODER_STEPS
    text_config: dict[str, Any] = field(default_factory=lambda: dict(TEXT_CONFIG))
    vae_config: dict[str, Any] = field(default_factory=lambda: dict(VAE_CONFIG))
    unet_config: dict[str, Any] = field(default_factory=lambda: dict(UNET_CONFIG))


# -- shared pieces --------------------------------------------------------------------------------


def caption_targets(text: str) -> dict[str, int]:
    parsed = world.parse_caption(text)
    targets = {
        "background": HEADS["background"].index(parsed.background or _UNSPECIFIED),
        "count": max(0, min(1, len(parsed.objects) - 1)),
    }
    for slot in (0, 1):
        obj = parsed.objects[slot] if slot < len(parsed.objects) else None
        for attr in ("shape", "colour", "position", "size"):
            value = _NONE if obj is None else (getattr(obj, attr) or _UNSPECIFIED)
            targets[f"{attr}{slot}"] = HEADS[f"{attr}{slot}"].index(value)
    return targets


def training_captions(step: int, seed: int, count: int, salt: int) -> tuple[list[world.Scene], list[str]]:
    rng = np.random.default_rng((seed, salt, step))
    scenes = [world.sample_scene(rng) for _ in range(count)]
    return scenes, [world.caption(s, rng) for s in scenes]


def tokenize(texts: list[str], longest: bool = False) -> torch.Tensor:
    """Token ids padded to 77, or (``longest``) only as far as the longest text in the batch.

    CLIP's attention is causal, so the outputs up to each text's end token do not depend on the padding.
    """
    from sfumato.models.tokenizer import load_clip_tokenizer

    tokenizer = load_clip_tokenizer()
    padding = "longest" if longest else "max_length"
    return tokenizer(texts, padding=padding, max_length=77, truncation=True, return_tensors="pt").input_ids


def images_to_tensor(images: list[Any]) -> torch.Tensor:
    import torch

    array = np.stack([np.asarray(im, dtype=np.float32) for im in images]) / 127.5 - 1.0
    return torch.from_numpy(array).permute(0, 3, 1, 2).contiguous()


def _write_json(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=1))


# -- stage 1: text encoder ------------------------------------------------------------------------


def build_text_encoder(config: dict[str, Any] | None = None) -> CLIPTextModel:
    from transformers import CLIPTextConfig, CLIPTextModel

    return CLIPTextModel(CLIPTextConfig(**(config or TEXT_CONFIG)))


def text_module(encoder: CLIPTextModel) -> nn.Module:
    import torch
    from torch import nn

    class TextWithHeads(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.encoder = encoder
            width = int(encoder.config.hidden_size) * 2
            self.heads = nn.ModuleDict({name: nn.Linear(width, len(v)) for name, v in HEADS.items()})

        def forward(self, ids: torch.Tensor) -> dict[str, torch.Tensor]:
            out = self.encoder(input_ids=ids)
            mask = (ids != TEXT_CONFIG["eos_token_id"]).float()
            mask[:, 0] = 0
            # The first end-of-text token counts too: it is the pooled output.
            first_eos = (ids == TEXT_CONFIG["eos_token_id"]).int().argmax(dim=1)
            mask[torch.arange(len(ids)), first_eos] = 1
            hidden = out.last_hidden_state
            mean = (hidden * mask[..., None]).sum(1) / mask.sum(1, keepdim=True)
            features = torch.cat([out.pooler_output, mean], dim=1)
            return {name: head(features) for name, head in self.heads.items()}

    return TextWithHeads()


def train_text(plan: DemoPlan) -> CLIPTextModel:
    import torch
    from torch.nn import functional

    folder = plan.out / "text"
    _seed_weights(plan, "text")
    encoder = build_text_encoder(plan.text_config)
    module = text_module(encoder)

    def loss_fn(step: int) -> tuple[torch.Tensor, dict[str, float]]:
        _, texts = training_captions(step, plan.seed, 64, salt=1)
        if step % 10 == 0:
            texts[0] = ""
        ids = tokenize(texts, longest=True)
        targets = [caption_targets(t) for t in texts]
        logits = module(ids)
        losses, correct = [], []
        for name, value in logits.items():
            target = torch.tensor([t[name] for t in targets])
            losses.append(functional.cross_entropy(value, target))
            correct.append((value.argmax(1) == target).float().mean())
        return torch.stack(losses).sum(), {"accuracy": float(torch.stack(correct).min())}

    config = TrainConfig(steps=plan.text_steps, lr=2e-3, warmup_steps=20, seed=plan.seed, checkpoint_every=50)
    _stage_trainer(module, loss_fn, config, folder, "text").fit()
    return encoder


def _seed_weights(plan: DemoPlan, stage: str) -> None:
    """Seed a stage's initial weights by the stage alone: a resumed or split run makes the same model."""
    import torch

    torch.manual_seed(plan.seed * 1000 + STAGES.index(stage))


def _stage_trainer(module: nn.Module, loss_fn: Any, config: TrainConfig, folder: Path, stage: str) -> Trainer:
    _write_json(folder / "plan.json", {"steps": config.steps})
    trainer = Trainer(module, loss_fn, config, folder, name=stage)
    trainer.resume()
    return trainer


def load_stage_weights(module: nn.Module, folder: Path, ema: bool = False) -> int:
    """Load the newest checkpoint's (EMA) weights of a stage into ``module``; returns its step."""
    from sfumato.training.checkpoint import latest_checkpoint, load_tensors

    checkpoint = latest_checkpoint(folder)
    if checkpoint is None:
        raise FileNotFoundError(f"No checkpoint in {folder}.")
    source = checkpoint.ema_file if ema and checkpoint.ema_file.exists() else checkpoint.model_file
    module.load_state_dict(load_tensors(source), strict=False)
    return checkpoint.step


# -- stage 2: VAE ---------------------------------------------------------------------------------


def build_vae(config: dict[str, Any] | None = None) -> AutoencoderKL:
    from diffusers import AutoencoderKL

    return AutoencoderKL(**(config or VAE_CONFIG))


def vae_batch(step: int, seed: int, count: int, crop: int | None = None) -> torch.Tensor:
    rng = np.random.default_rng((seed, 2, step))
    images = images_to_tensor([world.render(world.sample_scene(rng)) for _ in range(count)])
    if crop is None:
        return images
    cells = (world.NATIVE_SIZE - crop) // LATENT_FACTOR
    x, y = (int(v) * LATENT_FACTOR for v in rng.integers(0, cells + 1, size=2))
    return images[:, :, y : y + crop, x : x + crop].contiguous()


def train_vae(plan: DemoPlan) -> AutoencoderKL:

    folder = plan.out / "vae"
    _seed_weights(plan, "vae")
    vae = build_vae(plan.vae_config)

    def loss_fn(step: int) -> tuple[torch.Tensor, dict[str, float]]:
        images = vae_batch(step, plan.seed, VAE_BATCH, crop=VAE_CROP)
        posterior = vae.encode(images).latent_dist  # pyright: ignore[reportAttributeAccessIssue]
        decoded = vae.decode(posterior.sample()).sample  # pyright: ignore[reportAttributeAccessIssue]
        loss = reconstruction_loss(decoded, images) + 1e-6 * posterior.kl().mean()
        return loss, {"psnr": psnr(decoded, images)}

    config = TrainConfig(steps=plan.vae_steps, lr=2e-3, warmup_steps=50, seed=plan.seed, checkpoint_every=100)
    _stage_trainer(vae, loss_fn, config, folder, "vae").fit()
    return vae


def edge_weights(images: torch.Tensor) -> torch.Tensor:
    """Per-pixel loss weights: 1 in flat areas, 1 + EDGE_WEIGHT within two pixels of an edge."""
    from torch.nn import functional

    # The largest change over the colour channels: red next to green is an edge at equal brightness.
    dx = functional.pad((images[..., :, 1:] - images[..., :, :-1]).abs().amax(1, keepdim=True), (0, 1))
    dy = functional.pad((images[..., 1:, :] - images[..., :-1, :]).abs().amax(1, keepdim=True), (0, 0, 0, 1))
    near_edge = functional.max_pool2d(dx + dy, 5, stride=1, padding=2) > 0.05
    return 1 + EDGE_WEIGHT * near_edge.float()


def reconstruction_loss(decoded: torch.Tensor, images: torch.Tensor) -> torch.Tensor:
    """MSE + L1/2, weighted towards edges: a blurred small star reads as a circle, a blurred sky does not."""
    weights = edge_weights(images)
    error = decoded - images
    return (weights * (error.square() + 0.5 * error.abs())).mean() / weights.mean()


def psnr(decoded: torch.Tensor, images: torch.Tensor) -> float:
    import torch

    mse = torch.mean((decoded.detach() - images) ** 2)
    return float(10 * torch.log10(4.0 / mse))


def latent_scale(vae: AutoencoderKL, seed: int) -> float:
    import torch

    with torch.no_grad():
        latents = vae.encode(vae_batch(10**6, seed, 64)).latent_dist.mean  # pyright: ignore[reportAttributeAccessIssue]
    return float(1.0 / latents.std())


def train_decoder(plan: DemoPlan) -> AutoencoderKL:
    """Train the VAE's decoder further with the encoder frozen: the latents the UNet learned stay valid."""
    import torch

    folder = plan.out / "decoder"
    vae = build_vae(plan.vae_config)
    load_stage_weights(vae, plan.out / "vae")
    vae.encoder.requires_grad_(False)
    if vae.quant_conv is not None:
        vae.quant_conv.requires_grad_(False)

    def loss_fn(step: int) -> tuple[torch.Tensor, dict[str, float]]:
        images = vae_batch(step + 10**7, plan.seed, 16, crop=DECODER_CROP)
        with torch.no_grad():
            latents = vae.encode(images).latent_dist.mean  # pyright: ignore[reportAttributeAccessIssue]
        decoded = vae.decode(latents).sample  # pyright: ignore[reportAttributeAccessIssue]
        return reconstruction_loss(decoded, images), {"psnr": psnr(decoded, images)}

    config = TrainConfig(
        steps=plan.decoder_steps, lr=1e-3, warmup_steps=20, seed=plan.seed, checkpoint_every=100
    )
    _stage_trainer(vae, loss_fn, config, folder, "decoder").fit()
    return vae


# -- stage 3: UNet --------------------------------------------------------------------------------


def build_unet(config: dict[str, Any] | None = None) -> UNet2DConditionModel:
    from diffusers import UNet2DConditionModel

    return UNet2DConditionModel(**(config or UNET_CONFIG))


def train_unet(plan: DemoPlan, encoder: CLIPTextModel, vae: AutoencoderKL) -> UNet2DConditionModel:
    import torch
    from diffusers import DDPMScheduler
    from torch.nn import functional

    folder = plan.out / "unet"
    scale_file = folder / "latent_scale.json"
    if not scale_file.exists():
        _write_json(scale_file, {"scaling_factor": latent_scale(vae, plan.seed)})
    scaling = float(json.loads(scale_file.read_text())["scaling_factor"])
    _seed_weights(plan, "unet")
    unet = build_unet(plan.unet_config)
    noise = DDPMScheduler(
        **{k: SCHEDULER_CONFIG[k] for k in ("num_train_timesteps", "beta_start", "beta_end", "beta_schedule")}
    )
    alphas = noise.alphas_cumprod
    encoder.requires_grad_(False)
    vae.requires_grad_(False)
    encoder.eval()
    vae.eval()

    scenes, latents_pool = _latent_pool(plan, vae, scaling)

    def loss_fn(step: int) -> tuple[torch.Tensor, dict[str, float]]:
        rng = np.random.default_rng((plan.seed, 3, step))
        picked = rng.integers(0, len(scenes), size=plan.batch)
        texts = [world.caption(scenes[i], rng) if rng.random() >= CAPTION_DROPOUT else "" for i in picked]
        generator = torch.Generator().manual_seed(int(rng.integers(2**31)))
        latents = latents_pool[torch.from_numpy(picked)]
        with torch.no_grad():
            context = encoder(input_ids=tokenize(texts)).last_hidden_state
        eps = torch.randn(latents.shape, generator=generator)
        t = torch.randint(0, len(alphas), (len(latents),), generator=generator)
        a = alphas[t].sqrt()[:, None, None, None]
        s = (1 - alphas[t]).sqrt()[:, None, None, None]
        noisy = a * latents + s * eps
        target = a * eps - s * latents
        predicted = unet(noisy, t, encoder_hidden_states=context).sample
        snr = alphas[t] / (1 - alphas[t])
        weight = torch.clamp(snr, max=5.0) / (snr + 1)
        per_sample = functional.mse_loss(predicted, target, reduction="none").mean(dim=(1, 2, 3))
        return (per_sample * weight).mean(), {}

    config = TrainConfig(
        steps=plan.unet_steps,
        lr=1.5e-3,
        warmup_steps=100,
        seed=plan.seed,
        ema_decay=0.999,
        checkpoint_every=100,
    )
    _stage_trainer(unet, loss_fn, config, folder, "unet").fit()
    return unet


def _latent_pool(
    plan: DemoPlan, vae: AutoencoderKL, scaling: float
) -> tuple[list[world.Scene], torch.Tensor]:
    import torch

    rng = np.random.default_rng((plan.seed, 4))
    scenes = [world.sample_scene(rng) for _ in range(plan.pool_size)]
    chunks = []
    with torch.no_grad():
        for start in range(0, len(scenes), 64):
            images = images_to_tensor([world.render(s) for s in scenes[start : start + 64]])
            chunks.append(vae.encode(images).latent_dist.mean * scaling)  # pyright: ignore[reportAttributeAccessIssue]
    return scenes, torch.cat(chunks)


def stage_done(folder: Path, steps: int) -> bool:
    from sfumato.training.checkpoint import latest_checkpoint

    checkpoint = latest_checkpoint(folder)
    return checkpoint is not None and checkpoint.step >= steps


def train_demo(plan: DemoPlan, decoder_beside: bool = False) -> None:
    """Run (or resume) every stage of the demo model's training into ``plan.out``.

    With ``decoder_beside`` the decoder stage is left out: run `train_decoder` in another process
    beside the UNet (it needs only the VAE stage); the result is the same.
    """
    import torch

    torch.manual_seed(plan.seed)
    _write_json(
        plan.out / "run.json",
        {
            "seed": plan.seed,
            "batch": plan.batch,
            "pool_size": plan.pool_size,
            "steps": {
                "text": plan.text_steps,
                "vae": plan.vae_steps,
                "unet": plan.unet_steps,
                "decoder": plan.decoder_steps,
            },
            "text_config": plan.text_config,
            "vae_config": plan.vae_config,
            "unet_config": plan.unet_config,
        },
    )
    if stage_done(plan.out / "text", plan.text_steps):
        encoder = build_text_encoder(plan.text_config)
        load_stage_weights(text_module(encoder), plan.out / "text")
    else:
        encoder = train_text(plan)
    if stage_done(plan.out / "vae", plan.vae_steps):
        vae = build_vae(plan.vae_config)
        load_stage_weights(vae, plan.out / "vae")
    else:
        vae = train_vae(plan)
    if not stage_done(plan.out / "unet", plan.unet_steps):
        train_unet(plan, encoder, vae)
    if not decoder_beside and not stage_done(plan.out / "decoder", plan.decoder_steps):
        train_decoder(plan)
