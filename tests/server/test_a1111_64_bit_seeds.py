"""A1111 clients sending ComfyUI-sized seeds: accepted, recorded, read back by png-info."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from sfumato.core.settings import Settings
from sfumato.server import create_app

SEED = 2**63 + 5


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory, tiny_model_folder: Path) -> Iterator[TestClient]:
    root = tmp_path_factory.mktemp("webui")
    shutil.copytree(tiny_model_folder, root / "models" / "Stable-diffusion" / "tiny")
    settings = Settings(data_dir=root / "data", model_folders=[root])
    with TestClient(create_app(settings, poll_seconds=0.05), base_url="http://127.0.0.1:7860") as client:
        yield client


def test_a_64_bit_seed_round_trips_through_the_a1111_api(client: TestClient) -> None:
    made = client.post(
        "/sdapi/v1/txt2img",
        json={
            "prompt": "a cat",
            "seed": SEED,
            "steps": 1,
            "width": 64,
            "height": 64,
            "sampler_name": "Euler",
        },
    )
    assert made.status_code == 200, made.text
    info = json.loads(made.json()["info"])
    assert info["seed"] == SEED and info["all_seeds"] == [SEED]
    read = client.post("/sdapi/v1/png-info", json={"image": made.json()["images"][0]})
    assert read.json()["parameters"]["Seed"] == str(SEED)

    too_big = client.post("/sdapi/v1/txt2img", json={"prompt": "a cat", "seed": 2**64, "steps": 1})
    assert too_big.status_code == 422 and "seed" in too_big.text
