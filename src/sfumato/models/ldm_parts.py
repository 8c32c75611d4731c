"""Build the UNet and the CLIP text encoders from an original-layout (LDM) state dict.

Key conversion is diffusers' own. The modules are made on the meta device, which skips
initialising weights that the file replaces anyway, and the file's tensors are assigned as they
are (memory-mapped, no copy when the dtype already matches). Weights the file lacks stay on the
meta device, where ``missing_weights`` finds them.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from sfumato.models.identify import SD1_CLIP, SDXL_CLIP_L

if TYPE_CHECKING:
    import torch


def unet_from_ldm(
    state: dict[str, torch.Tensor], config_dir: Path, *, dtype: torch.dtype, in_channels: int
) -> Any:
    import torch
    from diffusers import UNet2DConditionModel
    from diffusers.loaders.single_file_utils import convert_ldm_unet_checkpoint

    loaded: Any = UNet2DConditionModel.load_config(str(config_dir))
    config: dict[str, Any] = dict(loaded)
    config["in_channels"] = in_channels
    converted = convert_ldm_unet_checkpoint(state, config)
    with torch.device("meta"):
        unet: Any = UNet2DConditionModel.from_config(config)
    unet.load_state_dict(_cast(converted, dtype), strict=False, assign=True)
    return unet.eval()


def clip_from_ldm(
    cls: Any, state: dict[str, torch.Tensor], prefix: str, config_dir: Path, *, dtype: torch.dtype
) -> Any:
    """``cls`` (CLIPTextModel or CLIPTextModelWithProjection) from the keys under ``prefix``."""
    import torch
    from diffusers.loaders.single_file_utils import convert_ldm_clip_checkpoint, convert_open_clip_checkpoint

    config = cls.config_class.from_pretrained(str(config_dir), local_files_only=True)
    with torch.device("meta"):  # transformers skips its weight initialisation on meta
        model = cls(config)
    if prefix in (SD1_CLIP, SDXL_CLIP_L):  # OpenAI CLIP-L layout; the rest is OpenCLIP
        # only this encoder's keys: diffusers strips both CLIP-L prefixes it knows
        converted = convert_ldm_clip_checkpoint(
            {k: v for k, v in state.items() if k.startswith(prefix)}, prefix
        )
    else:
        converted = convert_open_clip_checkpoint(model, state, prefix=prefix)
    text_model = getattr(model, "text_model", None)
    if text_model is None:  # transformers >= 5.6 flattened CLIPTextModel
        text_model = model
        converted = {k.removeprefix("text_model."): v for k, v in converted.items()}
    model.load_state_dict(_cast(converted, dtype), strict=False, assign=True)
    restore_position_ids(model)
    return model.eval()


def restore_position_ids(model: Any) -> None:
    """The one buffer a CLIP text model's file does not carry: made on meta with the model, so rebuilt."""
    import torch

    text_model = getattr(model, "text_model", model)
    positions = text_model.embeddings.position_embedding.num_embeddings
    text_model.embeddings.register_buffer(
        "position_ids", torch.arange(positions).expand((1, -1)), persistent=False
    )


def missing_weights(module: Any) -> list[str]:
    """Names of the parameters and buffers that were never loaded."""
    tensors = [*module.named_parameters(), *module.named_buffers()]
    return [name for name, tensor in tensors if tensor.device.type == "meta"]


def _cast(state: dict[str, torch.Tensor], dtype: torch.dtype) -> dict[str, torch.Tensor]:
    return {k: v.to(dtype) if v.is_floating_point() else v for k, v in state.items()}
