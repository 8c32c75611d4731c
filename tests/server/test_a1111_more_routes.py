"""The rest of A1111's routes answer in its shapes: lists where a client iterates, numbers where it reads
them, and a clear 422 (A1111's error shape) where Sfumato does not offer the feature."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from server_helpers import TINY_CATALOG

from sfumato.core.settings import Settings
from sfumato.server import create_app

HEADERS = {"host": "127.0.0.1:7860"}
A1111_ERROR = {"error", "detail", "body", "errors"}


class UnloadingRun:
    """A run function that records the A1111 unload requests (the real one frees its model cache)."""

    def __init__(self) -> None:
        self.unloads = 0

    def __call__(self, *args: Any, **kwargs: Any) -> list[Any]:
        return []

    def unload(self) -> None:
        self.unloads += 1


@pytest.fixture
def webui(tmp_path: Path) -> Path:
    root = tmp_path / "stable-diffusion-webui"
    (root / "models" / "Stable-diffusion").mkdir(parents=True)
    (root / "styles.csv").write_text(
        'name,prompt,negative_prompt\n"Photo","photo of {prompt}, 35mm","painting"\n"Empty",,\n', "utf-8"
    )
    return root


@pytest.fixture
def served(tmp_path: Path, webui: Path) -> Iterator[tuple[TestClient, UnloadingRun]]:
    run = UnloadingRun()
    settings = Settings(data_dir=tmp_path / "data", model_folders=[webui / "models"])
    app = create_app(settings, run=run, catalog=TINY_CATALOG, poll_seconds=0.05)
    with TestClient(app, headers=HEADERS) as client:
        yield client, run


def test_prompt_styles_come_from_the_webui_folders_styles_csv(
    served: tuple[TestClient, UnloadingRun],
) -> None:
    client, _ = served
    assert client.get("/sdapi/v1/prompt-styles").json() == [
        {"name": "Photo", "prompt": "photo of {prompt}, 35mm", "negative_prompt": "painting"},
        {"name": "Empty", "prompt": "", "negative_prompt": ""},
    ]


@pytest.mark.parametrize("route", ["hypernetworks", "extensions", "sd-modules"])
def test_features_we_lack_are_empty_lists(served: tuple[TestClient, UnloadingRun], route: str) -> None:
    answer = served[0].get(f"/sdapi/v1/{route}")
    assert answer.status_code == 200 and answer.json() == []


def test_memory_reports_real_ram(served: tuple[TestClient, UnloadingRun]) -> None:
    memory = served[0].get("/sdapi/v1/memory").json()
    ram = memory["ram"]
    assert 0 < ram["used"] < ram["total"] and 0 < ram["free"] <= ram["total"]
    assert ram["total"] > 256 * 1024**2
    cuda = memory["cuda"]
    assert "error" in cuda or set(cuda) >= {"system", "active", "allocated", "reserved", "inactive", "events"}


def test_ram_numbers_without_psutil(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    from sfumato.server.a1111.routes_more import ram_numbers

    monkeypatch.setitem(sys.modules, "psutil", None)  # import psutil now raises ImportError
    ram = ram_numbers()
    assert 0 < ram["used"] < ram["total"] and 0 < ram["free"] <= ram["total"]


def test_cmd_flags_and_script_info(served: tuple[TestClient, UnloadingRun]) -> None:
    client, _ = served
    flags = client.get("/sdapi/v1/cmd-flags").json()
    assert flags["api"] is True and flags["listen"] is False and flags["ckpt_dir"] is None
    infos = client.get("/sdapi/v1/script-info").json()
    names = {(info["name"], info["is_img2img"]) for info in infos}
    assert ("x/y/z plot", False) in names and ("poor man's outpainting", True) in names
    scripts = client.get("/sdapi/v1/scripts").json()
    assert {name for name, img2img in names if img2img} == set(scripts["img2img"])
    assert all(
        set(arg) >= {"label", "value", "minimum", "maximum", "step", "choices"}
        for i in infos
        for arg in i["args"]
    )


def test_refreshes_unload_and_ping(served: tuple[TestClient, UnloadingRun]) -> None:
    client, run = served
    assert client.post("/sdapi/v1/refresh-embeddings").json() is None
    assert client.post("/sdapi/v1/refresh-loras").status_code == 200
    assert client.post("/sdapi/v1/unload-checkpoint").json() == {}
    assert client.post("/sdapi/v1/reload-checkpoint").json() == {}
    assert run.unloads == 2
    assert client.get("/internal/ping").json() == {}


@pytest.mark.parametrize(
    ("route", "body", "words"),
    [
        ("create/embedding", {"name": "x", "num_vectors_per_token": 1}, "Creating an embedding"),
        ("train/embedding", {"embedding_name": "x"}, "Training an embedding"),
        ("create/hypernetwork", {"name": "x"}, "Creating a hypernetwork"),
        ("train/hypernetwork", {"hypernetwork_name": "x"}, "Training a hypernetwork"),
    ],
)
def test_what_we_do_not_offer_is_a_clear_422(
    served: tuple[TestClient, UnloadingRun], route: str, body: dict[str, Any], words: str
) -> None:
    answer = served[0].post(f"/sdapi/v1/{route}", json=body)
    assert answer.status_code == 422
    assert set(answer.json()) >= A1111_ERROR and words in answer.json()["detail"]


def test_the_runner_frees_its_models_on_unload(tmp_path: Path) -> None:
    from sfumato.jobs.local import runner_run_function
    from tiny import tiny_components

    run = runner_run_function(Settings(data_dir=tmp_path))
    run.cache.get("tiny", lambda: tiny_components(seed=0))
    assert len(run.cache) == 1
    run.unload()
    assert len(run.cache) == 0
