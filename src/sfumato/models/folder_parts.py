"""One part of a diffusers folder (unet, vae, text_encoder…) straight from its safetensors file.

The module is built from its config on the meta device (no random initialisation of weights the
file replaces anyway) and the file's tensors are assigned as they are, memory-mapped. That skips
``from_pretrained``'s machinery, about half the load time of the built-in model. Only the plain
layout is read this way (one ``*.safetensors`` file under its standard name, keys that fit the
module exactly); anything else (sharded or variant files, legacy key names that ``from_pretrained``
converts) returns None, and the caller uses ``from_pretrained``.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from sfumato.models.ldm_parts import missing_weights, restore_position_ids
from sfumato.models.safety import load_checked_safetensors

if TYPE_CHECKING:
    import torch

DIFFUSERS_WEIGHTS = "diffusion_pytorch_model.safetensors"
TRANSFORMERS_WEIGHTS = "model.safetensors"


def diffusers_part(cls: Any, folder: Path, *, dtype: torch.dtype) -> Any | None:
    """A diffusers model class (UNet2DConditionModel, AutoencoderKL) from ``folder``, or None."""
    import torch

    weights = folder / DIFFUSERS_WEIGHTS
    if not weights.is_file():
        return None
    with torch.device("meta"):
        module = cls.from_config(cls.load_config(str(folder)))
    return _filled(module, weights, dtype)


def transformers_part(cls: Any, folder: Path, *, dtype: torch.dtype) -> Any | None:
    """A transformers CLIP text model class from ``folder``, or None."""
    import torch

    weights = folder / TRANSFORMERS_WEIGHTS
    if not weights.is_file():
        return None
    config = cls.config_class.from_pretrained(str(folder), local_files_only=True)
    config.dtype = dtype  # what from_pretrained records: the dtype the weights are loaded in
    with torch.device("meta"):  # transformers skips its weight initialisation on meta
        module = cls(config)
    restore_position_ids(module)
    return _filled(module, weights, dtype)


def _filled(module: Any, weights: Path, dtype: torch.dtype) -> Any | None:
    _, tensors = load_checked_safetensors(weights)
    state = {k: v.to(dtype) if v.is_floating_point() else v for k, v in tensors.items()}
    result = module.load_state_dict(state, strict=False, assign=True)
    if result.unexpected_keys or missing_weights(module):
        return None
    return module.eval()
