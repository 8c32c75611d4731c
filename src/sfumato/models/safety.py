"""Read model files without ever running code hidden in them.

The format is decided by the file's first bytes, never by its extension: a pickle renamed
``.safetensors`` is refused like any other pickle. Only ``convert`` (an explicit user request)
reads a pickle, and then with ``torch.load(weights_only=True)`` on a torch without the known
holes in that unpickler.
"""

from __future__ import annotations

import json
import math
import struct
import tempfile
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sfumato.core.errors import CorruptModelFile, UnsafeModelFile, UnsupportedModel

if TYPE_CHECKING:
    import torch

# ComfyUI uses the same bound: a real header is a few MB at most.
MAX_HEADER_BYTES = 100_000_000
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
        f"{path.name} is {what}: loading it could run any code hidden in it, so Sfumato does not open it.",
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
            f"{path.name} is empty.", "The download or copy probably failed; get the file again."
        )
    if fmt is FileFormat.GGUF:
        raise UnsupportedModel(f"{path.name}: not supported yet: looks like a GGUF (quantised) model.")
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
        header = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        if fmt is FileFormat.UNKNOWN:
            raise UnsupportedModel(
                f"{path.name} is not a model file Sfumato can read (neither safetensors nor a known format).",
                "Check that it is a Stable Diffusion checkpoint, VAE, LoRA or embedding.",
            ) from None
        raise _corrupt(path, "its header is not valid JSON") from None
    if not isinstance(header, dict):
        raise _corrupt(path, "its header is not a JSON object")
    return _check_entries(path, header, size - 8 - length)


def _check_entries(path: Path, header: dict[str, Any], data_size: int) -> SafetensorsHeader:
    metadata = header.pop("__metadata__", None) or {}
    if not isinstance(metadata, dict):
        raise _corrupt(path, "its metadata is not a JSON object")
    tensors: dict[str, TensorInfo] = {}
    for name, entry in header.items():
        try:
            dtype, shape, (begin, end) = (
                entry["dtype"],
                tuple(int(d) for d in entry["shape"]),
                entry["data_offsets"],
            )
            begin, end = int(begin), int(end)
        except (KeyError, TypeError, ValueError):
            raise _corrupt(path, f"the entry for tensor {name!r} is malformed") from None
        if dtype not in DTYPE_BYTES:
            raise UnsupportedModel(
                f"{path.name}: tensor {name!r} has a data type Sfumato does not know ({dtype})."
            )
        if not 0 <= begin <= end <= data_size:
            raise _corrupt(path, f"tensor {name!r} lies past the end of the file (truncated?)")
        if end - begin != math.prod(shape) * DTYPE_BYTES[dtype]:
            raise _corrupt(path, f"tensor {name!r} has the wrong number of bytes for its shape")
        tensors[name] = TensorInfo(dtype, shape)
    return SafetensorsHeader(tensors, {str(k): str(v) for k, v in metadata.items()})


def _corrupt(path: Path, why: str) -> CorruptModelFile:
    return CorruptModelFile(
        f"{path.name} is not a valid safetensors file: {why}.",
        "The file is probably truncated or damaged; download or copy it again.",
    )


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
    with tempfile.NamedTemporaryFile(dir=path.parent, suffix=".partial", delete=False) as handle:
        partial = Path(handle.name)
    try:
        save_file(tensors, str(partial), metadata={"converted_from": path.name})
        partial.replace(target)
    finally:
        partial.unlink(missing_ok=True)
    return target


def _tensors_of(loaded: object) -> dict[str, torch.Tensor]:
    import torch

    while isinstance(loaded, dict) and "state_dict" in loaded and isinstance(loaded["state_dict"], dict):
        loaded = loaded["state_dict"]
    if not isinstance(loaded, dict):
        return {}
    out: dict[str, torch.Tensor] = {}
    seen: dict[tuple[int, int], str] = {}
    for key, value in loaded.items():
        if not isinstance(value, torch.Tensor):
            continue
        # safetensors refuses tensors that share memory: give each its own copy
        ident = (value.untyped_storage().data_ptr(), int(value.storage_offset()))
        tensor = value.detach().clone() if ident in seen else value.detach().contiguous()
        seen[ident] = str(key)
        out[str(key)] = tensor
    return out
