"""Concept search over a LAION-style dataset: p95 query latency of the index vs a numpy exact scan.

A synthetic 100,000-row dataset in clip-retrieval's layout (float16 ``img_emb`` shards of 768-d
unit vectors around 2,000 concepts, parquet metadata with captions, URLs and aesthetic scores) is
written to a temporary folder and opened the way `sfumato search --dataset` opens it. Both
searches run in the same process on the same queries (text-like: a concept plus noise), one
thread each; recall@10 of the index against the exact scan is printed with the latencies.

    PYTHONPATH=src OMP_NUM_THREADS=1 python benchmarks/concept_search.py [--rows 100000]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from sfumato.analysis.dataset_search import Dataset
from sfumato.analysis.vector_index import exact_search

DIM = 768
SHARDS = 4


def write_dataset(folder: Path, rows: int, seed: int = 0) -> np.ndarray:
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(seed)
    concepts = rng.normal(size=(2000, DIM)).astype(np.float32)
    labels = rng.integers(0, len(concepts), rows)
    vectors = concepts[labels] + 0.8 * rng.normal(size=(rows, DIM)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    (folder / "img_emb").mkdir(parents=True)
    (folder / "metadata").mkdir()
    for n, part in enumerate(np.array_split(np.arange(rows), SHARDS)):
        np.save(folder / "img_emb" / f"img_emb_{n}.npy", vectors[part].astype(np.float16))
        table = pa.table(
            {
                "caption": [f"concept {labels[i]} picture {i}" for i in part],
                "url": [f"https://example.invalid/{i}.jpg" for i in part],
                "aesthetic": rng.uniform(3, 8, len(part)).astype(np.float32),
            }
        )
        pq.write_table(table, folder / "metadata" / f"metadata_{n}.parquet")
    queries = concepts[rng.integers(0, len(concepts), 200)] + 0.8 * rng.normal(size=(200, DIM)).astype(
        np.float32
    )
    return (queries / np.linalg.norm(queries, axis=1, keepdims=True)).astype(np.float32)


def p95_ms(seconds: list[float]) -> float:
    return float(np.percentile(np.array(seconds) * 1000, 95))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=100_000)
    rows = parser.parse_args().rows
    with tempfile.TemporaryDirectory() as temp:
        folder = Path(temp) / "dataset"
        queries = write_dataset(folder, rows)
        started = time.perf_counter()
        dataset = Dataset(folder)
        built = time.perf_counter() - started
        index_times, exact_times, recall = [], [], []
        for query in queries:
            t0 = time.perf_counter()
            hits = dataset.search(query, 10)
            t1 = time.perf_counter()
            exact = exact_search(dataset.index.vectors, query, 10)
            t2 = time.perf_counter()
            index_times.append(t1 - t0)
            exact_times.append(t2 - t1)
            recall.append(len({h.id for h in hits} & set(exact.ids.tolist())) / 10)
    index_p95, exact_p95 = p95_ms(index_times), p95_ms(exact_times)
    print(f"rows {rows}, dim {DIM}, index {dataset.index.kind}, opened and indexed in {built:.1f} s")
    print(
        f"p95 query: index {index_p95:.2f} ms, numpy exact scan {exact_p95:.2f} ms ({exact_p95 / index_p95:.1f}x)"
    )
    print(f"recall@10 of the index vs the exact scan: {np.mean(recall):.3f}")


if __name__ == "__main__":
    main()
