"""Which models each embedding and LoRA fits: `models list`, the API, and the note a prompt gets."""

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
from sfumato.models.compatibility import compatibility
from sfumato.models.library import ModelLibrary

SFUMATO = str(Path(sys.executable).parent / "sfumato")
pytestmark = pytest.mark.builtin_model  # the built-in model is the checkpoint networks are matched to


@pytest.fixture()
def library(tmp_path: Path) -> Path:
    """An A1111-style folder: embeddings for the built-in model (128-wide), SD1 and SDXL, two LoRAs."""
    root = tmp_path / "webui" / "models"
    embeddings, loras = root.parent / "embeddings", root / "Lora"
    embeddings.mkdir(parents=True)
    loras.mkdir(parents=True)
    save_file({"emb_params": torch.randn(2, 128)}, str(embeddings / "demo-style.safetensors"))
    save_file({"emb_params": torch.randn(2, 768)}, str(embeddings / "sd15-style.safetensors"))
    save_file(
        {"clip_l": torch.randn(1, 768), "clip_g": torch.randn(1, 1280)},
        str(embeddings / "xl-style.safetensors"),
    )
    attn = "lora_unet_down_blocks_1_attentions_0_transformer_blocks_0_attn2_to_k"
    save_file(
        {f"{attn}.lora_down.weight": torch.randn(4, 128), f"{attn}.lora_up.weight": torch.randn(64, 4)},
        str(loras / "demo-lora.safetensors"),
    )
    save_file(
        {f"{attn}.lora_down.weight": torch.randn(4, 2048), f"{attn}.lora_up.weight": torch.randn(640, 4)},
        str(loras / "xl-lora.safetensors"),
    )
    return root.parent


def _settings(tmp_path: Path, folder: Path) -> Settings:
    settings = Settings(data_dir=tmp_path / "data")
    ModelLibrary(settings).add_folder(folder)
    return settings


def test_each_network_lists_the_models_it_fits(library: Path, tmp_path: Path) -> None:
    entries = ModelLibrary(_settings(tmp_path, library)).entries(identify=True)
    found = {f.name: f for f in compatibility(entries)}
    assert found["demo-style"].models == ("sfumato-demo",)
    assert found["demo-style"].family == "a model with 128-wide text vectors"
    assert found["sd15-style"].models == () and found["sd15-style"].family.startswith("SD1")
    assert found["xl-style"].models == () and found["xl-style"].family.startswith("SDXL")
    assert found["demo-lora"].models == ("sfumato-demo",)
    assert found["xl-lora"].models == () and found["xl-lora"].family == "SDXL"


def test_models_list_and_the_api_show_the_fit(library: Path, tmp_path: Path) -> None:
    settings = _settings(tmp_path, library)
    env = {**os.environ, "SFUMATO_DATA_DIR": str(settings.data_dir)}
    done = subprocess.run(
        [SFUMATO, "models", "list", "--json"], capture_output=True, text=True, env=env, timeout=120
    )
    assert done.returncode == 0, done.stderr
    listed = {item["name"]: item for item in json.loads(done.stdout)}
    assert listed["demo-style"]["fits"] == ["sfumato-demo"] and listed["sd15-style"]["fits"] == []
    assert listed["sd15-style"]["made_for"].startswith("SD1")

    from sfumato.server import create_app

    with TestClient(create_app(settings), base_url="http://127.0.0.1:7860") as client:
        response = client.get("/api/models/compatibility")
    assert response.status_code == 200
    api = {item["name"]: item for item in response.json()}
    assert api["xl-lora"]["models"] == [] and api["demo-lora"]["models"] == ["sfumato-demo"]


def test_a_prompt_naming_an_incompatible_embedding_gets_a_note(library: Path, tmp_path: Path) -> None:
    from sfumato.core.request import GenerationRequest
    from sfumato.engine.generate import generate
    from sfumato.models.loading import load_model
    from sfumato.prompts.networks import LibraryResolver

    settings = _settings(tmp_path, library)
    demo = load_model(settings, None)
    request = GenerationRequest(prompt="a red circle, sd15-style", steps=2, seed=1)
    result = generate(demo, request, resolve=LibraryResolver(settings))
    assert any("sd15-style" in note and "skipped" in note for note in result.notes)
