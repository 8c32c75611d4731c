"""Between pixels and latents: VAE encode/decode, and the cheap linear preview."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from PIL import Image

from sfumato.core.numerics import check_finite

if TYPE_CHECKING:
    import torch

    from sfumato.models.components import Components

# Linear maps from the 4 latent channels to RGB, fitted by the community on real SD1 / SDXL
# latents (as used by InvokeAI and others for fast previews).
_SD1_LATENT_RGB = (
    (0.3512, 0.2297, 0.3227),
    (0.3250, 0.4974, 0.2350),
    (-0.2829, 0.1762, 0.2721),
    (-0.2120, -0.2616, -0.7177),
)
_SDXL_LATENT_RGB = (
    (0.3651, 0.4232, 0.4341),
    (-0.2533, -0.0042, 0.1068),
    (0.1076, 0.1111, -0.0362),
    (-0.3165, -0.2492, -0.2188),
)

VAE_NAN_NOTE = "The VAE produced NaNs in half precision; the picture was decoded again in float32."


def pil_to_tensor(image: Image.Image) -> torch.Tensor:
    """RGB picture -> [1, 3, H, W] float32 in [-1, 1]."""
    import numpy as np
    import torch

    array = np.asarray(image.convert("RGB"), dtype=np.float32) / 127.5 - 1.0
    return torch.from_numpy(array).permute(2, 0, 1).unsqueeze(0).contiguous()


def mask_to_tensor(mask: Image.Image) -> torch.Tensor:
    """Grey mask -> [1, 1, H, W] float32 in [0, 1] (1 = repaint)."""
    import numpy as np
    import torch

    array = np.asarray(mask.convert("L"), dtype=np.float32) / 255.0
    return torch.from_numpy(array)[None, None].contiguous()


def tensor_to_pils(pixels: torch.Tensor) -> list[Image.Image]:
    """[N, 3, H, W] in [-1, 1] -> N RGB pictures."""
    import torch

    array = ((pixels.float() / 2 + 0.5).clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1)
    return [Image.fromarray(a.cpu().numpy(), "RGB") for a in array]


def _vae_config(components: Components, key: str, default: float) -> float:
    value = getattr(components.vae.config, key, None)
    return default if value is None else float(value)


def encode_distribution(
    components: Components, pixels: torch.Tensor, *, tiled: bool = False
) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and std of the VAE's latent distribution for [N, 3, H, W] pixels (float32, on the device).

    ``tiled``: encoded in overlapping tiles (engine/tiled_vae.py), so memory stays bounded.
    """
    import torch

    if tiled:
        from sfumato.engine.tiled_vae import encode_tiled

        return encode_tiled(components, pixels)
    vae: Any = components.vae  # diffusers' annotations (FloatTensor) are narrower than what it takes
    with torch.no_grad():
        dist = vae.encode(pixels.to(vae.device, vae.dtype)).latent_dist
    return dist.mean.float(), dist.std.float()


def scale_latents(components: Components, latents: torch.Tensor) -> torch.Tensor:
    """VAE latents -> the UNet's latent space."""
    shift = _vae_config(components, "shift_factor", 0.0)
    return (latents - shift) * _vae_config(components, "scaling_factor", 0.18215)


def decode(
    components: Components, latents: torch.Tensor, notes: list[str], *, tiled: bool = False
) -> torch.Tensor:
    """UNet latents -> pixels in [-1, 1] (float32).

    NaNs from a half-precision VAE: decode again in float32; NaNs left after that raise NonFiniteOutput.
    ``tiled``: decoded in overlapping tiles (engine/tiled_vae.py), so memory stays bounded.
    """
    import torch

    vae: Any = components.vae  # diffusers' annotations (FloatTensor) are narrower than what it takes
    raw = latents / _vae_config(components, "scaling_factor", 0.18215) + _vae_config(
        components, "shift_factor", 0.0
    )

    def run() -> torch.Tensor:
        if tiled:
            from sfumato.engine.tiled_vae import decode_tiled

            return decode_tiled(components, raw)
        return vae.decode(raw.to(vae.device, vae.dtype), return_dict=False)[0].float()

    with torch.no_grad():
        pixels = run()
        if vae.dtype != torch.float32 and not bool(torch.isfinite(pixels).all()):
            dtype = vae.dtype
            try:
                vae.to(torch.float32)
                pixels = run()
            finally:
                vae.to(dtype)
            if VAE_NAN_NOTE not in notes:
                notes.append(VAE_NAN_NOTE)
    check_finite(pixels, "the VAE", components.info.name)
    return pixels


def preview(components: Components, latents: torch.Tensor, size: tuple[int, int]) -> Image.Image:
    """A cheap picture of the first latent of a batch: the TAESD decoder when the model has one,
    else a linear map to RGB; no VAE."""
    import torch

    if components.preview_decoder is not None:
        from sfumato.models.preview_decoder import decode_preview

        pixels = decode_preview(components.preview_decoder, latents[:1])
        return tensor_to_pils(pixels)[0].resize(size, Image.Resampling.BILINEAR)

    factors = _SDXL_LATENT_RGB if components.is_sdxl else _SD1_LATENT_RGB
    latent = latents[0].float()
    if latent.shape[0] != len(factors):
        latent = latent[: len(factors)]
    weights = torch.tensor(factors, dtype=torch.float32, device=latent.device)
    rgb = torch.einsum("chw,cr->hwr", latent, weights)
    array = ((rgb + 1) * 127.5).clamp(0, 255).to(torch.uint8).cpu().numpy()
    return Image.fromarray(array, "RGB").resize(size, Image.Resampling.BILINEAR)
