"""A loaded model: the diffusers components the engine runs, and what they are."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sfumato.core.result import ModelInfo

if TYPE_CHECKING:
    import torch
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextModel, CLIPTextModelWithProjection, CLIPTokenizer


@dataclass
class Components:
    """What the engine needs from a checkpoint. SD1/SD2 leave the ``*_2`` fields empty."""

    unet: UNet2DConditionModel
    vae: AutoencoderKL
    text_encoder: CLIPTextModel | CLIPTextModelWithProjection
    tokenizer: CLIPTokenizer
    scheduler_config: dict[str, Any]
    info: ModelInfo
    text_encoder_2: CLIPTextModelWithProjection | None = None
    tokenizer_2: CLIPTokenizer | None = None
    native_size: int = 512
    notes: list[str] = field(default_factory=list)

    @property
    def is_sdxl(self) -> bool:
        return self.text_encoder_2 is not None

    @property
    def is_inpainting(self) -> bool:
        return self.unet.config.in_channels == 9  # pyright: ignore[reportAttributeAccessIssue]

    @property
    def prediction_type(self) -> str:
        return str(self.scheduler_config.get("prediction_type", "epsilon"))

    @property
    def device(self) -> torch.device:
        return self.unet.device

    @property
    def dtype(self) -> torch.dtype:
        return self.unet.dtype

    @property
    def vae_scale_factor(self) -> int:
        return 2 ** (len(self.vae.config.block_out_channels) - 1)  # pyright: ignore[reportAttributeAccessIssue]

    @classmethod
    def from_pipeline(cls, pipe: Any, info: ModelInfo, native_size: int | None = None) -> Components:
        """Take the components of a diffusers Stable Diffusion (XL) pipeline."""
        size = native_size or pipe.unet.config.sample_size * 2 ** (
            len(pipe.vae.config.block_out_channels) - 1
        )
        return cls(
            unet=pipe.unet,
            vae=pipe.vae,
            text_encoder=pipe.text_encoder,
            tokenizer=pipe.tokenizer,
            scheduler_config=dict(pipe.scheduler.config),
            info=info,
            text_encoder_2=getattr(pipe, "text_encoder_2", None),
            tokenizer_2=getattr(pipe, "tokenizer_2", None),
            native_size=int(size),
        )
