"""A1111's model listings tell the truth: embeddings that cannot be used are `skipped` (with their real
shapes), LoRAs carry their ss_* metadata, checkpoints their SHA-256, and pickles are not offered."""

from __future__ import annotations

import pickle
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from fastapi.testclient import TestClient
from safetensors.torch import save_file

from sfumato.core.settings import Settings
from sfumato.models.library import ModelLibrary
from sfumato.server import create_app
from sfumato.server.catalog import ModelEntry, StaticCatalog
from sfumato.server.library import LibraryCatalog

HEADERS = {"host": "127.0.0.1:7860"}


def _pickle(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(pickle.dumps({"state_dict": {}}, protocol=2))
    return path


def _tensors(path: Path, tensors: dict[str, torch.Tensor], metadata: dict[str, str] | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(path), metadata=metadata)
    return path


@pytest.fixture
def webui(tmp_path: Path) -> Path:
    """An A1111 folder: a checkpoint, a pickled one, a LoRA with kohya metadata, and embeddings."""
    root = tmp_path / "webui"
    models = root / "models"
    _tensors(models / "Stable-diffusion" / "good.safetensors", {"x": torch.zeros(2)})
    _pickle(models / "Stable-diffusion" / "old.ckpt")
    _tensors(
        models / "Lora" / "style.safetensors",
        {"lora_unet_x.lora_down.weight": torch.zeros(4, 8)},
        {"ss_output_name": "my_style", "ss_network_dim": "4", "ss_tag_frequency": '{"set": {"red": 3}}'},
    )
    _pickle(models / "Lora" / "old.pt")
    _tensors(root / "embeddings" / "sd1.safetensors", {"emb_params": torch.zeros(2, 768)}, {"step": "500"})
    _tensors(
        root / "embeddings" / "xl.safetensors",
        {"clip_l": torch.zeros(3, 768), "clip_g": torch.zeros(3, 1280)},
    )
    _tensors(root / "embeddings" / "sd2.safetensors", {"emb_params": torch.zeros(1, 1024)})
    _pickle(root / "embeddings" / "pickled.pt")
    return root


@pytest.fixture
def client(tmp_path: Path, webui: Path) -> Iterator[TestClient]:
    settings = Settings(data_dir=tmp_path / "data", model_folders=[webui])
    ModelLibrary(settings).hash_file(webui / "models" / "Stable-diffusion" / "good.safetensors")
    catalog = LibraryCatalog(settings)
    # the listing does not identify architectures; this checkpoint is known to be an SD1 model
    entries = [
        ModelEntry(**{**e.__dict__, "architecture": "sd1"}) if e.name == "good" else e
        for kind in ("checkpoint", "vae", "lora", "embedding")
        for e in catalog.list(kind)
    ]
    app = create_app(settings, run=lambda *a, **k: [], catalog=StaticCatalog(entries), poll_seconds=0.05)
    with TestClient(app, headers=HEADERS) as client:
        client.post("/sdapi/v1/options", json={"sd_model_checkpoint": "good"})
        yield client


def test_checkpoints_have_their_sha256_and_pickles_are_not_offered(client: TestClient, webui: Path) -> None:
    models = client.get("/sdapi/v1/sd-models").json()
    names = [m["model_name"] for m in models]
    assert "good" in names and "old" not in names
    good = next(m for m in models if m["model_name"] == "good")
    digest = ModelLibrary(Settings(data_dir=webui.parent / "data")).hash_file(
        webui / "models" / "Stable-diffusion" / "good.safetensors"
    )
    assert good["sha256"] is not None and len(good["sha256"]) == 64 and good["sha256"].startswith(digest)
    assert good["hash"] == digest
    picked = client.post("/sdapi/v1/options", json={"sd_model_checkpoint": "old.ckpt"})
    assert picked.status_code == 422 and "pickle" in picked.json()["detail"]
    assert "sfumato models convert" in picked.json()["detail"]


def test_loras_carry_their_training_metadata(client: TestClient) -> None:
    loras = client.get("/sdapi/v1/loras").json()
    assert [lora["name"] for lora in loras] == ["style"]
    (style,) = loras
    assert style["alias"] == "my_style" and style["path"] == "style.safetensors"
    assert style["metadata"]["ss_network_dim"] == "4"
    assert style["metadata"]["ss_tag_frequency"] == {"set": {"red": 3}}  # JSON values parsed, as A1111


def test_embeddings_that_cannot_be_used_are_skipped_with_their_shapes(client: TestClient) -> None:
    listed = client.get("/sdapi/v1/embeddings").json()
    assert set(listed["loaded"]) == {"sd1"}
    assert listed["loaded"]["sd1"] == {
        "step": 500,
        "sd_checkpoint": None,
        "sd_checkpoint_name": None,
        "shape": 768,
        "vectors": 2,
    }
    skipped = listed["skipped"]
    assert set(skipped) == {"xl", "sd2", "pickled"}
    assert (skipped["xl"]["shape"], skipped["xl"]["vectors"]) == (2048, 3)  # SDXL: both encoders' widths
    assert (skipped["sd2"]["shape"], skipped["sd2"]["vectors"]) == (1024, 1)
    assert (skipped["pickled"]["shape"], skipped["pickled"]["vectors"]) == (0, 0)  # never opened
