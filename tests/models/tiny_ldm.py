"""Tiny SD1 / SD2 / SDXL / refiner models written as original-layout single files, with their config folders."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from ldm_writer import checkpoint_to_ldm, write_checkpoint

SCHEDULER = {
    "_class_name": "EulerDiscreteScheduler",
    "beta_start": 0.00085,
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
    "num_train_timesteps": 1000,
    "prediction_type": "epsilon",
    "steps_offset": 1,
    "timestep_spacing": "leading",
}


@dataclass
class TinyModel:
    architecture: str
    unet: Any
    vae: Any
    text_encoder: Any
    text_encoder_2: Any
    config_dir: Path

    def state(self, **kwargs: Any) -> dict[str, torch.Tensor]:
        return checkpoint_to_ldm(
            self.unet,
            self.vae,
            self.text_encoder,
            self.text_encoder_2,
            architecture=self.architecture,
            **kwargs,
        )

    def write(self, path: Path, dtype: torch.dtype | None = None, **kwargs: Any) -> Path:
        return write_checkpoint(path, self.state(**kwargs), dtype=dtype)


def _clip(hidden: int, layers: int, projection: bool, act: str) -> Any:
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    config = CLIPTextConfig(
        vocab_size=49408,
        hidden_size=hidden,
        intermediate_size=2 * hidden,
        num_attention_heads=4,
        num_hidden_layers=layers,
        max_position_embeddings=77,
        projection_dim=hidden,
        hidden_act=act,
        bos_token_id=0,
        eos_token_id=2,
        pad_token_id=1,
    )
    return (CLIPTextModelWithProjection if projection else CLIPTextModel)(config).eval()


def build_tiny(
    architecture: str,
    folder: Path,
    *,
    inpainting: bool = False,
    seed: int = 0,
    vae_channels: tuple[int, ...] = (16, 32),
    latent_channels: int = 4,
) -> TinyModel:
    from diffusers import AutoencoderKL, UNet2DConditionModel

    torch.manual_seed(seed)
    unet_kwargs: dict[str, Any] = {
        "block_out_channels": (32, 64),
        "layers_per_block": 1,
        "sample_size": 8,
        "in_channels": 9 if inpainting else 4,
        "out_channels": 4,
        "down_block_types": ("CrossAttnDownBlock2D", "DownBlock2D"),
        "up_block_types": ("UpBlock2D", "CrossAttnUpBlock2D"),
        "norm_num_groups": 8,
        "attention_head_dim": 4,
    }
    te1 = te2 = None
    if architecture == "sd1":
        te1 = _clip(32, 2, False, "quick_gelu")
        unet_kwargs["cross_attention_dim"] = 32
    elif architecture == "sd2":
        te1 = _clip(48, 2, False, "gelu")
        unet_kwargs |= {"cross_attention_dim": 48, "use_linear_projection": True}
    elif architecture in ("sdxl", "sdxl-refiner"):
        # different widths for the two encoders, as in the real models (768 and 1280)
        te2 = _clip(64, 2, True, "gelu")
        time_ids = 6 if architecture == "sdxl" else 5
        if architecture == "sdxl":
            te1 = _clip(32, 2, False, "quick_gelu")
        unet_kwargs |= {
            "cross_attention_dim": 96 if architecture == "sdxl" else 64,
            "addition_embed_type": "text_time",
            "addition_time_embed_dim": 8,
            "projection_class_embeddings_input_dim": 64 + time_ids * 8,
            "transformer_layers_per_block": (2, 1),
            "use_linear_projection": True,
            "down_block_types": ("DownBlock2D", "CrossAttnDownBlock2D"),
            "up_block_types": ("CrossAttnUpBlock2D", "UpBlock2D"),
        }
    else:
        raise ValueError(architecture)
    unet = UNet2DConditionModel(**unet_kwargs).eval()
    vae = AutoencoderKL(
        block_out_channels=vae_channels,  # pyright: ignore[reportArgumentType]
        down_block_types=("DownEncoderBlock2D",) * len(vae_channels),  # pyright: ignore[reportArgumentType]
        up_block_types=("UpDecoderBlock2D",) * len(vae_channels),  # pyright: ignore[reportArgumentType]
        latent_channels=latent_channels,
        norm_num_groups=8,
        sample_size=16,
    ).eval()
    _randomise(unet, vae, te1, te2, seed=seed)
    folder.mkdir(parents=True, exist_ok=True)
    unet.save_config(str(folder / "unet"))
    vae.save_config(str(folder / "vae"))
    for sub, model in (("text_encoder", te1), ("text_encoder_2", te2)):
        if model is not None:
            model.config.save_pretrained(str(folder / sub))
    (folder / "scheduler").mkdir(exist_ok=True)
    (folder / "scheduler" / "scheduler_config.json").write_text(json.dumps(SCHEDULER))
    (folder / "model_index.json").write_text(json.dumps({"_class_name": "StableDiffusionPipeline"}))
    return TinyModel(architecture, unet, vae, te1, te2, folder)


def _randomise(*modules: Any, seed: int) -> None:
    """Zero-initialised layers (conv_out, norms) would hide key mix-ups: give every weight its own values."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in modules:
            if module is None:
                continue
            for param in module.parameters():
                param.copy_(torch.randn(param.shape, generator=generator) * 0.05 + 0.01)
