"""Will a job fit in memory? An estimate before it starts, and a clear refusal instead of swapping.

The weights are already loaded when a job starts; what a job adds is working memory: the UNet's
activations for one guided step (the batch twice over for CFG) and the VAE decoder's at the final
size (the largest part at big sizes, unless the decode is tiled). Both grow with the pixel count;
the per-pixel figures below are an upper-bound fit to diffusers' SD1.5 UNet and VAE on the CPU
(flash attention, so no size² attention matrix), scaled by the element size and by the model's
widths. Without a way to read the free memory the check passes.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from sfumato.core.errors import InvalidRequest

if TYPE_CHECKING:
    import torch

    from sfumato.models.components import Components

# Bytes of working memory per latent pixel per picture per byte of element, for SD1.5's widths
# (UNet block_out_channels[0] = 320; VAE decoder's last width 128 at full resolution).
UNET_PER_LATENT_PIXEL = 48 * 320
VAE_PER_PIXEL = 10 * 128
GIB = 1024**3


class NotEnoughMemory(InvalidRequest):
    """A job would need more memory than the machine has free."""


def available_bytes(device: torch.device) -> int | None:
    """Free memory where the job computes: the GPU's free VRAM, or the system's available RAM."""
    import torch

    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return int(free)
    if device.type != "cpu":
        return None
    meminfo = Path("/proc/meminfo")
    if meminfo.is_file():
        for line in meminfo.read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    try:
        import psutil  # pyright: ignore[reportMissingModuleSource]
    except ImportError:
        return None
    return int(psutil.virtual_memory().available)


def estimate_bytes(components: Components, width: int, height: int, batch: int, *, tiled_vae: bool) -> int:
    """Working memory of one job at ``width`` x ``height`` with ``batch`` pictures at once."""
    unet: Any = components.unet.config
    vae: Any = components.vae.config
    element = components.dtype.itemsize
    factor = components.vae_scale_factor
    latent_pixels = (width // factor) * (height // factor)
    unet_bytes = UNET_PER_LATENT_PIXEL * int(unet.block_out_channels[0]) // 320 * latent_pixels * 2 * batch
    decode_pixels = components.native_size**2 if tiled_vae else width * height
    vae_bytes = VAE_PER_PIXEL * int(vae.block_out_channels[0]) // 128 * decode_pixels * batch
    return element * max(unet_bytes, vae_bytes)


def check_memory(
    components: Components, width: int, height: int, batch: int, *, tiled_vae: bool, available: int | None
) -> None:
    """Raise NotEnoughMemory, saying what to do, when the estimate is over ``available`` bytes."""
    if available is None:
        return
    needed = estimate_bytes(components, width, height, batch, tiled_vae=tiled_vae)
    if needed <= available:
        return
    tips = ["a smaller size"]
    if batch > 1:
        tips.append("a smaller batch size")
    if not tiled_vae and estimate_bytes(components, width, height, batch, tiled_vae=True) <= available:
        tips.append("the tiled VAE (--tiled-vae / tiled_vae: true)")
    if components.device.type == "cuda":
        tips.append('vram_mode = "lowvram"')
    where = "VRAM" if components.device.type == "cuda" else "memory"
    raise NotEnoughMemory(
        f"This job needs about {needed / GIB:.1f} GiB of {where} at {width}x{height} "
        f"(batch {batch}) but only {available / GIB:.1f} GiB is free.",
        f"Try {', or '.join(tips)}; or close other programs.",
    )
