"""Tokens, origins, binds and client-supplied names: nothing gets in or out that should not."""

from __future__ import annotations

import base64
import io
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from jobs_fakes import FakeRun  # pyright: ignore[reportMissingImports]
from PIL import Image
from server_helpers import TINY_CATALOG
from typer.testing import CliRunner

from sfumato.core.settings import Settings
from sfumato.server import ServerConfig, create_app
from sfumato.server.serve import UnsafeBind, check_bind

BASE = "http://127.0.0.1:7860"
TOKEN = "s3cret-token"


def _app(tmp_path: Path, **config: object):
    settings = Settings(data_dir=tmp_path / "data")
    return create_app(
        settings,
        config=ServerConfig(**config),  # type: ignore[arg-type]
        run=FakeRun(settings.outputs),
        catalog=TINY_CATALOG,
        poll_seconds=0.05,
    ), settings


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    app, _ = _app(tmp_path)
    with TestClient(app, base_url=BASE) as client:
        yield client


def _png(size: tuple[int, int] = (64, 64)) -> str:
    buffer = io.BytesIO()
    Image.new("RGB", size, (1, 2, 3)).save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode()


TRAVERSAL = [
    "../secret.png",
    "../../etc/passwd",
    "/etc/passwd",
    "..%2fsecret.png",
    "%2e%2e/secret.png",
    "%252e%252e%252fsecret.png",
    "a/../../secret.png",
    "C:\\Windows\\win.ini",
    "..\\secret.png",
    "outside-link/secret.png",
    "\x00.png",
    "~/secret.png",
]


@pytest.mark.parametrize("payload", TRAVERSAL)
def test_names_and_paths_never_leave_their_folders(tmp_path: Path, payload: str) -> None:
    app, settings = _app(tmp_path)
    secret = tmp_path / "secret.png"
    Image.new("RGB", (8, 8)).save(secret)
    settings.outputs.mkdir(parents=True)
    (settings.outputs / "outside-link").symlink_to(tmp_path, target_is_directory=True)
    with TestClient(app, base_url=BASE) as client:
        from urllib.parse import quote

        answers = [
            client.get("/api/files/" + quote(payload, safe="/%")),
            client.post("/api/models/select", json={"name": payload}),
            client.post("/sdapi/v1/options", json={"sd_model_checkpoint": payload}),
            client.post(
                "/sdapi/v1/txt2img", json={"steps": 1, "override_settings": {"sd_model_checkpoint": payload}}
            ),
            client.post("/api/jobs", json={"request": {"prompt": "x", "model": payload}}),
            client.post("/api/jobs", json={"request": {"prompt": "x", "vae": payload}}),
            client.post("/api/jobs", json={"request": {"prompt": f"<lora:{payload}:1>"}}),
            client.post("/api/jobs", json={"request": {"prompt": "x", "init_image": payload}}),
            client.post("/sdapi/v1/img2img", json={"init_images": [payload], "steps": 1}),
            client.get(f"/api/jobs/{quote(payload, safe='')}"),
        ]
        for answer in answers:
            assert 400 <= answer.status_code < 500, (answer.request.url, answer.status_code, answer.text)
            assert answer.content[:8] != b"\x89PNG\r\n\x1a\n"
            assert "detail" in answer.json()
        assert client.get("/api/jobs").json() == []  # nothing was queued


def test_every_route_needs_the_token_when_one_is_set(tmp_path: Path) -> None:
    app, _ = _app(tmp_path, token=TOKEN)
    with TestClient(app, base_url=BASE) as client:
        routes = [
            (
                method.lower(),
                path.replace("{job_id}", "x")
                .replace("{index}", "0")
                .replace("{path}", "a.png")
                .replace("{record_id}", "1"),
            )
            for path, item in app.openapi()["paths"].items()
            for method in item
        ]
        routes += [("get", "/docs"), ("get", "/openapi.json"), ("get", "/redoc"), ("get", "/nowhere")]
        assert len(routes) > 30
        for method, path in routes:
            for headers in (
                {},
                {"Authorization": "Bearer wrong"},
                {"Authorization": "Basic " + base64.b64encode(b"user:wrong").decode()},
            ):
                answer = client.request(method, path, headers=headers, json={})
                assert answer.status_code == 401, (method, path, headers, answer.status_code)
                assert "token" in answer.json()["detail"]
        assert client.get("/api/health", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200
        basic = base64.b64encode(f"anyone:{TOKEN}".encode()).decode()
        assert client.get("/sdapi/v1/options", headers={"Authorization": f"Basic {basic}"}).status_code == 200
        assert client.get(f"/api/health?token={TOKEN}").status_code == 200
        assert (
            client.post(f"/sdapi/v1/interrupt?token={TOKEN}").status_code == 401
        )  # URL tokens: GET/streams only
        with pytest.raises(Exception), client.websocket_connect("ws://127.0.0.1:7860/api/events/ws"):  # noqa: B017
            pass
        with client.websocket_connect(f"ws://127.0.0.1:7860/api/events/ws?token={TOKEN}") as ws:
            client.post(
                "/api/jobs",
                json={"request": {"prompt": "hi", "steps": 1}},
                headers={"Authorization": f"Bearer {TOKEN}"},
            )
            assert ws.receive_json()["type"] == "queued"


def test_foreign_origins_and_rebound_hosts_are_refused(tmp_path: Path) -> None:
    app, _ = _app(tmp_path, cors_origins=["http://allowed.example"])
    with TestClient(app, base_url=BASE) as client:
        foreign = client.post("/sdapi/v1/interrupt", headers={"Origin": "http://evil.example"})
        assert foreign.status_code == 403 and "evil.example" in foreign.json()["detail"]
        preflight = client.options(
            "/sdapi/v1/txt2img",
            headers={"Origin": "http://evil.example", "Access-Control-Request-Method": "POST"},
        )
        assert preflight.status_code == 403 and "access-control-allow-origin" not in preflight.headers
        assert client.get("/api/health", headers={"Origin": "null"}).status_code == 403
        assert client.get("/api/health", headers={"Origin": BASE}).status_code == 200  # same origin
        allowed = client.get("/api/health", headers={"Origin": "http://allowed.example"})
        assert allowed.status_code == 200
        assert allowed.headers["access-control-allow-origin"] == "http://allowed.example"
        rebound = client.get("/api/health", headers={"Host": "evil.example:7860"})
        assert rebound.status_code == 403


def test_no_cors_headers_by_default(client: TestClient) -> None:
    answer = client.get("/api/health")
    assert answer.status_code == 200 and "access-control-allow-origin" not in answer.headers


def test_a_network_bind_needs_a_token(tmp_path: Path) -> None:
    with pytest.raises(UnsafeBind, match="--token"):
        check_bind(ServerConfig(listen="0.0.0.0"))
    check_bind(ServerConfig(listen="0.0.0.0", token=TOKEN))
    check_bind(ServerConfig(listen="::1"))
    import typer

    from sfumato.cli.serve import serve

    app = typer.Typer()
    app.command()(serve)
    os.environ.pop("SFUMATO_TOKEN", None)
    result = CliRunner().invoke(app, ["--listen", "0.0.0.0", "--port", "9"])
    assert result.exit_code != 0
    assert isinstance(result.exception, UnsafeBind) and "--new-token" in str(result.exception)


def test_size_limits_and_decompression_bombs(tmp_path: Path) -> None:
    app, _ = _app(tmp_path, max_body_bytes=200_000)
    with TestClient(app, base_url=BASE) as client:
        big = client.post("/sdapi/v1/txt2img", json={"prompt": "x" * 300_000})
        assert big.status_code == 413
        bomb = io.BytesIO()
        Image.new("1", (10_000, 10_000)).save(bomb, format="PNG")  # 100 MP, a few KB compressed
        answer = client.post("/sdapi/v1/png-info", json={"image": base64.b64encode(bomb.getvalue()).decode()})
        assert answer.status_code == 422 and "too large" in answer.json()["detail"]
        job = client.post(
            "/api/jobs",
            json={
                "request": {
                    "prompt": "x",
                    "init_image": "data:image/png;base64," + base64.b64encode(bomb.getvalue()).decode(),
                }
            },
        )
        assert job.status_code == 422
        ok = client.post(
            "/api/jobs",
            json={"request": {"prompt": "x", "init_image": "data:image/png;base64," + _png(), "steps": 1}},
        )
        assert ok.status_code == 202
