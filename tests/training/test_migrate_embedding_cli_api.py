"""`sfumato embeddings migrate` and POST /api/embeddings/migrate: a library embedding carried to a model
(here the built-in one onto itself, a step of training), written beside the original."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from fastapi.testclient import TestClient
from safetensors.torch import save_file

from sfumato.core.settings import Settings
from sfumato.models.embeddings import load_embedding
from sfumato.models.library import ModelLibrary

SFUMATO = str(Path(sys.executable).parent / "sfumato")
pytestmark = pytest.mark.builtin_model  # the built-in model is the one migrated from and to


@pytest.fixture()
def settings(tmp_path: Path) -> Settings:
    embeddings = tmp_path / "webui" / "embeddings"
    embeddings.mkdir(parents=True)
    save_file(
        {"emb_params": torch.randn(1, 128, generator=torch.Generator().manual_seed(0))},
        str(embeddings / "demo-style.safetensors"),
    )
    settings = Settings(data_dir=tmp_path / "data")
    ModelLibrary(settings).add_folder(tmp_path / "webui")
    return settings


def test_the_cli_migrates_a_library_embedding(settings: Settings, tmp_path: Path) -> None:
    env = {**os.environ, "SFUMATO_DATA_DIR": str(settings.data_dir)}
    command = [
        SFUMATO,
        "embeddings",
        "migrate",
        "demo-style",
        "--from",
        "sfumato-demo",
        "--to",
        "sfumato-demo",
    ]
    options = ["--prompt", "a {name} circle", "--pictures", "1", "--steps", "1", "--json"]
    done = subprocess.run([*command, *options], capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    written = tmp_path / "webui" / "embeddings" / "demo-style-sfumato-demo.safetensors"
    assert result == {"embedding": str(written), "word": "demo-style-sfumato-demo", "steps": 1}
    assert load_embedding(written).vectors["clip"].shape == (1, 128)

    refused = subprocess.run(
        [*command, "--prompt", "a circle"], capture_output=True, text=True, env=env, timeout=300
    )
    assert refused.returncode != 0 and "{name}" in refused.stderr


def test_the_api_migrates_a_library_embedding(settings: Settings, tmp_path: Path) -> None:
    from sfumato.server import create_app

    body = {
        "embedding": "demo-style",
        "from": "sfumato-demo",
        "to": "sfumato-demo",
        "prompts": ["a {name} circle"],
    }
    with TestClient(create_app(settings), base_url="http://127.0.0.1:7860") as client:
        response = client.post("/api/embeddings/migrate", json=body | {"pictures": 1, "steps": 1})
        missing = client.post("/api/embeddings/migrate", json=body | {"embedding": "nothing-here"})
        unplaced = client.post("/api/embeddings/migrate", json=body | {"prompts": ["a circle"]})
    assert response.status_code == 200, response.text
    assert response.json() == {
        "embedding": "demo-style-sfumato-demo.safetensors",
        "word": "demo-style-sfumato-demo",
        "steps": 1,
    }
    assert (tmp_path / "webui" / "embeddings" / "demo-style-sfumato-demo.safetensors").is_file()
    assert missing.status_code == 404 and "nothing-here" in missing.text
    assert unplaced.status_code == 422 and "prompts" in unplaced.text and "name" in unplaced.text
