"""Random upscaler weights in the layouts spandrel detects, written as users have them."""

from __future__ import annotations

from pathlib import Path

import torch
from safetensors.torch import save_file

from sfumato.models.spandrel_import import import_spandrel


def compact_state(scale: int = 2, seed: int = 0) -> dict[str, torch.Tensor]:
    """RealESRGAN's SRVGGNetCompact, tiny: 8 features, 2 body convolutions."""
    import_spandrel()
    from spandrel.architectures.Compact import Compact

    torch.manual_seed(seed)
    net = Compact(num_in_ch=3, num_out_ch=3, num_feat=8, num_conv=2, upscale=scale)
    return {key: value.detach().contiguous() for key, value in net.state_dict().items()}


def esrgan_state(scale: int = 4, seed: int = 0) -> dict[str, torch.Tensor]:
    """The old-layout ESRGAN (RRDBNet, ``model.N.*`` keys), one block of 8 filters."""
    import_spandrel()
    from spandrel.architectures.ESRGAN import ESRGAN

    torch.manual_seed(seed)
    net = ESRGAN(num_filters=8, num_blocks=1, scale=scale)
    return {key: value.detach().contiguous() for key, value in net.state_dict().items()}


def write(path: Path, tensors: dict[str, torch.Tensor]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(path))
    return path
