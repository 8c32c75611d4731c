"""Seamless tiling (A1111's "Tiling"): every convolution of the UNet and the VAE pads circularly, so the
picture's left edge continues its right and its top its bottom, and copies of it tile without seams.

The padding mode is set on the model's own convolution layers for one job and restored afterwards, also
when the job fails: the library's classes are never changed.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sfumato.models.components import Components

CIRCULAR = "circular"


@contextmanager
def seamless_tiling(components: Components, enabled: bool = True) -> Iterator[None]:
    import torch

    if not enabled:
        yield
        return
    changed: list[tuple[torch.nn.Conv2d, Any]] = []
    try:
        for model in (components.unet, components.vae):
            for module in model.modules():
                # Padding of 0 has nothing to wrap; a string padding ("same") is not one the wrap can follow.
                if (
                    isinstance(module, torch.nn.Conv2d)
                    and isinstance(module.padding, tuple)
                    and any(module.padding)
                ):
                    changed.append((module, module.padding_mode))
                    module.padding_mode = CIRCULAR
        yield
    finally:
        for module, mode in changed:
            module.padding_mode = mode
