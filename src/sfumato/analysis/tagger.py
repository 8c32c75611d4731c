"""Booru-style tags from a WD14-style ONNX tagger the user has, run by onnxruntime.

The folder holds ``model.onnx`` (input: a batch of square BGR pictures, 0-255 floats, NHWC; output:
one probability per tag) and ``selected_tags.csv`` (``tag_id,name,category,count``; category 9 is a
rating, 4 a character, 0 a general tag), as SmilingWolf's taggers are published.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from sfumato.core.errors import CorruptModelFile, InvalidRequest, ModelNotFound

if TYPE_CHECKING:
    from PIL import Image

WHAT_IS_NEEDED = (
    "A tagger is a folder with model.onnx and selected_tags.csv (a WD14-style tagger, e.g. "
    "SmilingWolf/wd-vit-tagger-v3); set `tagger` to it."
)
GENERAL_THRESHOLD = 0.35
CHARACTER_THRESHOLD = 0.85
RATING, CHARACTER = 9, 4
MAX_TAGS_BYTES = 20_000_000


class TaggerUnavailable(InvalidRequest):
    """The tagger cannot run here (no onnxruntime, or no tagger configured)."""


@dataclass(frozen=True)
class Tag:
    name: str
    score: float
    category: str  # general, character or rating


def tag_picture(picture: Image.Image, folder: Path, threshold: float = GENERAL_THRESHOLD) -> list[Tag]:
    session, names, categories = _load(str(folder.expanduser().resolve()))
    batch = _pixels(picture, session)
    probabilities = np.asarray(session.run(None, {session.get_inputs()[0].name: batch})[0])[0]
    if probabilities.shape != (len(names),):
        raise CorruptModelFile(
            f"The tagger in {folder} gives {probabilities.size} scores for {len(names)} tags.", WHAT_IS_NEEDED
        )
    tags = []
    for name, category, score in zip(names, categories, probabilities.tolist(), strict=True):
        if category == RATING:
            kind, keep = "rating", True
        elif category == CHARACTER:
            kind, keep = "character", score >= CHARACTER_THRESHOLD
        else:
            kind, keep = "general", score >= threshold
        if keep:
            tags.append(Tag(name.replace("_", " "), float(score), kind))
    ratings = [t for t in tags if t.category == "rating"]
    best_rating = [max(ratings, key=lambda t: t.score)] if ratings else []
    others = sorted((t for t in tags if t.category != "rating"), key=lambda t: -t.score)
    return best_rating + others


def _pixels(picture: Image.Image, session: Any) -> np.ndarray:
    from PIL import Image

    shape = session.get_inputs()[0].shape
    size = shape[1] if isinstance(shape[1], int) else 448
    rgb = picture.convert("RGB")
    side = max(rgb.size)
    square = Image.new("RGB", (side, side), (255, 255, 255))
    square.paste(rgb, ((side - rgb.width) // 2, (side - rgb.height) // 2))
    array = np.asarray(square.resize((size, size), Image.Resampling.BICUBIC), dtype=np.float32)
    return np.ascontiguousarray(array[None, :, :, ::-1])


@lru_cache(maxsize=1)
def _load(path: str) -> tuple[Any, list[str], list[int]]:
    try:
        import onnxruntime
    except ImportError:
        raise TaggerUnavailable(
            "The tagger needs onnxruntime, which is not installed.",
            "Install it with `pip install 'sfumato[analysis]'` (or `pip install onnxruntime`).",
        ) from None
    folder = Path(path)
    model, tags = folder / "model.onnx", folder / "selected_tags.csv"
    if not model.is_file() or not tags.is_file():
        missing = ", ".join(f.name for f in (model, tags) if not f.is_file())
        raise ModelNotFound(f"The tagger folder {folder} lacks {missing}.", WHAT_IS_NEEDED)
    names, categories = _read_tags(tags)
    try:
        session = onnxruntime.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own exception types for bad graphs
        raise CorruptModelFile(
            f"{model} is not an ONNX model onnxruntime can run: {str(exc).splitlines()[0][:200]}",
            WHAT_IS_NEEDED,
        ) from None
    return session, names, categories


def _read_tags(path: Path) -> tuple[list[str], list[int]]:
    if path.stat().st_size > MAX_TAGS_BYTES:
        raise CorruptModelFile(f"{path} is too large to be a tag list.", WHAT_IS_NEEDED)
    names, categories = [], []
    with path.open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        if not reader.fieldnames or not {"name", "category"} <= set(reader.fieldnames):
            raise CorruptModelFile(f"{path} needs the columns name and category.", WHAT_IS_NEEDED)
        for number, row in enumerate(reader, start=2):
            category = str(row.get("category") or "")
            if not category.isdigit():
                raise CorruptModelFile(f"{path}, line {number}: category must be a number.", WHAT_IS_NEEDED)
            names.append(str(row["name"]))
            categories.append(int(category))
    return names, categories
