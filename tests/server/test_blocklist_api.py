"""The name blocklist over HTTP: generation routes refuse a blocked prompt with a 422; a check route asks first."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient
from server_helpers import TINY_CATALOG, TinyRun

from sfumato.core.settings import Settings
from sfumato.server import create_app


def test_the_server_refuses_a_blocked_prompt_with_a_422(tmp_path: Path) -> None:
    sample_list = tmp_path / "people.txt"
    sample_list.write_text(
        "Jennifer Example | Дженнифер Экзампл\n王小明\nCaptain Stormwind\n", encoding="utf-8"
    )
    settings = Settings(data_dir=tmp_path / "data", blocklists=[sample_list])
    server = create_app(settings, run=TinyRun(settings), catalog=TINY_CATALOG, poll_seconds=0.05)
    with TestClient(server, base_url="http://127.0.0.1:7860") as client:
        job = client.post("/api/jobs", json={"request": {"prompt": "<lora:CaptainStormwind:1>", "steps": 1}})
        assert job.status_code == 422 and "Captain Stormwind" in job.json()["detail"]
        a1111 = client.post("/sdapi/v1/txt2img", json={"prompt": "Дженнифер Экзампл", "steps": 1})
        assert a1111.status_code == 422 and "Jennifer Example" in a1111.json()["detail"]
        verdict = client.post("/api/blocklist/check", json={"prompt": "王小明"}).json()
        assert verdict == {"blocked": True, "entry": "王小明", "list": "people.txt", "line": 2}
        assert client.post("/api/blocklist/check", json={"prompt": "a cat"}).json()["blocked"] is False
        assert client.get("/api/jobs").json() == []  # nothing was queued
