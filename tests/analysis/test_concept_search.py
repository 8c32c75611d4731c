"""Concept search: the archive by text and by picture, and LAION-style datasets, on the demo CLIP."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from dataset_helpers import demo_rows, write_demo_dataset, write_shards
from demo_scenes import picture, scene_of
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from sfumato.analysis.archive_search import embeddings_path, search_archive
from sfumato.analysis.clip_model import load_clip
from sfumato.analysis.dataset_search import Dataset, DatasetError
from sfumato.analysis.vector_index import VectorIndex, exact_search
from sfumato.archive.index import Archive
from sfumato.cli.main import app
from sfumato.core.request import GenerationRequest
from sfumato.core.result import GeneratedImage, ModelInfo
from sfumato.core.settings import Settings
from sfumato.server import create_app

runner = CliRunner()
SCENES = {
    "a yellow star at the top left on a blue background": ("star", "yellow", "top left", "blue"),
    "a red circle at the bottom right on a white background": ("circle", "red", "bottom right", "white"),
    "a green square in the center on a black background": ("square", "green", "center", "black"),
    "a purple triangle on the left on a yellow background": ("triangle", "purple", "left", "yellow"),
}


def _fill_archive(settings: Settings) -> dict[str, int]:
    archive = Archive(settings)
    ids = {}
    for prompt, attributes in SCENES.items():
        item = GeneratedImage(
            picture(scene_of(*attributes)), GenerationRequest(prompt=prompt), ModelInfo("demo", "0")
        )
        ids[attributes[0]] = archive.save(item).id
    return ids


def test_archive_search_by_text_and_by_picture(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data")
    ids = _fill_archive(settings)
    clip = load_clip()
    assert search_archive(settings, clip, text="a yellow star")[0].record.id == ids["star"]
    assert search_archive(settings, clip, text="a green square")[0].record.id == ids["square"]
    like = picture(scene_of("circle", "red", "bottom right", "white"))
    hits = search_archive(settings, clip, like=like, limit=2)
    assert hits[0].record.id == ids["circle"] and hits[0].score > 0.99 and len(hits) == 2
    assert embeddings_path(settings).exists()


def test_cli_search_and_rebuild_embeds_from_the_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SFUMATO_DATA_DIR", str(tmp_path / "data"))
    ids = _fill_archive(Settings())
    rebuilt = runner.invoke(app, ["archive", "rebuild", "--json"])
    assert rebuilt.exit_code == 0, rebuilt.output
    assert json.loads(rebuilt.stdout)["embedded"] == len(SCENES)
    embeddings_path(Settings()).unlink()  # the sidecar is rebuildable: search embeds what is missing
    found = runner.invoke(app, ["search", "a purple triangle", "--json", "-n", "1"])
    assert found.exit_code == 0, found.output
    assert json.loads(found.stdout)["results"][0]["prompt"].startswith("a purple triangle")
    file = tmp_path / "like.png"
    picture(scene_of("star", "yellow", "top left", "blue")).save(file)
    like = runner.invoke(app, ["search", "--like", str(file), "-n", "1"])
    assert like.exit_code == 0 and like.stdout.startswith(f"#{ids['star']}\t")
    neither = runner.invoke(app, ["search"])
    assert neither.exit_code == 1 and "Give one of" in neither.output


def test_dataset_search_by_text_picture_and_neighbours(tmp_path: Path) -> None:
    dataset = Dataset(write_demo_dataset(tmp_path / "set"))
    clip = load_clip()
    assert len(dataset) == 60 and dataset.index.kind == "exact"
    best = dataset.search(clip.embed_texts(["a white circle"])[0], 3)
    assert all(
        "white" in hit.caption and ("circle" in hit.caption or "disc" in hit.caption) for hit in best[:1]
    )
    assert best[0].url.startswith("https://") and best[0].aesthetic is not None
    row = best[0].id
    by_picture = dataset.search(dataset.index.vectors[row], 1)
    assert by_picture[0].id == row
    walk = dataset.neighbours(row, 5)
    assert len(walk) == 5 and row not in [hit.id for hit in walk]
    assert [h.score for h in walk] == sorted((h.score for h in walk), reverse=True)


def test_cli_dataset_search(tmp_path: Path) -> None:
    folder = write_demo_dataset(tmp_path / "set")
    done = runner.invoke(app, ["search", "a black triangle", "--dataset", str(folder), "--json", "-n", "2"])
    assert done.exit_code == 0, done.output
    found = json.loads(done.stdout)
    assert found["rows"] == 60 and found["index"] == "exact"
    assert "black" in found["results"][0]["caption"] and "triangle" in found["results"][0]["caption"]
    walk = runner.invoke(app, ["search", "--neighbours", "0", "--dataset", str(folder), "--json"])
    assert walk.exit_code == 0 and 0 not in [r["id"] for r in json.loads(walk.stdout)["results"]]


def test_dataset_api(tmp_path: Path) -> None:
    folder = write_demo_dataset(tmp_path / "shapes-set")
    settings = Settings(data_dir=tmp_path / "data", datasets=[folder])
    with TestClient(create_app(settings), base_url="http://127.0.0.1:7860") as client:
        found = client.post(
            "/api/search/dataset", json={"dataset": "shapes-set", "text": "a blue star", "limit": 3}
        )
        assert found.status_code == 200, found.text
        first = found.json()["results"][0]
        assert "blue" in first["caption"] and "star" in first["caption"]
        walk = client.post(
            "/api/search/dataset", json={"dataset": "shapes-set", "neighbours_of": first["id"]}
        )
        assert walk.status_code == 200 and first["id"] not in [r["id"] for r in walk.json()["results"]]
        missing = client.post("/api/search/dataset", json={"dataset": "nope", "text": "a star"})
        assert missing.status_code == 404 and "shapes-set" in missing.json()["detail"]
        both = client.post(
            "/api/search/dataset", json={"dataset": "shapes-set", "text": "a", "neighbours_of": 1}
        )
        assert both.status_code == 422
        archive = client.post("/api/search/archive", json={"text": "a star"})
        assert archive.status_code == 200 and archive.json() == {"results": []}


def test_dataset_errors_name_the_file_and_what_is_wrong(tmp_path: Path) -> None:
    captions, vectors = demo_rows(10)
    no_caption = write_shards(tmp_path / "a", captions, vectors, shards=1)
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(
        pa.table({"text": captions, "url": captions}), no_caption / "metadata" / "metadata_0.parquet"
    )
    with pytest.raises(DatasetError, match=r"metadata_0.parquet lacks the column caption"):
        Dataset(no_caption)
    short = write_shards(tmp_path / "b", captions, vectors, shards=2)
    np.save(short / "img_emb" / "img_emb_1.npy", vectors[:2])
    with pytest.raises(
        DatasetError, match=r"metadata_1.parquet has 5 rows but img_emb_1.npy has 2 embeddings"
    ):
        Dataset(short)
    lonely = write_shards(tmp_path / "c", captions, vectors, shards=2)
    (lonely / "metadata" / "metadata_1.parquet").unlink()
    with pytest.raises(DatasetError, match="shard 1 has embeddings or metadata but not both"):
        Dataset(lonely)
    pickled = write_shards(tmp_path / "d", captions, vectors, shards=1)
    np.save(pickled / "img_emb" / "img_emb_0.npy", np.array([{"x": 1}] * 10, dtype=object), allow_pickle=True)
    with pytest.raises(DatasetError, match=r"img_emb_0.npy is not a readable .npy array"):
        Dataset(pickled)
    with pytest.raises(DatasetError, match="No dataset folder"):
        Dataset(tmp_path / "none")


def test_the_faiss_index_finds_what_the_exact_scan_finds() -> None:
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(50, 32))
    vectors = centres[rng.integers(0, 50, 25_000)] + 0.3 * rng.normal(size=(25_000, 32))
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    index = VectorIndex(vectors.astype(np.float32))
    assert index.kind == "faiss-ivf"
    found = 0
    for q in vectors[rng.integers(0, 25_000, 20)]:
        exact = set(exact_search(index.vectors, q.astype(np.float32), 10).ids.tolist())
        found += len(exact & set(index.search(q, 10).ids.tolist()))
    assert found / 200 >= 0.9
