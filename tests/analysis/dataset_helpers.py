"""A small LAION-style dataset (clip-retrieval layout) of demo-world pictures embedded by the demo CLIP."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np

from sfumato.analysis.clip_model import load_clip
from sfumato.demo import world


def demo_rows(count: int = 60, seed: int = 5) -> tuple[list[str], np.ndarray]:
    rng = np.random.default_rng(seed)
    scenes = []
    while len(scenes) < count:
        scene = world.sample_scene(rng)
        if len(scene.objects) == 1:
            scenes.append(scene)
    captions = [world.caption(s, np.random.default_rng(i), complete=True) for i, s in enumerate(scenes)]
    vectors = load_clip().embed_pictures([world.render(s) for s in scenes])
    return captions, vectors


def write_shards(
    folder: Path, captions: list[str], vectors: np.ndarray, shards: int = 2, **columns: list
) -> Path:
    import pyarrow as pa
    import pyarrow.parquet as pq

    (folder / "img_emb").mkdir(parents=True)
    (folder / "metadata").mkdir()
    bounds = np.linspace(0, len(captions), shards + 1).astype(int)
    for n, (start, end) in enumerate(itertools.pairwise(bounds)):
        np.save(folder / "img_emb" / f"img_emb_{n}.npy", vectors[start:end].astype(np.float16))
        table = {
            "caption": captions[start:end],
            "url": [f"https://example.invalid/{i}.png" for i in range(start, end)],
            **{name: values[start:end] for name, values in columns.items()},
        }
        pq.write_table(pa.table(table), folder / "metadata" / f"metadata_{n}.parquet")
    return folder


def write_demo_dataset(folder: Path) -> Path:
    captions, vectors = demo_rows()
    aesthetic = [float(i % 10) for i in range(len(captions))]
    return write_shards(folder, captions, vectors, aesthetic=aesthetic)
