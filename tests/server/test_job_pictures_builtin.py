"""A job run by the real runner (the built-in model) serves its picture: the runner records paths relative
to the outputs folder, and the server must resolve them there, not in its working folder."""

from __future__ import annotations

import io
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from sfumato.core.settings import Settings
from sfumato.server import create_app

pytestmark = pytest.mark.timeout(300)


def test_a_real_jobs_picture_is_served(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # a working folder that is not the outputs folder
    settings = Settings(data_dir=tmp_path / "data")
    app = create_app(settings, poll_seconds=0.05)
    with TestClient(app, base_url="http://127.0.0.1:7860") as client:
        job = client.post("/api/jobs", json={"request": {"prompt": "a red circle", "steps": 4, "seed": 1}})
        assert job.status_code == 202, job.text
        deadline = time.monotonic() + 240
        while (state := client.get(f"/api/jobs/{job.json()['id']}").json())["state"] not in (
            "finished",
            "failed",
        ):
            assert time.monotonic() < deadline
            time.sleep(0.1)
        assert state["state"] == "finished", state
        assert not Path(state["images"][0]["path"]).is_absolute()
        picture = client.get(f"/api/jobs/{state['id']}/images/0")
        assert picture.status_code == 200, picture.text
        assert Image.open(io.BytesIO(picture.content)).size == (96, 96)
        escape = client.get(f"/api/jobs/{state['id']}/images/1")
        assert escape.status_code == 404
