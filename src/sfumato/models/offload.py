"""Low-VRAM modes (A1111's --medvram / --lowvram) for GPUs smaller than a model.

- ``medvram``: each part (text encoders, UNet, VAE) lives in system memory and moves to the GPU
  whole when it runs, pushing the part before it back out (accelerate's ``cpu_offload_with_hook``):
  at most one large part on the GPU at a time, at little cost in speed.
- ``lowvram``: the parts' layers move to the GPU one at a time as the forward pass reaches them
  (diffusers' leaf-level group offloading): the least VRAM, much slower.

The weights stay real tensors in system memory in both modes, so LoRAs apply to them as usual.
The engine reads where to compute from ``Components.execution_device``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    import torch

    from sfumato.models.components import Components

VramMode = Literal["normal", "medvram", "lowvram"]
VRAM_MODES: tuple[str, ...] = ("normal", "medvram", "lowvram")


def _parts(components: Components) -> list[Any]:
    """The parts in the order a text-to-image job runs them."""
    parts: list[Any] = [components.text_encoder, components.text_encoder_2, components.unet, components.vae]
    return [part for part in parts if part is not None]


def apply_vram_mode(components: Components, mode: VramMode, device: torch.device) -> None:
    """Put the loaded parts under ``mode``'s offloading, computing on ``device``."""
    import torch

    if mode == "normal":
        return
    offload_to = torch.device("cpu")
    for part in _parts(components):
        part.to(offload_to)
    if mode == "medvram":
        from accelerate import cpu_offload_with_hook

        hook = None
        for part in _parts(components):
            _, hook = cpu_offload_with_hook(part, execution_device=device, prev_module_hook=hook)
    else:
        from diffusers.hooks import apply_group_offloading

        for part in _parts(components):
            apply_group_offloading(
                part, onload_device=device, offload_device=offload_to, offload_type="leaf_level"
            )
    components.execution_device = device
    if device.type == "cpu":
        components.notes.append(
            f"{mode} moves model parts to a GPU as they run; on the CPU it changes nothing."
        )
