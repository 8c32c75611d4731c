"""Read model files without ever running code hidden in them.

The format is decided by the file's first bytes, never by its extension: a pickle renamed
``.safetensors`` is refused like any other pickle. Only ``convert`` (an explicit user request)
reads a pickle, and then with ``torch.load(weights_only=True)`` on a torch without the known
holes in that unpickler.
"""

from __future__ import annotations

import math
import struct
import tempfile
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sfumato.core.errors import CorruptModelFile, UnsafeModelFile, UnsupportedModel
from sfumato.core.untrusted import UntrustedData, is_count, parse_json

if TYPE_CHECKING:
    import torch

# ComfyUI uses the same bound: a real header is a few MB at most.
MAX_HEADER_BYTES = 100_000_000
MAX_HEADER_DEPTH = 4  # {name: {"shape": [..]}} is 3 deep
MAX_RANK = 16
MAX_CONFIG_BYTES = 4_000_000  # a diffusers config is a few KB
MIN_SAFE_TORCH = (2, 10)  # CVE-2025-32434 (< 2.6) and CVE-2026-24747 (< 2.10) in weights_only loading

DTYPE_BYTES = {
    "BOOL": 1, "U8": 1, "I8": 1, "F8_E4M3": 1, "F8_E5M2": 1, "F8_E8M0": 1,
    "I16": 2, "U16": 2, "F16": 2, "BF16": 2,
    "I32": 4, "U32": 4, "F32": 4,
    "I64": 8, "U64": 8, "F64": 8,
}  # fmt: skip


class FileFormat(Enum):
    SAFETENSORS = "safetensors"
    PICKLE = "pickle"  # legacy torch.save or plain pickle
    ZIP_PICKLE = "zip-pickle"  # torch.save's zip container around data.pkl
    GGUF = "gguf"
    EMPTY = "empty"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class TensorInfo:
    dtype: str
    shape: tuple[int, ...]


@dataclass(frozen=True)
class SafetensorsHeader:
    tensors: dict[str, TensorInfo]
    metadata: dict[str, str] = field(default_factory=dict)


def sniff_format(path: Path) -> FileFormat:
    """What the file is, from its first bytes."""
    with path.open("rb") as handle:
        head = handle.read(16)
    if not head:
        return FileFormat.EMPTY
    if head.startswith(b"PK\x03\x04") or head.startswith(b"PK\x05\x06"):
        return FileFormat.ZIP_PICKLE
    if head.startswith(b"GGUF"):
        return FileFormat.GGUF
    if head[0] == 0x80 and len(head) > 1 and 2 <= head[1] <= 5:
        return FileFormat.PICKLE
    if len(head) >= 9 and head[8:9] == b"{":
        return FileFormat.SAFETENSORS
    if head[:1] in (b"(", b"}", b"]", b"c"):  # pickle protocols 0/1 start with an opcode like these
        return FileFormat.PICKLE
    return FileFormat.UNKNOWN


def unsafe_error(path: Path, fmt: FileFormat) -> UnsafeModelFile:
    what = "a PyTorch pickle (zip)" if fmt is FileFormat.ZIP_PICKLE else "a Python pickle"
    return UnsafeModelFile(
        f"{file_label(path)} is {what}: loading it could run any code hidden in it, so Sfumato does not open it.",
        f"If you trust where it came from, convert it once with `sfumato models convert {path}`, "
        "which reads only tensors and writes a .safetensors file beside it.",
    )


def read_safetensors_header(path: Path) -> SafetensorsHeader:
    """The tensor names, dtypes and shapes of a safetensors file, checked against the file size.

    Refuses anything that is not a safetensors file, pickles first of all.
    """
    fmt = sniff_format(path)
    if fmt in (FileFormat.PICKLE, FileFormat.ZIP_PICKLE):
        raise unsafe_error(path, fmt)
    if fmt is FileFormat.EMPTY:
        raise CorruptModelFile(
            f"{file_label(path)} is empty.", "The download or copy probably failed; get the file again."
        )
    if fmt is FileFormat.GGUF:
        raise UnsupportedModel(f"{file_label(path)}: not supported yet: looks like a GGUF (quantised) model.")
    size = path.stat().st_size
    with path.open("rb") as handle:
        prefix = handle.read(8)
        if len(prefix) < 8:
            raise _corrupt(path, "it is shorter than a safetensors header")
        (length,) = struct.unpack("<Q", prefix)
        if length > MAX_HEADER_BYTES or 8 + length > size:
            raise _corrupt(path, f"its header claims {length} bytes but the file has {size}")
        raw = handle.read(length)
    try:
        header = parse_json(raw, max_depth=MAX_HEADER_DEPTH)
    except UntrustedData as exc:
        if fmt is FileFormat.UNKNOWN:
            raise UnsupportedModel(
                f"{file_label(path)} is not a model file Sfumato can read (neither safetensors nor a known format).",
                "Check that it is a Stable Diffusion checkpoint, VAE, LoRA or embedding.",
            ) from None
        raise _corrupt(path, f"its header is unreadable: {exc}") from None
    if not isinstance(header, dict):
        raise _corrupt(path, "its header is not a JSON object")
    return _check_entries(path, header, size - 8 - length)


def _check_entries(path: Path, header: dict[str, Any], data_size: int) -> SafetensorsHeader:
    """Every number a finite integer in range, every field of its type, as the safetensors format says."""
    metadata = header.pop("__metadata__", None) or {}
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        raise _corrupt(path, "its metadata is not a JSON object of texts")
    tensors: dict[str, TensorInfo] = {}
    for name, entry in header.items():
        shown = name if len(name) <= 80 else name[:77] + "..."
        if not isinstance(entry, dict) or not {"dtype", "shape", "data_offsets"} <= entry.keys():
            raise _corrupt(path, f"the entry for tensor {shown!r} is not a dtype, shape and data_offsets")
        dtype, shape, offsets = entry["dtype"], entry["shape"], entry["data_offsets"]
        if not isinstance(shape, list) or not all(is_count(d) for d in shape) or len(shape) > MAX_RANK:
            raise _corrupt(path, f"tensor {shown!r} has a shape that is not a list of whole numbers >= 0")
        if not isinstance(offsets, list) or len(offsets) != 2 or not all(is_count(o) for o in offsets):
            raise _corrupt(path, f"tensor {shown!r} has data offsets that are not two whole numbers >= 0")
        if not isinstance(dtype, str) or dtype not in DTYPE_BYTES:
            raise UnsupportedModel(
                f"{file_label(path)}: tensor {shown!r} has a data type Sfumato does not know ({str(dtype)[:20]})."
            )
        begin, end = offsets
        if not begin <= end <= data_size:
            raise _corrupt(path, f"tensor {shown!r} lies past the end of the file (truncated?)")
        if end - begin != math.prod(shape) * DTYPE_BYTES[dtype]:
            raise _corrupt(path, f"tensor {shown!r} has the wrong number of bytes for its shape")
        tensors[name] = TensorInfo(dtype, tuple(shape))
    return SafetensorsHeader(tensors, dict(metadata))


def read_model_config(path: Path) -> dict[str, Any]:
    """A diffusers folder's JSON config (``unet/config.json``, ``scheduler/scheduler_config.json``…), checked."""
    try:
        if path.stat().st_size > MAX_CONFIG_BYTES:
            raise UntrustedData(f"it is larger than {MAX_CONFIG_BYTES // 1_000_000} MB")
        config = parse_json(path.read_bytes())
    except OSError as exc:
        raise CorruptModelFile(
            f"{_in_model_folder(path)} cannot be read ({exc.strerror or exc}).",
            "A diffusers folder has unet/, vae/, text_encoder/ and scheduler/, each with its config; copy the whole folder again.",
        ) from None
    except UntrustedData as exc:
        raise _bad_config(path, str(exc)) from None
    if not isinstance(config, dict):
        raise _bad_config(path, "it is not a JSON object")
    return config


def config_int(config: dict[str, Any], key: str, default: int, path: Path, *, high: int = 1 << 20) -> int:
    """A positive whole number from a model config, or the clear error that names the file and the key."""
    value = config.get(key, default)
    if isinstance(value, list) and value:  # diffusers allows one value per block for some keys
        value = value[0]
    if not is_count(value) or not 0 < value <= high:
        raise _bad_config(path, f"{key} must be a whole number from 1 to {high}, not {str(value)[:20]}")
    return value


def _bad_config(path: Path, why: str) -> CorruptModelFile:
    return CorruptModelFile(
        f"{_in_model_folder(path)} is not a valid model config: {why}.",
        "The folder is damaged or was not written by diffusers; copy the model folder again.",
    )


def _corrupt(path: Path, why: str) -> CorruptModelFile:
    return CorruptModelFile(
        f"{file_label(path)} is not a valid safetensors file: {why}.",
        "The file is probably truncated or damaged; download or copy it again.",
    )


def file_label(path: Path) -> str:
    """The file as a user would look for it: a diffusers part's weights with their model folder."""
    if path.stem.startswith(("diffusion_pytorch_model", "model")) and path.parent.name:
        return _in_model_folder(path)
    return path.name


def _in_model_folder(path: Path) -> str:
    return f"{path.parent.parent.name}/{path.parent.name}/{path.name}"


def load_safetensors(path: Path, device: str = "cpu") -> dict[str, torch.Tensor]:
    """All tensors of a checked safetensors file (memory-mapped; pickles are refused first)."""
    return load_checked_safetensors(path, device)[1]


def load_checked_safetensors(
    path: Path, device: str = "cpu"
) -> tuple[SafetensorsHeader, dict[str, torch.Tensor]]:
    """The checked header and all tensors of a safetensors file, the header read once."""
    from safetensors.torch import load_file

    header = read_safetensors_header(path)
    try:
        return header, load_file(str(path), device=device)
    except Exception as exc:  # safetensors raises its own error types for damaged data
        raise _corrupt(path, str(exc)) from exc


def torch_is_safe_for_weights_only(version: str | None = None) -> bool:
    if version is None:
        import torch

        version = torch.__version__
    numbers = version.split("+")[0].split(".")
    try:
        return (int(numbers[0]), int(numbers[1])) >= MIN_SAFE_TORCH
    except (ValueError, IndexError):
        return False


def convert_to_safetensors(path: Path, *, torch_version: str | None = None) -> Path:
    """Read the tensors of a pickled checkpoint (weights only) and write ``<name>.safetensors`` beside it.

    Only ever called on the user's explicit request.
    """
    import torch
    from safetensors.torch import save_file

    fmt = sniff_format(path)
    if fmt is FileFormat.SAFETENSORS:
        raise UnsupportedModel(f"{path.name} is already a safetensors file; there is nothing to convert.")
    if fmt not in (FileFormat.PICKLE, FileFormat.ZIP_PICKLE):
        raise UnsupportedModel(f"{path.name} is not a PyTorch checkpoint Sfumato can convert ({fmt.value}).")
    if not torch_is_safe_for_weights_only(torch_version):
        raise UnsafeModelFile(
            f"Refusing to read {path.name}: torch {torch_version or torch.__version__} has known holes in its "
            "safe loader (CVE-2025-32434, CVE-2026-24747).",
            "Upgrade torch to 2.10 or newer, then convert again.",
        )
    target = path.with_suffix(".safetensors")
    if target == path:  # a pickle disguised as .safetensors: keep the original, write beside it
        target = path.with_name(path.stem + ".converted.safetensors")
    if target.exists():
        raise UnsupportedModel(
            f"{target.name} already exists.", "Move or delete it first, or load it directly."
        )
    try:
        # Original textual-inversion files keep their vectors in a ParameterDict (a mapping of tensors).
        with torch.serialization.safe_globals([torch.nn.ParameterDict]):
            loaded = torch.load(
                str(path), map_location="cpu", weights_only=True, mmap=fmt is FileFormat.ZIP_PICKLE
            )
    except Exception as exc:  # UnpicklingError for forbidden globals, RuntimeError/EOFError for damage
        raise UnsafeModelFile(
            f"{path.name} holds more than tensors (or is damaged), so it was not read: {str(exc).splitlines()[0]}",
            "Only plain weight files can be converted; get a .safetensors version of this model instead.",
        ) from exc
    tensors = _tensors_of(loaded)
    if not tensors:
        raise UnsupportedModel(f"{path.name} contains no tensors.")
    metadata = {"converted_from": path.name}
    if isinstance(loaded, dict):  # an A1111 embedding's name and the checkpoint it was trained on
        metadata |= {
            key: value
            for key, value in loaded.items()
            if key in ("name", "sd_checkpoint", "sd_checkpoint_name") and isinstance(value, str)
        }
    with tempfile.NamedTemporaryFile(dir=path.parent, suffix=".partial", delete=False) as handle:
        partial = Path(handle.name)
    try:
        save_file(tensors, str(partial), metadata=metadata)
        partial.replace(target)
    finally:
        partial.unlink(missing_ok=True)
    return target


# Where training scripts keep the weights: checkpoints under "state_dict"; BasicSR's upscalers (RealESRGAN,
# SwinIR, HAT, DAT) under "params_ema" (the EMA weights, preferred as the released ones) or "params".
_WRAPPERS = ("state_dict", "params_ema", "params-ema", "params", "model_state_dict", "net")


def _tensors_of(loaded: object) -> dict[str, torch.Tensor]:
    """The tensors of a loaded pickle, nested mappings flattened with dots: an A1111 embedding's
    ``{"string_to_param": {"*": t}}`` becomes ``string_to_param.*``, its safetensors layout."""
    import torch

    while isinstance(loaded, dict):
        wrapped = next((loaded[k] for k in _WRAPPERS if isinstance(loaded.get(k), dict)), None)
        if wrapped is None:
            break
        loaded = wrapped
    if not isinstance(loaded, dict):
        return {}
    out: dict[str, torch.Tensor] = {}
    seen: dict[tuple[int, int], str] = {}
    stack: list[tuple[str, object, int]] = [("", loaded, 0)]
    while stack:
        prefix, mapping, depth = stack.pop()
        items = mapping.items() if isinstance(mapping, dict | torch.nn.ParameterDict) else ()
        for key, value in items:
            name = f"{prefix}{key}"
            if isinstance(value, dict | torch.nn.ParameterDict) and depth < 4:
                stack.append((name + ".", value, depth + 1))
            if not isinstance(value, torch.Tensor):
                continue
            # safetensors refuses tensors that share memory: give each its own copy
            ident = (value.untyped_storage().data_ptr(), int(value.storage_offset()))
            tensor = value.detach().clone() if ident in seen else value.detach().contiguous()
            seen[ident] = name
            out[name] = tensor
    return out
