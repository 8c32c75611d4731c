"""spandrel without torchvision: the one place that makes ``import spandrel`` work on CPU installs.

spandrel (upscaler and face-restorer architectures) declares torchvision, but its import needs only
three names from ``torchvision.transforms.functional``: ``normalize`` (RestoreFormer's input),
``rotate`` and ``InterpolationMode`` (LaMa's learnable spatial transform). No CPU build of
torchvision matches the CPU torch Sfumato installs, and the CUDA build that pip would pull fails to
import beside it and breaks transformers too. So Sfumato installs spandrel with ``--no-deps`` and,
where torchvision is absent, provides those three names here *only while spandrel imports*: the
stand-in modules are removed from ``sys.modules`` afterwards, so no other library ever sees a fake
torchvision. Where a real torchvision imports (GPU installs), it is used and nothing is provided.
"""

from __future__ import annotations

import enum
import importlib
import importlib.util
import sys
import types
from collections.abc import Sequence
from typing import TYPE_CHECKING

from sfumato.core.errors import SfumatoError

if TYPE_CHECKING:
    import torch

_STAND_INS = ("torchvision", "torchvision.transforms", "torchvision.transforms.functional")
INSTALL_HINT = "Install it without its torchvision requirement: pip install --no-deps spandrel (and einops)."


class InterpolationMode(enum.Enum):
    NEAREST = "nearest"
    BILINEAR = "bilinear"
    BICUBIC = "bicubic"


def normalize(
    tensor: torch.Tensor, mean: Sequence[float], std: Sequence[float], inplace: bool = False
) -> torch.Tensor:
    """torchvision's ``normalize`` for a (…, C, H, W) tensor: (x - mean) / std per channel."""
    import torch

    mean_t = torch.as_tensor(mean, dtype=tensor.dtype, device=tensor.device).view(-1, 1, 1)
    std_t = torch.as_tensor(std, dtype=tensor.dtype, device=tensor.device).view(-1, 1, 1)
    if inplace:
        return tensor.sub_(mean_t).div_(std_t)
    return (tensor - mean_t) / std_t


def rotate(
    img: torch.Tensor,
    angle: float | torch.Tensor,
    interpolation: InterpolationMode = InterpolationMode.NEAREST,
    expand: bool = False,
    center: Sequence[int] | None = None,
    fill: float | None = None,
) -> torch.Tensor:
    """torchvision's ``rotate`` for (…, C, H, W) tensors: counter-clockwise by ``angle`` degrees about
    the centre, same size, outside filled with ``fill`` (0)."""
    import torch
    import torch.nn.functional as F  # noqa: N812

    if expand or center is not None:
        raise NotImplementedError("rotate(expand=True or center=...) needs torchvision; install it.")
    if interpolation not in (InterpolationMode.NEAREST, InterpolationMode.BILINEAR):
        raise NotImplementedError(f"rotate with {interpolation} needs torchvision; install it.")
    batch_shape = img.shape[:-3]
    x = img.reshape(-1, *img.shape[-3:])
    # The grid maps output pixels to input pixels, so it turns by -angle for a counter-clockwise turn.
    theta = torch.as_tensor(angle, dtype=x.dtype, device=x.device).reshape(()) * (-torch.pi / 180)
    cos, sin = torch.cos(theta), torch.sin(theta)
    height, width = x.shape[-2:]
    # affine_grid works in [-1, 1] coordinates; the aspect terms keep the rotation rigid in pixels.
    zero = torch.zeros_like(cos)
    matrix = torch.stack(
        [
            torch.stack([cos, sin * height / width, zero]),
            torch.stack([-sin * width / height, cos, zero]),
        ]
    ).expand(x.shape[0], 2, 3)
    grid = F.affine_grid(matrix, list(x.shape), align_corners=False)
    out = F.grid_sample(x, grid, mode=interpolation.value, padding_mode="zeros", align_corners=False)
    if fill:
        inside = F.grid_sample(torch.ones_like(x[:, :1]), grid, mode=interpolation.value, align_corners=False)
        out = out + (1 - inside) * fill
    return out.reshape(*batch_shape, *out.shape[-3:])


def _torchvision_imports() -> bool:
    if importlib.util.find_spec("torchvision") is None:
        return False
    try:
        importlib.import_module("torchvision.transforms.functional")
    except Exception:  # a broken torchvision (e.g. a CUDA build beside CPU torch) fails in many ways
        return False
    return True


def _stand_in_modules() -> dict[str, types.ModuleType]:
    modules = {name: types.ModuleType(name) for name in _STAND_INS}
    functional = modules["torchvision.transforms.functional"]
    functional.normalize = normalize  # type: ignore[attr-defined]
    functional.rotate = rotate  # type: ignore[attr-defined]
    functional.InterpolationMode = InterpolationMode  # type: ignore[attr-defined]
    modules["torchvision.transforms"].functional = functional  # type: ignore[attr-defined]
    modules["torchvision"].transforms = modules["torchvision.transforms"]  # type: ignore[attr-defined]
    return modules


def import_spandrel() -> types.ModuleType:
    """``spandrel``, imported with a real torchvision where one works, with the stand-in otherwise."""
    if "spandrel" in sys.modules:
        return sys.modules["spandrel"]
    if importlib.util.find_spec("spandrel") is None:
        raise SfumatoError("Upscaler and face-restorer models need the spandrel package.", INSTALL_HINT)
    if _torchvision_imports():
        return importlib.import_module("spandrel")
    for name in _STAND_INS:  # a broken torchvision's half-imported modules
        sys.modules.pop(name, None)
    sys.modules.update(_stand_in_modules())
    try:
        return importlib.import_module("spandrel")
    except ImportError as error:
        raise SfumatoError(f"spandrel could not be imported ({error}).", INSTALL_HINT) from error
    finally:
        for name in _STAND_INS:
            sys.modules.pop(name, None)
