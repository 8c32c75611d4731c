"""Job events over Server-Sent Events and WebSocket, typed as the API documents them."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import httpx
from fastapi.testclient import TestClient
from jobs_fakes import FakeRun  # pyright: ignore[reportMissingImports]
from server_helpers import TINY_CATALOG, live_server

from sfumato.core.settings import Settings
from sfumato.server import create_app


def _app(tmp_path: Path, gate: threading.Event | None = None):
    settings = Settings(data_dir=tmp_path / "data")
    return create_app(
        settings, run=FakeRun(settings.outputs, gate=gate), catalog=TINY_CATALOG, poll_seconds=0.05
    )


BODY = {"request": {"prompt": "a boat", "steps": 3, "width": 64, "height": 64, "seed": 4}}


def test_websocket_streams_a_job_from_queued_to_finished(tmp_path: Path) -> None:
    with (
        TestClient(_app(tmp_path), base_url="http://127.0.0.1:7860") as client,
        client.websocket_connect("ws://127.0.0.1:7860/api/events/ws") as ws,
    ):
        job = client.post("/api/jobs", json=BODY).json()
        events = []
        while not events or events[-1]["type"] not in ("finished", "failed", "cancelled"):
            events.append(ws.receive_json())
    assert all(e["job_id"] == job["id"] for e in events)
    assert [e["type"] for e in events] == [
        "queued",
        "started",
        "progress",
        "progress",
        "progress",
        "image_saved",
        "finished",
    ]
    assert events[4]["step"] == 3 and events[4]["fraction"] == 1.0
    assert events[-1]["images"][0]["path"].endswith(".png")
    picture = client.get(f"/api/jobs/{job['id']}/images/0")
    assert picture.status_code == 200 and picture.content.startswith(b"\x89PNG")


def test_server_sent_events_for_one_job(tmp_path: Path) -> None:
    gate = threading.Event()
    with live_server(_app(tmp_path, gate)) as base:
        other = httpx.post(f"{base}/api/jobs", json=BODY).json()
        mine = httpx.post(f"{base}/api/jobs", json={**BODY, "priority": -1}).json()
        seen: list[dict] = []
        with httpx.stream("GET", f"{base}/api/events", params={"job_id": mine["id"]}, timeout=30) as stream:
            gate.set()
            for line in stream.iter_lines():
                if line.startswith("data:"):
                    seen.append(json.loads(line.removeprefix("data:")))
                    if seen[-1]["type"] == "finished":
                        break
        assert httpx.get(f"{base}/api/jobs/{other['id']}").json()["state"] == "finished"
    assert {e["job_id"] for e in seen} == {mine["id"]}
    assert [e["type"] for e in seen][-2:] == ["image_saved", "finished"]
    assert "started" in [e["type"] for e in seen]
