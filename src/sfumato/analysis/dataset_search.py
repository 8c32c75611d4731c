"""Search a LAION-style dataset the user has, in clip-retrieval's layout, by text, picture or neighbour.

The folder holds ``img_emb/img_emb_N.npy`` (one CLIP image embedding per row, float16 or float32)
and ``metadata/metadata_N.parquet`` (same row order: ``caption`` and ``url`` or ``image_path``, and an
aesthetic score column when there is one), N matching shard to shard. Everything is checked before
the index is built; the embeddings are read with ``allow_pickle=False``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from sfumato.analysis.vector_index import VectorIndex
from sfumato.core.errors import InvalidRequest

LAYOUT = (
    "A dataset folder in clip-retrieval's layout has img_emb/img_emb_N.npy and metadata/metadata_N.parquet "
    "with the same number of rows, N matching."
)
LINK_COLUMNS = ("url", "image_path")
AESTHETIC_COLUMNS = ("aesthetic", "aesthetic_score", "AESTHETIC_SCORE", "aesthetic_score_laion_v2")


class DatasetError(InvalidRequest):
    """The dataset folder is not in the expected layout."""


@dataclass(frozen=True)
class DatasetHit:
    id: int
    score: float
    caption: str
    url: str
    aesthetic: float | None

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "score": round(self.score, 4), "caption": self.caption, "url": self.url,
                "aesthetic": self.aesthetic}  # fmt: skip


class Dataset:
    def __init__(self, folder: Path, exact: bool | None = None, threads: int = 1) -> None:
        self.folder = folder
        embeddings, self.captions, self.urls, self.aesthetic = _read(folder)
        self.index = VectorIndex(embeddings, exact=exact, threads=threads)

    def __len__(self) -> int:
        return len(self.index)

    def search(self, query: np.ndarray, k: int = 20) -> list[DatasetHit]:
        hits = self.index.search(query, k)
        return [self.hit(int(i), float(s)) for i, s in zip(hits.ids, hits.scores, strict=True)]

    def neighbours(self, row: int, k: int = 20) -> list[DatasetHit]:
        """The rows nearest to row ``row`` (itself excluded): a walk through the concept space."""
        if not 0 <= row < len(self):
            raise InvalidRequest(f"The dataset has no row {row}.", f"Rows are 0 to {len(self) - 1}.")
        return [hit for hit in self.search(self.index.vectors[row], k + 1) if hit.id != row][:k]

    def hit(self, row: int, score: float) -> DatasetHit:
        aesthetic = None if self.aesthetic is None else float(self.aesthetic[row])
        return DatasetHit(row, score, self.captions[row], self.urls[row], aesthetic)


@lru_cache(maxsize=1)
def open_dataset(path: str, stamp: float) -> Dataset:
    """The dataset at ``path``, kept while its files do not change (``stamp``: newest file time)."""
    return Dataset(Path(path))


def dataset_stamp(folder: Path) -> float:
    files = list(folder.glob("img_emb/*.npy")) + list(folder.glob("metadata/*.parquet"))
    return max((f.stat().st_mtime for f in files), default=0.0)


def _shards(folder: Path, sub: str, suffix: str) -> dict[int, Path]:
    found = {}
    for path in sorted((folder / sub).glob(f"*{suffix}")):
        number = re.search(r"(\d+)$", path.stem)
        if number:
            found[int(number.group(1))] = path
    return found


def _read(folder: Path) -> tuple[np.ndarray, list[str], list[str], np.ndarray | None]:
    if not folder.is_dir():
        raise DatasetError(f"No dataset folder at {folder}.", LAYOUT)
    embedding_files = _shards(folder, "img_emb", ".npy")
    metadata_files = _shards(folder, "metadata", ".parquet")
    if not embedding_files:
        raise DatasetError(f"{folder} has no img_emb/*.npy embedding shards.", LAYOUT)
    unmatched = sorted(set(embedding_files) ^ set(metadata_files))
    if unmatched:
        raise DatasetError(f"{folder}: shard {unmatched[0]} has embeddings or metadata but not both.", LAYOUT)
    parts, captions, urls, aesthetic = [], [], [], []
    has_aesthetic = True
    for number in sorted(embedding_files):
        vectors = _embeddings(embedding_files[number])
        if parts and vectors.shape[1] != parts[0].shape[1]:
            raise DatasetError(
                f"{embedding_files[number].name} has {vectors.shape[1]}-dimensional embeddings, "
                f"the shards before it {parts[0].shape[1]}.",
                "All shards must come from the same CLIP.",
            )
        table = _metadata(metadata_files[number])
        if table.num_rows != len(vectors):
            raise DatasetError(
                f"{metadata_files[number].name} has {table.num_rows} rows but {embedding_files[number].name} "
                f"has {len(vectors)} embeddings.",
                "Each metadata shard must list its embedding shard's rows in the same order.",
            )
        parts.append(vectors)
        captions += [str(c or "") for c in table.column("caption").to_pylist()]
        link = next(name for name in LINK_COLUMNS if name in table.column_names)
        urls += [str(u or "") for u in table.column(link).to_pylist()]
        column = next((name for name in AESTHETIC_COLUMNS if name in table.column_names), None)
        if column is None:
            has_aesthetic = False
        elif has_aesthetic:
            aesthetic.append(
                np.asarray(table.column(column).to_numpy(zero_copy_only=False), dtype=np.float32)
            )
    vectors = np.concatenate(parts).astype(np.float32)
    vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    return vectors, captions, urls, np.concatenate(aesthetic) if has_aesthetic else None


def _embeddings(path: Path) -> np.ndarray:
    try:
        array = np.load(path, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise DatasetError(f"{path} is not a readable .npy array ({exc}).", LAYOUT) from None
    if array.ndim != 2 or array.shape[1] < 2 or array.dtype.kind != "f":
        raise DatasetError(
            f"{path} must hold a 2-D float array (rows x dimensions), not {array.dtype} {array.shape}.",
            LAYOUT,
        )
    return np.asarray(array)


def _metadata(path: Path) -> Any:
    try:
        import pyarrow.parquet as parquet
    except ImportError:
        raise DatasetError(
            "Reading the dataset's parquet metadata needs pyarrow, which is not installed.",
            "Install it with `pip install 'sfumato[analysis]'`.",
        ) from None
    try:
        table = parquet.read_table(path)
    except Exception as exc:  # pyarrow raises several error types for damaged files
        raise DatasetError(f"{path} is not a readable parquet file ({str(exc)[:200]}).", LAYOUT) from None
    missing = [name for name in ("caption",) if name not in table.column_names]
    if not any(name in table.column_names for name in LINK_COLUMNS):
        missing.append(" or ".join(LINK_COLUMNS))
    if missing:
        raise DatasetError(
            f"{path.name} lacks the column {', '.join(missing)} (it has {', '.join(table.column_names[:12])}).",
            LAYOUT,
        )
    return table
