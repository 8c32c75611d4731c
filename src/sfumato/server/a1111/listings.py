"""What A1111's model listings say about each file, read from the safetensors header only (no tensor is
loaded, no pickle opened): an embedding's vectors and width, and a LoRA's training metadata."""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass
from typing import Any

from sfumato.server.catalog import ModelEntry

# The text-encoder width A1111 compares an embedding's with: SDXL's two encoders count together.
MODEL_WIDTH = {"sd1": 768, "sd2": 1024, "sdxl": 2048, "sdxl-inpaint": 2048, "sdxl-refiner": 1280}


@dataclass(frozen=True)
class EmbeddingShape:
    vectors: int = 0
    shape: int = 0  # the width of one vector; 0 when the file cannot be read
    step: int | None = None
    sd_checkpoint: str | None = None
    sd_checkpoint_name: str | None = None
    readable: bool = False


def embedding_shape(entry: ModelEntry) -> EmbeddingShape:
    """Vectors and width of an embedding file, as A1111 reports them; unreadable ones (pickles,
    listed-only models, files that are not embeddings) have ``readable`` False."""
    from sfumato.core.errors import SfumatoError
    from sfumato.models.safety import read_safetensors_header

    if entry.pickled or entry.path is None:
        return EmbeddingShape()
    try:
        header = read_safetensors_header(entry.path)
    except (SfumatoError, OSError, ValueError):
        return EmbeddingShape()
    shapes = {name: info.shape for name, info in header.tensors.items()}
    meta = header.metadata
    step = meta.get("step")
    found = EmbeddingShape(
        step=int(step) if step and step.isdigit() else None,
        sd_checkpoint=meta.get("sd_checkpoint") or None,
        sd_checkpoint_name=meta.get("sd_checkpoint_name") or None,
        readable=True,
    )
    if "clip_l" in shapes and "clip_g" in shapes:
        first, second = shapes["clip_l"], shapes["clip_g"]
        if len(first) == 2 and len(second) == 2:
            return _with(found, second[0], first[-1] + second[-1])
    key = next(
        (
            k
            for k in ("emb_params", *sorted(k for k in shapes if k.startswith("string_to_param")))
            if k in shapes
        ),
        None,
    )
    if key is None and len(shapes) == 1:
        key = next(iter(shapes))
    if key is None or not shapes[key]:
        return EmbeddingShape()
    shape = shapes[key]
    vectors = 1 if len(shape) == 1 else int(_product(shape[:-1]))
    return _with(found, vectors, shape[-1])


def _with(found: EmbeddingShape, vectors: int, width: int) -> EmbeddingShape:
    return EmbeddingShape(vectors, width, found.step, found.sd_checkpoint, found.sd_checkpoint_name, True)


def _product(values: tuple[int, ...]) -> int:
    result = 1
    for value in values:
        result *= value
    return result


def lora_metadata(entry: ModelEntry) -> dict[str, Any]:
    """The safetensors ``__metadata__`` kohya's trainer writes (ss_*), JSON values parsed as A1111 does."""
    from sfumato.core.errors import SfumatoError
    from sfumato.models.safety import read_safetensors_header

    if entry.pickled or entry.path is None:
        return {}
    try:
        raw = read_safetensors_header(entry.path).metadata
    except (SfumatoError, OSError, ValueError):
        return {}
    metadata: dict[str, Any] = {}
    for key, value in raw.items():
        metadata[key] = value
        if isinstance(value, str) and value.startswith("{"):
            with contextlib.suppress(ValueError):
                metadata[key] = json.loads(value)
    return metadata
