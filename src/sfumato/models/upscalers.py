"""Upscaler model files (ESRGAN, RealESRGAN, SwinIR, HAT, DAT, OmniSR, …) through spandrel, and
running them on pictures of any size.

spandrel tells the architecture from the state dict's keys and shapes and builds the network; Sfumato
gives it only tensors read from a checked safetensors file (pickles are refused before, with the
``sfumato models convert`` path). The architecture is told from the header alone for listings:
tensors on the meta device carry shapes without data.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PIL import Image

from sfumato.core.errors import InvalidRequest, ModelNotFound, UnsupportedModel
from sfumato.models.safety import (
    SafetensorsHeader,
    file_label,
    load_checked_safetensors,
    read_safetensors_header,
)

if TYPE_CHECKING:
    import torch

    from sfumato.core.settings import Settings

BUILTIN_UPSCALER = "2x-sfumato-demo"
MAX_PASSES = 3
DEFAULT_TILE = 192  # input pixels a side per tile, as A1111's ESRGAN tile default
DEFAULT_OVERLAP = 16  # context pixels around each tile, run and thrown away
_SCALE_IN_NAME = re.compile(r"(?:^|[^0-9a-z])(?:x([1-8])|([1-8])x)(?![0-9])", re.IGNORECASE)


@dataclass
class UpscalerModel:
    """A loaded upscaler, ready to run on (N, 3, H, W) tensors in [0, 1]."""

    name: str
    path: Path
    architecture: str  # spandrel's name: "ESRGAN", "RealESRGAN Compact", "SwinIR", …
    scale: int
    network: torch.nn.Module
    device: torch.device
    dtype: torch.dtype
    size_requirements: Any  # spandrel's SizeRequirements (multiple_of, minimum, square)

    def __call__(self, pixels: torch.Tensor) -> torch.Tensor:
        import torch

        with torch.inference_mode():
            out = self.network(pixels.to(self.device, self.dtype))
            if self.dtype != torch.float32 and not bool(torch.isfinite(out).all()):
                # some GAN upscalers overflow in half precision: run this one in float32 from now on,
                # with the file's own weights (not the half-precision ones rounded back)
                self.network = load_upscaler(self.path, device=self.device, dtype=torch.float32).network
                self.dtype = torch.float32
                out = self.network(pixels.to(self.device, self.dtype))
        return out.float().clamp(0, 1)


def demo_upscaler_file() -> Path:
    """The built-in 2x upscaler trained on the demo world (see its model card)."""
    return Path(__file__).resolve().parent.parent / "demo" / "upscaler" / f"{BUILTIN_UPSCALER}.safetensors"


def scale_from_name(name: str) -> int | None:
    """The factor a file's name announces (``4x-UltraSharp``, ``RealESRGAN_x4plus``), if any."""
    match = _SCALE_IN_NAME.search(Path(name).stem)
    return int(match.group(1) or match.group(2)) if match else None


def _meta_state_dict(header: SafetensorsHeader) -> dict[str, torch.Tensor]:
    import torch

    return {name: torch.empty(info.shape, device="meta") for name, info in header.tensors.items()}


def architecture_of_header(header: SafetensorsHeader) -> str | None:
    """spandrel's name for the architecture the tensors describe, or None when none matches."""
    from sfumato.models.spandrel_import import import_spandrel

    spandrel = import_spandrel()
    state = spandrel.canonicalize_state_dict(_meta_state_dict(header))
    for support in spandrel.MAIN_REGISTRY.architectures("detection"):
        try:
            if support.detect(state):
                return support.architecture.name
        except Exception:  # a detector that reads values cannot run on shapes alone: not this one
            continue
    return None


def identify_upscaler(path: Path) -> str:
    """The architecture's name, from the header alone; raises UnsupportedModel when spandrel knows none."""
    header = read_safetensors_header(path)
    architecture = architecture_of_header(header)
    if architecture is None:
        raise _unknown_architecture(path)
    return architecture


def _unknown_architecture(path: Path) -> UnsupportedModel:
    return UnsupportedModel(
        f"{file_label(path)}: not an upscaler architecture Sfumato knows (spandrel detects none in its tensors).",
        "Supported: ESRGAN, RealESRGAN (and Compact), SwinIR, HAT, DAT, OmniSR and the other spandrel "
        "architectures; check that the file is an upscaler and not damaged.",
    )


def load_upscaler(
    path: Path, *, device: torch.device, dtype: torch.dtype, name: str | None = None
) -> UpscalerModel:
    """Load an upscaler file on ``device``; fp16/bf16 only where the architecture supports it."""
    import torch

    from sfumato.models.spandrel_import import import_spandrel

    spandrel = import_spandrel()
    _, tensors = load_checked_safetensors(path)
    try:
        descriptor = spandrel.ModelLoader(device="cpu").load_from_state_dict(tensors)
    except spandrel.UnsupportedModelError:
        raise _unknown_architecture(path) from None
    except (KeyError, RuntimeError, ValueError, IndexError) as error:  # detected, but shapes disagree
        raise UnsupportedModel(
            f"{file_label(path)}: looks like {_detected_name(tensors)} but its tensors do not fit it ({error}).",
            "The file may be damaged or a variant spandrel does not support.",
        ) from None
    if not isinstance(descriptor, spandrel.ImageModelDescriptor) or descriptor.input_channels != 3:
        raise UnsupportedModel(
            f"{file_label(path)} is a {descriptor.architecture.name} model, not an RGB upscaler.",
            "Give an upscaler (ESRGAN, RealESRGAN, SwinIR, …) file.",
        )
    if descriptor.purpose in ("FaceSR", "Inpainting"):
        raise UnsupportedModel(
            f"{file_label(path)} is a {descriptor.architecture.name} {descriptor.purpose} model, not an upscaler.",
            "Use it as a face restorer; give an upscaler file here.",
        )
    if dtype == torch.float16 and not descriptor.supports_half:
        dtype = torch.float32
    if dtype == torch.bfloat16 and not descriptor.supports_bfloat16:
        dtype = torch.float32
    network = descriptor.model.eval().to(device=device, dtype=dtype)
    return UpscalerModel(
        name=name or path.stem,
        path=path,
        architecture=descriptor.architecture.name,
        scale=descriptor.scale,
        network=network,
        device=device,
        dtype=dtype,
        size_requirements=descriptor.size_requirements,
    )


def _detected_name(tensors: dict[str, torch.Tensor]) -> str:
    from sfumato.models.spandrel_import import import_spandrel

    spandrel = import_spandrel()
    for support in spandrel.MAIN_REGISTRY.architectures("detection"):
        try:
            if support.detect(tensors):
                return f"a {support.architecture.name} model"
        except Exception:  # detectors may index keys that are absent
            continue
    return "an upscaler"


def find_upscaler(settings: Settings, name: str) -> Path:
    """An upscaler file by its name in the library, else a clear ModelNotFound."""
    from sfumato.models.library import ModelLibrary

    if name in (BUILTIN_UPSCALER, f"{BUILTIN_UPSCALER}.safetensors") and demo_upscaler_file().is_file():
        return demo_upscaler_file()
    # by name only, never a path: names reach here from clients of the server too
    found = ModelLibrary(settings).resolve("upscaler", name)
    if found is not None:
        return found
    raise ModelNotFound(
        f"No upscaler named {name!r}.",
        "See `sfumato models list` for the upscalers in your folders (A1111's models/ESRGAN, RealESRGAN, "
        "SwinIR, DAT, HAT or ComfyUI's models/upscale_models), or use Lanczos or Nearest.",
    )


def open_upscaler(settings: Settings, name: str) -> UpscalerModel:
    """Find and load an upscaler by name on the settings' device, in half precision on GPUs."""
    from sfumato.models.device import resolve_device, resolve_dtype

    device = resolve_device(settings.device)
    dtype = resolve_dtype(settings.precision, device)
    path = find_upscaler(settings, name)
    if path.is_dir():
        raise InvalidRequest(f"{name!r} is a folder, not an upscaler file.")
    return load_upscaler(path, device=device, dtype=dtype, name=name)


def enlarge(
    model: UpscalerModel,
    picture: Image.Image,
    size: tuple[int, int],
    *,
    tile: int = DEFAULT_TILE,
    overlap: int = DEFAULT_OVERLAP,
) -> Image.Image:
    """The model run on ``picture`` until it covers ``size`` (at most ``MAX_PASSES`` times)."""
    for _ in range(MAX_PASSES):
        if picture.width >= size[0] and picture.height >= size[1]:
            break
        picture = run_model(model, picture, tile=tile, overlap=overlap)
    return picture


def run_model(model: UpscalerModel, picture: Image.Image, *, tile: int, overlap: int) -> Image.Image:
    """One pass of the model over the whole picture, tile by tile when it is larger than ``tile``."""
    return to_picture(run_tiled(model, to_pixels(picture), tile=tile, overlap=overlap))


def run_tiled(model: UpscalerModel, pixels: torch.Tensor, *, tile: int, overlap: int) -> torch.Tensor:
    """The model's output for (1, 3, H, W) ``pixels`` in [0, 1], computed tile by tile.

    Each tile is run with ``overlap`` pixels of the picture around it as context and only the tile's
    own area of the output is kept: once the context covers the network's reach, the seams vanish
    and the result equals the untiled one within rounding (convolutional networks; attention
    windows see a little less context at tile edges).
    """
    import torch

    _, _, height, width = pixels.shape
    scale = model.scale
    out = torch.zeros((1, 3, height * scale, width * scale), dtype=torch.float32)
    for top in range(0, height, tile):
        for left in range(0, width, tile):
            bottom, right = min(height, top + tile), min(width, left + tile)
            # the tile plus its context, clipped to the picture
            ctop, cleft = max(0, top - overlap), max(0, left - overlap)
            cbottom, cright = min(height, bottom + overlap), min(width, right + overlap)
            result = _run_padded(model, pixels[:, :, ctop:cbottom, cleft:cright])
            y, x = (top - ctop) * scale, (left - cleft) * scale
            out[:, :, top * scale : bottom * scale, left * scale : right * scale] = result[
                :, :, y : y + (bottom - top) * scale, x : x + (right - left) * scale
            ].cpu()
    return out


def _run_padded(model: UpscalerModel, pixels: torch.Tensor) -> torch.Tensor:
    """Run the model on a piece, padded at the bottom and right as the architecture needs (a multiple
    of a window size, a minimum side, a square), and the padding's output cut off."""
    import torch

    needs = model.size_requirements
    _, _, height, width = pixels.shape
    pad_w, pad_h = needs.get_padding(width, height) if needs is not None else (0, 0)
    if pad_w or pad_h:
        pixels = torch.nn.functional.pad(pixels, (0, pad_w, 0, pad_h), mode="replicate")
    out = model(pixels)
    return out[:, :, : height * model.scale, : width * model.scale]


def to_pixels(picture: Image.Image) -> torch.Tensor:
    """RGB picture -> (1, 3, H, W) float32 in [0, 1]."""
    import numpy as np
    import torch

    array = np.asarray(picture.convert("RGB"), dtype=np.float32) / 255.0
    return torch.from_numpy(array).permute(2, 0, 1).unsqueeze(0).contiguous()


def to_picture(pixels: torch.Tensor) -> Image.Image:
    """(1, 3, H, W) in [0, 1] -> RGB picture."""
    import torch

    array = (pixels[0].clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()
    return Image.fromarray(array, "RGB")
