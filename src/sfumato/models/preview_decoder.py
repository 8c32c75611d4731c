"""TAESD preview decoders from the user's files: live previews that look like the picture.

madebyollin's TAESD decoders (``taesd_decoder`` for SD1/SD2, ``taesdxl_decoder`` for SDXL) sit in
A1111's ``models/VAE-approx`` or ComfyUI's ``models/vae_approx``; the library lists them as
``vae_approx``. They are built as diffusers' ``AutoencoderTiny`` (its decoder only) from a
safetensors file, in madebyollin's numbered layout or diffusers' own. Pickled ``.pth``/``.pt``
copies are not read (Sfumato never unpickles); without a usable file the engine keeps the linear
latent→RGB preview.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from sfumato.core.errors import CorruptModelFile

if TYPE_CHECKING:
    import torch

    from sfumato.core.settings import Settings

SD_DECODER = "taesd_decoder"
SDXL_DECODER = "taesdxl_decoder"


def find_preview_decoder(settings: Settings, *, sdxl: bool) -> Path | None:
    """The user's TAESD decoder for this family (a .safetensors file), if the library has one."""
    from sfumato.models.library import ModelLibrary

    wanted = SDXL_DECODER if sdxl else SD_DECODER
    for entry in ModelLibrary(settings).entries():
        is_file = entry.kind == "vae_approx" and entry.path.suffix == ".safetensors"
        if is_file and entry.path.stem.lower() == wanted:
            return entry.path
    return None


def _diffusers_key(key: str) -> str:
    """madebyollin's ``3.conv.0.weight`` → diffusers' ``decoder.layers.2.conv.0.weight``.

    His decoder starts with a clamp layer that diffusers does in its forward instead, so his
    layer numbers are one ahead of diffusers'.
    """
    if key.startswith("decoder."):
        return key
    index, _, rest = key.partition(".")
    return f"decoder.layers.{int(index) - 1}.{rest}"


ARCHITECTURE_KEYS = (
    "decoder_block_out_channels",
    "encoder_block_out_channels",
    "num_decoder_blocks",
    "num_encoder_blocks",
    "latent_channels",
    "upsampling_scaling_factor",
)


def load_preview_decoder(path: Path) -> Any:
    """An ``AutoencoderTiny`` whose decoder holds the file's weights (float32, CPU, eval mode).

    ``path`` is a safetensors file (TAESD's architecture) or a folder with ``config.json`` beside
    ``diffusion_pytorch_model.safetensors`` (another size, as the demo model's preview decoder).
    """
    from diffusers import AutoencoderTiny

    from sfumato.models.safety import load_checked_safetensors, read_model_config

    architecture: dict[str, Any] = {}
    if path.is_dir():
        config = read_model_config(path / "config.json")
        architecture = {
            k: tuple(config[k]) if isinstance(config[k], list) else config[k]
            for k in ARCHITECTURE_KEYS
            if k in config
        }
        path = path / "diffusion_pytorch_model.safetensors"
    _, tensors = load_checked_safetensors(path)
    decoder_keys = [k for k in tensors if k.startswith("decoder.") or k[:1].isdigit()]
    try:
        weights = {_diffusers_key(k): tensors[k].float() for k in decoder_keys}
    except ValueError:
        raise CorruptModelFile(
            f"{path} is not a TAESD decoder: its tensor names are not numbered layers."
        ) from None
    try:
        model: Any = AutoencoderTiny(**architecture)
    except (TypeError, ValueError, IndexError) as exc:
        raise CorruptModelFile(
            f"{path.parent}/config.json does not describe a TAESD decoder ({exc})."
        ) from None
    expected = {k for k in model.state_dict() if k.startswith("decoder.")}
    if set(weights) != expected:
        missing = sorted(expected - set(weights))[:3]
        raise CorruptModelFile(
            f"{path} is not a TAESD decoder for 4-channel latents (missing or extra tensors, e.g. {missing}).",
            "Use madebyollin's taesd_decoder.safetensors (SD1/SD2) or taesdxl_decoder.safetensors (SDXL).",
        )
    try:
        model.load_state_dict(weights, strict=False)
    except RuntimeError as exc:  # wrong shapes
        raise CorruptModelFile(f"{path} does not fit a TAESD decoder: {exc}".splitlines()[0]) from None
    return model.eval()


def decode_preview(decoder: Any, latents: torch.Tensor) -> torch.Tensor:
    """[N, 4, h, w] UNet latents → [N, 3, 8h, 8w] pixels in [-1, 1] (float32)."""
    import torch

    with torch.no_grad():
        return decoder.decode(latents.float().cpu(), return_dict=False)[0].float().clamp(-1, 1)
