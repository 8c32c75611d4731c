"""Outpainting over the network: Sfumato's job API and A1111's img2img outpainting scripts."""

from __future__ import annotations

import base64
import io
import json
from collections.abc import Iterator
from pathlib import Path
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
    settings = Settings(data_dir=tmp_path_factory.mktemp("canvas") / "data", max_canvas_side=256)
    app = create_app(settings, run=TinyRun(settings), catalog=TINY_CATALOG, poll_seconds=0.05)
    with TestClient(app, base_url="http://127.0.0.1:7860") as test_client:
        yield test_client


def _picture() -> Image.Image:
    rng = np.random.default_rng(1)
    return Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8))


def _b64(image: Image.Image) -> str:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode()


def _decoded(b64: str) -> Image.Image:
    return Image.open(io.BytesIO(base64.b64decode(b64)))


def test_sfumato_api_runs_an_outpaint_job(client: TestClient, tmp_path: Path) -> None:
    request = {
        "prompt": "a red circle",
        "steps": 2,
        "seed": 4,
        "init_image": to_data_uri(_picture()),
        "outpaint": {"right": 16, "bottom": 8},
    }
    submitted = client.post("/api/jobs", json={"request": request})
    assert submitted.status_code == 202, submitted.text
    job = finished_job(client, submitted.json()["id"])
    assert job["state"] == "finished", job
    assert job["images"][0]["recipe"]["outpaint"]["right"] == 16
    picture = client.get(f"/api/jobs/{job['id']}/images/0")
    with Image.open(io.BytesIO(picture.content)) as saved:
        assert saved.size == (80, 72)


def test_sfumato_api_refuses_a_canvas_past_the_maximum(client: TestClient) -> None:
    request = {"prompt": "x", "init_image": to_data_uri(_picture()), "outpaint": {"top": 256}}
    refused = client.post("/api/jobs", json={"request": request})
    assert refused.status_code == 422
    assert "the maximum is 256 a side" in refused.json()["detail"]
    zero = client.post("/api/jobs", json={"request": {**request, "outpaint": {"top": 0}}})
    assert zero.status_code == 422 and "by 0 on every side" in zero.json()["detail"]


@pytest.mark.parametrize(
    ("script", "args", "size"),
    [
        ("Poor man's outpainting", [16, 4, 1, ["left", "up"]], (80, 80)),
        ("Outpainting mk2", ["", 8, 8, ["down"], 1.0, 0.05], (64, 72)),
        ("poor man's outpainting", [], (320, 320)),  # defaults: 128 on all four sides, past 256
        ("SD upscale", [None, 16, 1, 2.0], (128, 128)),
    ],
)
def test_a1111_outpainting_scripts(
    client: TestClient, script: str, args: list[Any], size: tuple[int, int]
) -> None:
    payload = {
        "init_images": [_b64(_picture())],
        "prompt": "a blue square",
        "steps": 2,
        "seed": 3,
        "width": 512,
        "height": 512,
        "denoising_strength": 0.8,
        "script_name": script,
        "script_args": args,
    }
    answer = client.post("/sdapi/v1/img2img", json=payload)
    if max(size) > 256:
        assert answer.status_code == 422 and "320x320" in answer.json()["detail"]
        return
    assert answer.status_code == 200, answer.text
    image = _decoded(answer.json()["images"][0])
    assert image.size == size
    assert "Denoising strength: 0.8" in image.info["parameters"]


@pytest.mark.parametrize(
    ("route", "script", "args", "expected"),
    [
        ("img2img", "Ultimate SD upscale", [], "The script 'Ultimate SD upscale' is not available here"),
        ("img2img", "SD upscale", [None, 16, 5, 2.0], "upscaler 5 is not available here"),
        ("txt2img", "Poor man's outpainting", [], "is not available here"),
        ("txt2img", "X/Y/Z plot", [12, "1, 2"], "axis type 12 is not one whose number is the same"),
        ("txt2img", "X/Y/Z plot", ["Flavour", "1, 2"], "unknown X/Y/Z axis 'Flavour'"),
        ("txt2img", "X/Y/Z plot", [0, "", [], 4, "1, 2"], "has no X axis"),
        ("txt2img", "X/Y/Z plot", ["Steps", "1, many"], "steps: Input should be a valid integer"),
        (
            "img2img",
            "Poor man's outpainting",
            ["wide"],
            "script_args[0] (pixels to expand) should be a whole number",
        ),
        ("img2img", "Outpainting mk2", ["", 8, 8, ["sideways"]], "unknown direction 'sideways'"),
        ("img2img", "Poor man's outpainting", [8, 4, 0, []], "by 0 on every side"),
    ],
)
def test_unknown_scripts_and_bad_script_args_are_a_422(
    client: TestClient, route: str, script: str, args: list[Any], expected: str
) -> None:
    payload = {"init_images": [_b64(_picture())], "steps": 1, "script_name": script, "script_args": args}
    answer = client.post(f"/sdapi/v1/{route}", json=payload)
    assert answer.status_code == 422 and expected in answer.json()["detail"], answer.text


def test_the_scripts_list_names_the_outpainting_scripts(client: TestClient) -> None:
    scripts = client.get("/sdapi/v1/scripts").json()
    assert scripts["img2img"] == ["poor man's outpainting", "outpainting mk2", "sd upscale", "x/y/z plot"]
    assert scripts["txt2img"] == ["x/y/z plot"]


def test_fix_crop_job_grows_the_side_the_subject_touches(client: TestClient) -> None:
    cut = Image.new("RGB", (64, 64), (245, 245, 245))
    cut.paste((220, 30, 30), (40, 20, 64, 44))  # a red block cut off by the right edge
    submitted = client.post("/api/fix-crop", json={"image": _b64(cut), "prompt": "a red square", "steps": 2})
    assert submitted.status_code == 202, submitted.text
    job = finished_job(client, submitted.json()["id"])
    assert job["state"] == "finished", job
    outpaint = job["images"][0]["recipe"]["outpaint"]
    assert outpaint["right"] > 0 and outpaint["top"] == outpaint["bottom"] == outpaint["left"] == 0
    with Image.open(io.BytesIO(client.get(f"/api/jobs/{job['id']}/images/0").content)) as saved:
        assert saved.size == (64 + outpaint["right"], 64)


def test_fix_crop_of_a_picture_with_nothing_cut_off_is_a_422(client: TestClient) -> None:
    whole = Image.new("RGB", (64, 64), (245, 245, 245))
    whole.paste((220, 30, 30), (20, 20, 40, 40))
    refused = client.post("/api/fix-crop", json={"image": _b64(whole), "prompt": "a red square"})
    assert refused.status_code == 422 and "does not touch the frame" in refused.json()["detail"]
    no_prompt = client.post("/api/fix-crop", json={"image": _b64(whole), "side": "top"})
    assert no_prompt.status_code == 422 and "holds no prompt" in no_prompt.json()["detail"]


def test_a1111_txt2img_with_hires_fix(client: TestClient) -> None:
    payload = {
        "prompt": "a red circle",
        "steps": 2,
        "seed": 7,
        "width": 64,
        "height": 64,
        "enable_hr": True,
        "hr_scale": 1.5,
        "hr_upscaler": "Latent (nearest)",
        "hr_second_pass_steps": 3,
        "denoising_strength": 0.6,
        "hr_sampler_name": "Euler",
        "hr_prompt": "a red circle, sharp",
    }
    answer = client.post("/sdapi/v1/txt2img", json=payload)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    image = _decoded(body["images"][0])
    assert image.size == (96, 96)
    text = image.info["parameters"]
    assert "Size: 64x64" in text and "Denoising strength: 0.6" in text
    assert (
        "Hires upscale: 1.5, Hires steps: 3, Hires upscaler: Latent (nearest), Hires sampler: Euler" in text
    )
    assert 'Hires prompt: "a red circle, sharp"' in text
    assert json.loads(body["info"])["denoising_strength"] == 0.6
    resized = client.post("/sdapi/v1/txt2img", json={**payload, "hr_resize_x": 128, "hr_resize_y": 80})
    assert _decoded(resized.json()["images"][0]).size == (128, 80)


def test_a1111_hires_with_an_unknown_upscaler_is_a_422(client: TestClient) -> None:
    payload = {"steps": 1, "enable_hr": True, "hr_upscaler": "R-ESRGAN 4x+"}
    answer = client.post("/sdapi/v1/txt2img", json=payload)
    assert answer.status_code == 422 and "Unknown hires upscaler 'R-ESRGAN 4x+'" in answer.json()["detail"]
    modes = client.get("/sdapi/v1/latent-upscale-modes").json()
    assert {"name": "Latent (nearest)"} in modes
    assert [u["name"] for u in client.get("/sdapi/v1/upscalers").json()][:3] == ["None", "Lanczos", "Nearest"]


def test_a1111_hires_with_its_own_checkpoint_or_schedule_is_refused_not_dropped(client: TestClient) -> None:
    payload = {"steps": 1, "width": 64, "height": 64, "enable_hr": True, "hr_upscaler": "Latent"}
    same = client.post("/sdapi/v1/txt2img", json={**payload, "hr_checkpoint_name": "Use same checkpoint"})
    assert same.status_code == 200, same.text
    for field, value in (("hr_checkpoint_name", "other.safetensors"), ("hr_scheduler", "Karras")):
        answer = client.post("/sdapi/v1/txt2img", json={**payload, field: value})
        assert answer.status_code == 422
        assert f"{field} '{value}'" in answer.json()["detail"]


def test_xyz_plot_over_the_job_api(client: TestClient) -> None:
    body = {
        "request": {"prompt": "a red circle", "steps": 2, "seed": 5},
        "x": {"name": "cfg scale", "values": [3, 7]},
        "y": {"name": "seed", "values": [5, 6]},
    }
    answer = client.post("/api/xyz", json=body)
    assert answer.status_code == 200, answer.text
    result = answer.json()
    assert [job["request"]["cfg_scale"] for job in result["jobs"]] == [3, 7, 3, 7]
    assert [job["request"]["seed"] for job in result["jobs"]] == [5, 5, 6, 6]
    grid = _decoded(result["grid"])
    assert grid.width > 2 * 64 and grid.height > 2 * 64 and "sfumato-xyz" in grid.info
    bad = client.post("/api/xyz", json={**body, "x": {"name": "cfg scale", "values": ["high"]}})
    assert bad.status_code == 422 and "cfg_scale" in bad.json()["detail"]
    unknown = client.post("/api/xyz", json={**body, "z": {"name": "flavour", "values": [1]}})
    assert unknown.status_code == 422 and "unknown axis 'flavour'" in unknown.json()["detail"]


def test_a1111_xyz_plot_script(client: TestClient) -> None:
    payload = {
        "prompt": "a red circle",
        "steps": 2,
        "seed": 8,
        "width": 64,
        "height": 64,
        "script_name": "X/Y/Z plot",
        # x: Steps 1-3 (a range), y: CFG Scale by label, z: nothing; draw legend, include lone images
        "script_args": [4, "1-3", [], "CFG Scale", "3, 7", [], 0, "", [], True, True, False, False],
    }
    answer = client.post("/sdapi/v1/txt2img", json=payload)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert len(body["images"]) == 1 + 6  # the grid, then every cell
    grid, cells = _decoded(body["images"][0]), [_decoded(b) for b in body["images"][1:]]
    assert grid.width > 3 * 64 and grid.height > 2 * 64
    assert all(cell.size == (64, 64) for cell in cells)
    texts = json.loads(body["info"])["infotexts"][1:]
    assert "Steps: 1," in texts[0] and "CFG scale: 3," in texts[0]
    assert "Steps: 3," in texts[2] and "CFG scale: 7," in texts[5]


@pytest.mark.parametrize(
    ("fields", "size"),
    [
        ({"init_image": to_data_uri(_picture()), "upscale": {"scale": 2, "overlap": 16}}, (128, 128)),
        ({"width": 64, "height": 64, "hires": {"scale": 1.5, "upscaler": "Lanczos"}}, (96, 96)),
    ],
    ids=["upscale", "hires"],
)
def test_sfumato_api_runs_upscale_and_hires_jobs(
    client: TestClient, fields: dict[str, Any], size: tuple[int, int]
) -> None:
    submitted = client.post(
        "/api/jobs", json={"request": {"prompt": "a boat", "steps": 2, "seed": 1, **fields}}
    )
    assert submitted.status_code == 202, submitted.text
    job = finished_job(client, submitted.json()["id"])
    assert job["state"] == "finished", job
    with Image.open(io.BytesIO(client.get(f"/api/jobs/{job['id']}/images/0").content)) as saved:
        assert saved.size == size
    too_big = {**fields, "upscale": {"scale": 8}} if "upscale" in fields else None
    if too_big is not None:
        refused = client.post("/api/jobs", json={"request": {"prompt": "x", **too_big}})
        assert refused.status_code == 422 and "512x512" in refused.json()["detail"]
