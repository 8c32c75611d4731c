"""Hostile model files in the server's model folders, chosen by a client the A1111 way (options, then
txt2img) and Sfumato's way (select, then a job): a 422 that names the file, never a 500; the server
lists them, keeps running and still makes pictures with a sound model."""

from __future__ import annotations

import base64
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from hostile import SAFETENSORS, write_folders, write_pictures, write_safetensors
from sfumato.core.settings import Settings
from sfumato.server import create_app

BASE = "http://127.0.0.1:7860"
FOLDERS = ("unet-config-list", "unet-config-not-utf8", "unet-in-channels-1e999", "unet-block-channels-string")


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory, tiny_model_folder: Path) -> Iterator[TestClient]:
    root = tmp_path_factory.mktemp("webui")
    checkpoints = root / "models" / "Stable-diffusion"
    write_safetensors(checkpoints)
    for name, folder in write_folders(tmp_path_factory.mktemp("folders"), tiny_model_folder).items():
        if name in FOLDERS:
            shutil.move(folder, checkpoints / name)
    shutil.copytree(tiny_model_folder, checkpoints / "sound")
    settings = Settings(data_dir=root / "data", model_folders=[root])
    with TestClient(
        create_app(settings, poll_seconds=0.05), base_url=BASE, raise_server_exceptions=False
    ) as client:
        yield client


def _txt2img(client: TestClient, model: str) -> Any:
    assert client.post("/sdapi/v1/options", json={"sd_model_checkpoint": model}).status_code == 200
    return client.post("/sdapi/v1/txt2img", json={"prompt": "a cat", "steps": 1, "width": 64, "height": 64})


# Pickles are not offered (A1111 would not load them here without conversion); picking one is the 422.
PICKLES = {"pickle", "zip-pickle"}


def test_the_model_list_shows_every_file_but_pickles(client: TestClient) -> None:
    names = {item["model_name"] for item in client.get("/sdapi/v1/sd-models").json()}
    assert names >= {*(set(SAFETENSORS) - PICKLES), *FOLDERS, "sound"}
    assert not names & PICKLES


@pytest.mark.parametrize("name", [*sorted(SAFETENSORS), *FOLDERS])
def test_a_hostile_model_is_a_422_naming_it_the_a1111_way(client: TestClient, name: str) -> None:
    if name in PICKLES:
        answer = client.post("/sdapi/v1/options", json={"sd_model_checkpoint": name})
        assert "sfumato models convert" in answer.json()["detail"]
    else:
        answer = _txt2img(client, name)
    assert answer.status_code == 422, answer.text
    body = answer.json()
    assert set(body) == {"error", "detail", "body", "errors"}
    assert name in body["detail"] and "Traceback" not in answer.text


def test_a_hostile_model_fails_its_job_as_the_requests_fault(client: TestClient) -> None:
    for name in ("deep-nesting", "offset-1e999", "unet-config-list"):
        selected = client.post("/api/models/select", json={"name": name})
        assert selected.status_code == 200, selected.text
        job = client.post(
            "/api/jobs", json={"request": {"prompt": "a cat", "steps": 1, "width": 64, "height": 64}}
        )
        assert job.status_code == 202, job.text
        state: dict[str, Any] = {}
        for _ in range(200):
            state = client.get(f"/api/jobs/{job.json()['id']}").json()
            if state["state"] in ("finished", "failed"):
                break
            time.sleep(0.05)
        assert (state["state"], state["error_kind"]) == ("failed", "request"), state
        assert name in state["error"]


def test_after_them_all_a_sound_model_still_makes_a_picture(client: TestClient) -> None:
    answer = _txt2img(client, "sound")
    assert answer.status_code == 200, answer.text
    assert len(answer.json()["images"]) == 1


def test_hostile_pictures_sent_to_the_server_are_read_or_refused_in_one_shape(
    client: TestClient, tmp_path: Path
) -> None:
    unreadable = ("bomb-header", "truncated", "not-an-image")
    for name, path in write_pictures(tmp_path).items():
        encoded = base64.b64encode(path.read_bytes()).decode()
        info = client.post("/sdapi/v1/png-info", json={"image": encoded})
        job = client.post(
            "/api/jobs", json={"request": {"prompt": "x", "init_image": "data:image/png;base64," + encoded}}
        )
        if name in unreadable:
            assert info.status_code == 422, info.text
            assert set(info.json()) == {"error", "detail", "body", "errors"}
        else:  # odd metadata is still a picture; an empty image has empty info, as in A1111
            assert info.status_code == 200, (name, info.text)
        if name in (*unreadable, "empty"):
            assert job.status_code == 422 and job.json()["error"] == "ImageReadError", job.text
            assert "init image" in job.json()["detail"]
        else:
            assert job.status_code == 202, (name, job.text)
