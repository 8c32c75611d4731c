"""Nearest neighbours by cosine similarity over unit vectors: exact for small sets, faiss IVF for large.

Up to ``EXACT_LIMIT`` rows a plain scan is exact and fast; above it, faiss's inverted-file index
(k-means cells, ``nprobe`` cells searched per query) answers in a fraction of the time, with a
recall the concept-search benchmark measures against the exact scan.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from sfumato.core.errors import InvalidRequest

EXACT_LIMIT = 20_000
NPROBE = 24
TRAIN_SAMPLE = 40  # k-means sees this many points per cell at most


@dataclass
class Hits:
    ids: np.ndarray  # row numbers, best first
    scores: np.ndarray  # cosine similarities


class VectorIndex:
    """Rows are unit float32 vectors; ``search`` takes one or more unit queries."""

    def __init__(self, vectors: np.ndarray, exact: bool | None = None, threads: int = 1) -> None:
        self.vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        self.kind = "exact"
        self._faiss: Any = None
        if exact is False or (exact is None and len(self.vectors) > EXACT_LIMIT):
            self._faiss = _ivf(self.vectors, threads)
            self.kind = "faiss-ivf"

    def __len__(self) -> int:
        return len(self.vectors)

    @property
    def dim(self) -> int:
        return int(self.vectors.shape[1])

    def search(self, query: np.ndarray, k: int = 20) -> Hits:
        query = np.ascontiguousarray(np.atleast_2d(query), dtype=np.float32)
        if query.shape[1] != self.dim:
            raise InvalidRequest(
                f"The query has {query.shape[1]} dimensions but the collection's embeddings have {self.dim}.",
                "Search with the CLIP the collection was embedded with (setting clip_model).",
            )
        k = max(1, min(k, len(self.vectors)))
        if self._faiss is not None:
            scores, ids = self._faiss.search(query[:1], k)
            keep = ids[0] >= 0
            return Hits(ids[0][keep].astype(np.int64), scores[0][keep])
        return exact_search(self.vectors, query[0], k)


def exact_search(vectors: np.ndarray, query: np.ndarray, k: int) -> Hits:
    scores = vectors @ query
    top = np.argpartition(-scores, k - 1)[:k] if k < len(scores) else np.arange(len(scores))
    order = top[np.argsort(-scores[top], kind="stable")]
    return Hits(order.astype(np.int64), scores[order])


def _ivf(vectors: np.ndarray, threads: int) -> Any:
    try:
        import faiss
    except ImportError:
        raise InvalidRequest(
            f"Searching {len(vectors)} rows needs faiss-cpu, which is not installed.",
            "Install it with `pip install 'sfumato[analysis]'`.",
        ) from None
    faiss.omp_set_num_threads(threads)
    cells = max(1, int(np.sqrt(len(vectors))))
    quantizer = faiss.IndexFlatIP(vectors.shape[1])
    index = faiss.IndexIVFFlat(quantizer, vectors.shape[1], cells, faiss.METRIC_INNER_PRODUCT)
    rng = np.random.default_rng(0)
    sample = vectors[rng.choice(len(vectors), size=min(len(vectors), cells * TRAIN_SAMPLE), replace=False)]
    index.train(sample)
    index.add(vectors)
    index.nprobe = NPROBE
    return index
