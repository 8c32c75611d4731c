"""Tiny random Stable Diffusion components (diffusers' dummy-components pattern), for mechanics tests."""

from __future__ import annotations

from typing import Any

import torch

from sfumato.core.result import ModelInfo
from sfumato.models.components import Components
from sfumato.models.tokenizer import load_clip_tokenizer

SCHEDULER_CONFIG: dict[str, Any] = {
    "beta_start": 0.00085,
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
    "num_train_timesteps": 1000,
    "prediction_type": "epsilon",
    "steps_offset": 1,
    "clip_sample": False,
    "set_alpha_to_one": False,
    "timestep_spacing": "leading",
}


def _text_encoder(projection: bool = False, hidden: int = 32) -> Any:
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    config = CLIPTextConfig(
        vocab_size=49408,
        hidden_size=hidden,
        intermediate_size=37,
        num_attention_heads=4,
        num_hidden_layers=3,
        max_position_embeddings=77,
        projection_dim=hidden,
        hidden_act="quick_gelu",
        bos_token_id=49406,
        eos_token_id=49407,
        pad_token_id=49407,
    )
    model = (CLIPTextModelWithProjection if projection else CLIPTextModel)(config)
    randomise_norms(model)
    return model.eval()


def randomise_norms(model: torch.nn.Module) -> None:
    """Random affine parameters for every LayerNorm (drawn from the global seed).

    With transformers' init (weight 1, bias 0) the final norm gives every token a zero mean, so a
    chunk's mean is 0 up to rounding and whatever divides by it depends on how a CPU sums.
    """
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.LayerNorm):
                module.weight.normal_(1.0, 0.3)
                module.bias.normal_(0.0, 0.3)


def tiny_components(
    *, inpainting: bool = False, sdxl: bool = False, seed: int = 0, prediction_type: str = "epsilon"
) -> Components:
    """A random SD1-like (or SDXL-like) model that makes 64x64 pictures in milliseconds."""
    from diffusers import AutoencoderKL, UNet2DConditionModel

    torch.manual_seed(seed)
    unet_kwargs: dict[str, Any] = {
        "block_out_channels": (32, 64),
        "layers_per_block": 1,
        "sample_size": 32,
        "in_channels": 9 if inpainting else 4,
        "out_channels": 4,
        "down_block_types": ("DownBlock2D", "CrossAttnDownBlock2D"),
        "up_block_types": ("CrossAttnUpBlock2D", "UpBlock2D"),
        "norm_num_groups": 8,
        "attention_head_dim": (2, 4),
    }
    if sdxl:
        unet_kwargs |= {
            "cross_attention_dim": 64,
            "addition_embed_type": "text_time",
            "addition_time_embed_dim": 8,
            "projection_class_embeddings_input_dim": 32 + 6 * 8,
            "transformer_layers_per_block": (1, 2),
            "use_linear_projection": True,
        }
    else:
        unet_kwargs["cross_attention_dim"] = 32
    unet = UNet2DConditionModel(**unet_kwargs).eval()
    torch.manual_seed(seed)
    vae_kwargs: dict[str, Any] = {
        "block_out_channels": (32, 64),
        "in_channels": 3,
        "out_channels": 3,
        "down_block_types": ("DownEncoderBlock2D", "DownEncoderBlock2D"),
        "up_block_types": ("UpDecoderBlock2D", "UpDecoderBlock2D"),
        "latent_channels": 4,
        "norm_num_groups": 8,
        "sample_size": 64,
    }
    vae = AutoencoderKL(**vae_kwargs).eval()
    torch.manual_seed(seed)
    text_encoder = _text_encoder()
    text_encoder_2 = _text_encoder(projection=True) if sdxl else None
    config = dict(SCHEDULER_CONFIG, prediction_type=prediction_type)
    return Components(
        unet=unet,
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=load_clip_tokenizer(),
        scheduler_config=config,
        info=ModelInfo(
            name="tiny-sdxl" if sdxl else "tiny", hash="0123456789", architecture="sdxl" if sdxl else "sd1"
        ),
        text_encoder_2=text_encoder_2,
        tokenizer_2=load_clip_tokenizer("!") if sdxl else None,
        native_size=64,
    )
