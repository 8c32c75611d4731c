"""Interrogation, concept search and the NSFW check over HTTP, on the demo CLIP."""

from __future__ import annotations

import base64
import io
from pathlib import Path

from fastapi.testclient import TestClient
from PIL import Image
from server_helpers import TINY_CATALOG, TinyRun

from sfumato.core.settings import Settings
from sfumato.demo import world
from sfumato.server import create_app


def _b64(picture: Image.Image) -> str:
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode()


def _scene(shape: str, colour: str, position: str, background: str) -> Image.Image:
    obj = world.SceneObject(shape=shape, colour=colour, position=position, size="large")
    return world.render(world.Scene(objects=(obj,), background=background))


def _client(settings: Settings) -> TestClient:
    server = create_app(settings, run=TinyRun(settings), catalog=TINY_CATALOG, poll_seconds=0.05)
    return TestClient(server, base_url="http://127.0.0.1:7860")


def test_a1111_interrogate_clip_and_deepdanbooru_without_a_tagger(tmp_path: Path) -> None:
    with _client(Settings(data_dir=tmp_path / "data")) as client:
        image = _b64(_scene("triangle", "orange", "top right", "gray"))
        found = client.post("/sdapi/v1/interrogate", json={"image": image, "model": "clip"})
        assert found.status_code == 200
        assert {"orange", "triangle", "gray background"} <= set(found.json()["caption"].split(", "))
        refused = client.post("/sdapi/v1/interrogate", json={"image": image, "model": "deepdanbooru"})
        assert refused.status_code == 422
        body = refused.json()
        assert set(body) >= {"error", "detail", "errors"} and "No tagger is configured" in body["detail"]
        unknown = client.post("/sdapi/v1/interrogate", json={"image": image, "model": "blip2"})
        assert unknown.status_code == 422


def test_api_interrogate_and_nsfw_check(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data", nsfw_concepts=["a star=0.45"])
    with _client(settings) as client:
        star = _b64(_scene("star", "white", "center", "red"))
        found = client.post("/api/interrogate", json={"image": star, "lists": ["shapes"]}).json()
        assert found["prompt"] == "star" and list(found["lists"]) == ["shapes"]
        assert client.post("/api/nsfw/check", json={"image": star}).json()["flagged"] is True
        circle = _b64(_scene("circle", "white", "center", "red"))
        assert client.post("/api/nsfw/check", json={"image": circle}).json()["flagged"] is False
