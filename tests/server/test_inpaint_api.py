"""Inpainting options over the network: masks made from a box or scribble, soft inpainting (Sfumato's
API and A1111's always-on 'soft inpainting' script)."""

from __future__ import annotations

import base64
import io
import json
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image
from server_helpers import TINY_CATALOG, TinyRun, finished_job

from sfumato.core.images import to_data_uri
from sfumato.core.settings import Settings
from sfumato.server import create_app

pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    settings = Settings(data_dir=tmp_path_factory.mktemp("inpaint") / "data")
    app = create_app(settings, run=TinyRun(settings), catalog=TINY_CATALOG, poll_seconds=0.05)
    with TestClient(app, base_url="http://127.0.0.1:7860") as test_client:
        yield test_client


def _picture() -> Image.Image:
    rng = np.random.default_rng(2)
    return Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8))


def _b64(image: Image.Image) -> str:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode()


def test_sfumato_api_inpaints_a_box_softly(client: TestClient) -> None:
    picture = _picture()
    request = {
        "prompt": "a red circle",
        "steps": 2,
        "seed": 4,
        "init_image": to_data_uri(picture),
        "mask_from": {"box": [8, 8, 16, 16]},
        "mask_blur": 0,
        "soft_inpainting": {"mask_influence": 1.0},
    }
    submitted = client.post("/api/jobs", json={"request": request})
    assert submitted.status_code == 202, submitted.text
    job = finished_job(client, submitted.json()["id"])
    assert job["state"] == "finished", job
    recipe = job["images"][0]["recipe"]
    assert recipe["mask_from"]["box"] == [8, 8, 16, 16] and recipe["soft_inpainting"]["mask_influence"] == 1.0
    saved = client.get(f"/api/jobs/{job['id']}/images/0")
    with Image.open(io.BytesIO(saved.content)) as image:
        out = np.asarray(image.convert("RGB"), dtype=np.int16)
    original = np.asarray(picture, dtype=np.int16)
    outside = np.ones((64, 64), dtype=bool)
    outside[8:24, 8:24] = False
    assert np.array_equal(out[outside], original[outside]) and not np.array_equal(out, original)


@pytest.mark.parametrize(
    ("mask_from", "message"),
    [
        ({"scribble": "/etc/passwd"}, "scribble must be a data: URI"),
        ({"box": [0, 0, 8, 8], "object": "red circle"}, "exactly one of box, scribble or object"),
    ],
)
def test_sfumato_api_refuses_bad_mask_sources(
    client: TestClient, mask_from: dict[str, Any], message: str
) -> None:
    request = {"prompt": "x", "init_image": to_data_uri(_picture()), "mask_from": mask_from}
    refused = client.post("/api/jobs", json={"request": request})
    assert refused.status_code == 422 and message in refused.text, refused.text


def _img2img(client: TestClient, alwayson: dict[str, Any]) -> Any:
    mask = Image.new("L", (64, 64), 0)
    mask.paste(255, (16, 16, 48, 48))
    payload = {
        "prompt": "a red circle",
        "steps": 2,
        "seed": 3,
        "width": 64,
        "height": 64,
        "init_images": [_b64(_picture())],
        "mask": _b64(mask),
        "denoising_strength": 1.0,
        "alwayson_scripts": alwayson,
    }
    return client.post("/sdapi/v1/img2img", json=payload)


def test_a1111_soft_inpainting_script_is_honoured(client: TestClient) -> None:
    args = [True, 1.5, 0.25, 4, 0.5, 0.75, 2]
    answer = _img2img(client, {"soft inpainting": {"args": args}})
    assert answer.status_code == 200, answer.text
    info = json.loads(answer.json()["info"])["infotexts"][0]
    assert "Soft inpainting enabled: True" in info and "Soft inpainting schedule bias: 1.5" in info
    assert "Soft inpainting mask influence: 0.5" in info
    plain = _img2img(client, {"Soft Inpainting": {"args": [False, 1, 0.5, 4, 0, 0.5, 2]}})
    assert (
        plain.status_code == 200 and "Soft inpainting" not in json.loads(plain.json()["info"])["infotexts"][0]
    )
    assert answer.json()["images"][0] != plain.json()["images"][0]


@pytest.mark.parametrize(
    ("alwayson", "message"),
    [
        ({"soft inpainting": {"args": ["yes"]}}, "first argument (enabled)"),
        ({"soft inpainting": {"args": [True, "high"]}}, "schedule bias should be a number"),
        ({"soft inpainting": {"args": [True, 1, 0.5, 0.5]}}, "transition_contrast_boost"),
        ({"soft inpainting": {"args": [True, 1, 0.5, 4, 0, 0.5, 2, 9]}}, "takes 7 arguments"),
        ({"Tiled VAE": {"args": [True]}}, "not available here"),
    ],
)
def test_a1111_bad_soft_inpainting_args_are_422(
    client: TestClient, alwayson: dict[str, Any], message: str
) -> None:
    answer = _img2img(client, alwayson)
    assert answer.status_code == 422 and message in answer.text, answer.text


def _txt2img(client: TestClient, alwayson: dict[str, Any]) -> Any:
    payload = {"prompt": "a red circle", "steps": 2, "seed": 3, "width": 128, "height": 64}
    return client.post("/sdapi/v1/txt2img", json=payload | {"alwayson_scripts": alwayson})


def test_a1111_tiled_diffusion_script_tiles_the_canvas(client: TestClient) -> None:
    args = [True, "MultiDiffusion", False, True, 1024, 1024, 8, 8, 4, 1, "None", 1, False]
    tiled = _txt2img(client, {"Tiled Diffusion": {"args": args}})
    plain = _txt2img(client, {"Tiled Diffusion": {"args": [False, *args[1:]]}})
    assert tiled.status_code == plain.status_code == 200, tiled.text
    image = Image.open(io.BytesIO(base64.b64decode(tiled.json()["images"][0])))
    assert image.size == (128, 64)
    assert tiled.json()["images"][0] != plain.json()["images"][0]
    resized = _txt2img(
        client, {"tiled diffusion": {"args": [True, "Mixture of Diffusers", True, True, 96, 64, 8, 8, 4]}}
    )
    assert Image.open(io.BytesIO(base64.b64decode(resized.json()["images"][0]))).size == (96, 64)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([True, "Tiles"], "Unknown tiled diffusion method"),
        ([True, "MultiDiffusion", False, True, 0, 0, 8, 4, 4], "Sfumato's tiles are square"),
        ([True, "MultiDiffusion", False, True, 0, 0, 8, 8, 4, 1, "R-ESRGAN 4x+", 2], "own upscaling"),
        ([True, "MultiDiffusion", False, True, 0, 0, 8, 8, 4, 1, "None", 1, True], "Noise inversion"),
        ([True, "MultiDiffusion", False, True, 0, 0, 64, 64, 4], "larger than the 128x64 canvas"),
        ([True, "MultiDiffusion", False, True, 0, 0, "8", 8, 4], "tile width) should be a whole number"),
    ],
)
def test_a1111_bad_tiled_diffusion_args_are_422(client: TestClient, args: list[Any], message: str) -> None:
    answer = _txt2img(client, {"Tiled Diffusion": {"args": args}})
    assert answer.status_code == 422 and message in answer.text, answer.text


def test_a1111_txt2img_accepts_soft_inpainting_sent_with_every_request(client: TestClient) -> None:
    answer = _txt2img(client, {"soft inpainting": {"args": [True, 1, 0.5, 4, 0, 0.5, 2]}})
    assert answer.status_code == 200, answer.text
    assert _txt2img(client, {"soft inpainting": {"args": ["on"]}}).status_code == 422
