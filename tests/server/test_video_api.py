"""POST /api/video/keyframes: a job per keyframe, then the EbSynth project folder (tiny random model)."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from PIL import Image
from server_helpers import TINY_CATALOG, TinyRun

from sfumato.archive.video import write_mp4
from sfumato.core.settings import Settings
from sfumato.server import create_app

pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TestClient, Settings]]:
    settings = Settings(data_dir=tmp_path_factory.mktemp("video") / "data")
    app = create_app(settings, run=TinyRun(settings), catalog=TINY_CATALOG, poll_seconds=0.05)
    with TestClient(app, base_url="http://127.0.0.1:7860") as test_client:
        yield test_client, settings


def _video(tmp_path: Path) -> str:
    path = tmp_path / "clip.mp4"
    write_mp4(path, (Image.new("RGB", (64, 64), (10 * i, 80, 200)) for i in range(7)), 10.0)
    return "data:video/mp4;base64," + base64.b64encode(path.read_bytes()).decode()


def test_keyframes_over_the_api(served: tuple[TestClient, Settings], tmp_path: Path) -> None:
    client, settings = served
    body = {
        "video": _video(tmp_path),
        "every": 3,
        "request": {"prompt": "a cat", "steps": 3, "seed": 4, "frozen_noise": True},
    }
    response = client.post("/api/video/keyframes", json=body)
    assert response.status_code == 200, response.text
    result = response.json()
    assert result["keyframes"] == [1, 4, 7] and len(result["jobs"]) == 3
    assert all(job["images"][0]["recipe"]["frozen_noise"] for job in result["jobs"])
    assert {job["images"][0]["recipe"]["seed"] for job in result["jobs"]} == {4}
    folder = settings.outputs / result["folder"]
    assert sorted(p.name for p in (folder / "keys").iterdir()) == ["0001.png", "0004.png", "0007.png"]
    assert (folder / "preview.mp4").is_file() and (folder / "README.txt").is_file()


def test_bad_video_and_every_zero_are_refused(served: tuple[TestClient, Settings], tmp_path: Path) -> None:
    client, _ = served
    text = "data:video/mp4;base64," + base64.b64encode(b"hello, not a video\n" * 20).decode()
    refused = client.post(
        "/api/video/keyframes", json={"video": text, "every": 2, "request": {"prompt": "x"}}
    )
    assert refused.status_code == 422 and "is not a video" in refused.text
    zero = client.post(
        "/api/video/keyframes", json={"video": _video(tmp_path), "every": 0, "request": {"prompt": "x"}}
    )
    assert zero.status_code == 422 and "every" in zero.text
