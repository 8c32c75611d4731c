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
    """What the engine needs from a checkpoint. SD1/SD2 leave the ``*_2`` fields empty.

    SDXL's refiner has one text encoder (OpenCLIP ViT-bigG, with projection): it is
    ``text_encoder`` and the ``*_2`` fields stay empty, as for SD1/SD2.
    """

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
    # Where to compute when the weights live elsewhere between uses (low-VRAM modes, models/offload.py).
    execution_device: torch.device | None = None
    # A TAESD decoder (diffusers' AutoencoderTiny) for live previews, from the user's files (models/preview_decoder.py).
    preview_decoder: Any = None
    # The UNet compiled with frozen weights for the sampling loop (``compile_unet``, models/compiled_unet.py).
    fast_unet: Any = None

    @property
    def is_sdxl(self) -> bool:
        """SDXL base, inpainting or refiner: the SDXL VAE, pooled text and time ids."""
        return self.text_encoder_2 is not None or self.is_refiner

    @property
    def is_refiner(self) -> bool:
        """SDXL's refiner: one text encoder, and an aesthetic score instead of the target size."""
        return self.text_encoder_2 is None and self.added_time_ids == 5

    @property
    def added_time_ids(self) -> int:
        """How many size/crop/score numbers the UNet takes with the text: SDXL 6, its refiner 5, else 0."""
        config: Any = self.unet.config
        if config.get("addition_embed_type") != "text_time":
            return 0
        pooled_by = self.text_encoder_2 if self.text_encoder_2 is not None else self.text_encoder
        pooled: Any = pooled_by.config
        extra = int(config.projection_class_embeddings_input_dim) - int(pooled.projection_dim)
        return extra // int(config.addition_time_embed_dim)

    @property
    def is_inpainting(self) -> bool:
        return self.unet.config.in_channels == 9  # pyright: ignore[reportAttributeAccessIssue]

    @property
    def prediction_type(self) -> str:
        return str(self.scheduler_config.get("prediction_type", "epsilon"))

    @property
    def device(self) -> torch.device:
        return self.execution_device if self.execution_device is not None else self.unet.device

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
        encoders = [
            (pipe.text_encoder, pipe.tokenizer),
            (getattr(pipe, "text_encoder_2", None), getattr(pipe, "tokenizer_2", None)),
        ]
        if encoders[0][0] is None:  # SDXL's refiner: its one encoder comes first here
            encoders = [encoders[1], (None, None)]
        return cls(
            unet=pipe.unet,
            vae=pipe.vae,
            text_encoder=encoders[0][0],
            tokenizer=encoders[0][1],
            scheduler_config=dict(pipe.scheduler.config),
            info=info,
            text_encoder_2=encoders[1][0],
            tokenizer_2=encoders[1][1],
            native_size=int(size),
        )
