"""What real A1111 clients send, replayed against a real server on tiny models.

- webuiapi 0.9.17 is driven for real (its own code builds every payload, with all its default keys).
- The Auto-Photoshop-StableDiffusion plugin, AI-Render (Blender) and stable-gimpfusion are replayed from
  their source as we read it: the routes they call at start-up, and their txt2img/img2img payloads with
  their own extra keys (A1111 ignores keys it does not know; so does this server).

Each replay checks A1111's response shapes and that the fields we honour change the picture.
"""

# webuiapi is untyped; its calls return results, never tasks, here.
# pyright: reportAttributeAccessIssue=false

from __future__ import annotations

import base64
import io
import threading
import time
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
import requests
import webuiapi
from a1111_served import CATALOG, STYLES_CSV, VaeTinyRun, b64
from PIL import Image
from server_helpers import live_server

from sfumato.core.request import GenerationRequest
from sfumato.core.result import GeneratedImage, ModelInfo
from sfumato.core.settings import Settings
from sfumato.server import create_app

pytestmark = pytest.mark.timeout(600)

A1111_INFO_KEYS = {
    "prompt",
    "all_prompts",
    "seed",
    "all_seeds",
    "infotexts",
    "styles",
    "sampler_name",
    "version",
}
A1111_ERROR_KEYS = {"error", "detail", "body", "errors"}
SAMPLER_KEYS = {"name", "aliases", "options"}


class Live:
    def __init__(self, url: str, run: VaeTinyRun, settings: Settings) -> None:
        self.url = url
        self.run = run
        self.settings = settings
        self.http = requests.Session()
        self.api = webuiapi.WebUIApi(baseurl=url + "/sdapi/v1", sampler="Euler a", steps=2)

    def get(self, path: str, **params: Any) -> Any:
        answer = self.http.get(self.url + path, params=params, timeout=60)
        assert answer.status_code == 200, (path, answer.text)
        return answer.json()

    def post(self, path: str, payload: dict[str, Any]) -> requests.Response:
        return self.http.post(self.url + path, json=payload, timeout=300)

    def render(self, path: str, payload: dict[str, Any]) -> dict[str, Any]:
        answer = self.post(path, payload)
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert set(body) == {"images", "parameters", "info"} and isinstance(body["info"], str)
        return body

    @property
    def last(self) -> GenerationRequest:
        return self.run.requests[-1]


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    home = tmp_path_factory.mktemp("replays")
    (home / "data").mkdir()
    (home / "data" / "styles.csv").write_text(STYLES_CSV, "utf-8")
    settings = Settings(data_dir=home / "data")
    run = VaeTinyRun(settings)
    app = create_app(settings, run=run, catalog=CATALOG, poll_seconds=0.02)
    with live_server(app) as url:
        yield Live(url, run, settings)


def _array(image: Image.Image | str) -> np.ndarray:
    if isinstance(image, str):
        image = Image.open(io.BytesIO(base64.b64decode(image.split(",", 1)[-1])))
    return np.asarray(image.convert("RGB"), dtype=np.float32)


def _differ(a: Any, b: Any) -> float:
    return float(np.abs(_array(a) - _array(b)).mean())


def _noise_picture(size: tuple[int, int], seed: int = 0) -> Image.Image:
    return Image.fromarray(
        np.random.default_rng(seed).integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)
    )


# --- webuiapi 0.9.17, driven for real ---------------------------------------------------------------


def test_webuiapi_txt2img_styles_and_tiling_change_the_picture(live: Live) -> None:
    api = live.api
    plain = api.txt2img(prompt="a cat", seed=5, width=64, height=64, steps=2)
    styled = api.txt2img(prompt="a cat", styles=["Cinematic"], seed=5, width=64, height=64, steps=2)
    tiled = api.txt2img(prompt="a cat", tiling=True, seed=5, width=64, height=64, steps=2)
    assert set(plain.info) >= A1111_INFO_KEYS
    assert styled.info["all_prompts"] == ["cinematic still of a cat, film grain"]
    assert styled.info["styles"] == ["Cinematic"]
    assert _differ(plain.image, styled.image) > 1.0 and _differ(plain.image, tiled.image) > 1.0
    assert "Tiling: True" in tiled.info["infotexts"][0]
    assert [s["name"] for s in api.get_prompt_styles()] == ["Cinematic", "Red"]


def test_webuiapi_img2img_resize_modes_and_canvas_sized_masks(live: Live) -> None:
    api = live.api
    wide = _noise_picture((128, 64), seed=2)
    just = api.img2img(images=[wide], resize_mode=0, prompt="x", seed=1, width=64, height=64, steps=2)
    crop = api.img2img(images=[wide], resize_mode=1, prompt="x", seed=1, width=64, height=64, steps=2)
    fill = api.img2img(images=[wide], resize_mode=2, prompt="x", seed=1, width=64, height=64, steps=2)
    assert _differ(just.image, crop.image) > 1.0 and _differ(crop.image, fill.image) > 1.0
    layer = _noise_picture((64, 64), seed=3)
    canvas_mask = Image.new("L", (128, 128), 0)
    canvas_mask.paste(255, (64, 0, 128, 128))  # the right half, drawn on a canvas twice the layer's size
    painted = api.img2img(
        images=[layer],
        mask_image=canvas_mask,
        inpainting_fill=1,
        inpaint_full_res=False,
        mask_blur=0,
        denoising_strength=1.0,
        prompt="x",
        seed=1,
        width=64,
        height=64,
        steps=2,
    )
    out, source = _array(painted.image), _array(layer)
    assert np.abs(out[:, :24] - source[:, :24]).mean() < 2.0
    assert np.abs(out[:, 40:] - source[:, 40:]).mean() > 10.0


def test_webuiapi_model_vae_and_clip_skip_switching(live: Live) -> None:
    api = live.api
    base = api.txt2img(prompt="a house", seed=4, width=64, height=64, steps=2)
    try:
        api.set_options({"sd_vae": "tiny-vae.safetensors"})
        vae = api.txt2img(prompt="a house", seed=4, width=64, height=64, steps=2)
        api.set_options({"sd_vae": "Automatic", "CLIP_stop_at_last_layers": 2})
        skip = api.txt2img(prompt="a house", seed=4, width=64, height=64, steps=2)
        assert api.get_options()["CLIP_stop_at_last_layers"] == 2
        api.set_options({"CLIP_stop_at_last_layers": 1})
        api.util_set_model("tiny-b")
        other = api.txt2img(prompt="a house", seed=4, width=64, height=64, steps=2)
    finally:
        api.set_options(
            {"sd_vae": "Automatic", "CLIP_stop_at_last_layers": 1, "sd_model_checkpoint": "tiny.safetensors"}
        )
    assert vae.info["sd_vae_name"] == "tiny-vae" and "VAE: tiny-vae" in vae.info["infotexts"][0]
    assert skip.info["clip_skip"] == 2 and "Clip skip: 2" in skip.info["infotexts"][0]
    assert other.info["sd_model_name"] == "tiny-b"
    for changed in (vae, skip, other):
        assert _differ(base.image, changed.image) > 1.0


def test_webuiapi_listings(live: Live) -> None:
    api = live.api
    samplers = api.get_samplers()
    assert all(set(s) == SAMPLER_KEYS for s in samplers) and len(samplers) == 20
    assert {"DPM++ 2M SDE Heun", "DPM adaptive", "Restart", "DDIM CFG++"} <= set(api.util_get_sampler_names())
    assert {"align_your_steps", "kl_optimal", "beta", "polyexponential"} <= set(
        api.util_get_scheduler_names()
    )
    assert api.get_hypernetworks() == [] and api.get_loras() == []
    assert api.get_embeddings() == {"loaded": {}, "skipped": {}}
    memory = api.get_memory()
    assert memory["ram"]["total"] > 0 and ("error" in memory["cuda"] or "system" in memory["cuda"])
    assert api.get_cmd_flags()["api"] is True
    assert "Latent" in {m["name"] for m in api.get_latent_upscale_modes()}
    assert {v["model_name"] for v in api.get_sd_vae()} == {"tiny-vae"}


@pytest.mark.parametrize("format", ["png", "jpeg", "webp"])
def test_png_info_reads_our_files(live: Live, format: str) -> None:
    from sfumato.archive.files import encode, image_infotext

    recipe = GenerationRequest(
        prompt="a lighthouse, (storm:1.2)", negative_prompt="calm", seed=12, steps=9, width=64, height=64
    )
    item = GeneratedImage(_noise_picture((64, 64)), recipe, ModelInfo(name="tiny", hash="0123456789"))
    data = encode(item, format)  # type: ignore[arg-type]
    if format == "png":  # webuiapi re-encodes a picture as PNG, its text chunks kept
        answer = live.api.png_info(Image.open(io.BytesIO(data))).json
    else:  # the file's own bytes, as the plugins send what they read from disk
        answer = live.post("/sdapi/v1/png-info", {"image": base64.b64encode(data).decode()}).json()
    assert answer["info"] == image_infotext(item)
    parameters = answer["parameters"]
    assert parameters["Prompt"] == "a lighthouse, (storm:1.2)" and parameters["Negative prompt"] == "calm"
    assert parameters["Seed"] == "12" and parameters["Steps"] == "9"


# --- Auto-Photoshop-StableDiffusion plugin ---------------------------------------------------------


def _photoshop_payload(**fields: Any) -> dict[str, Any]:
    """The plugin's generation payload: A1111's keys and its own (selection, document, mode…)."""
    return {
        "prompt": "a lighthouse",
        "negative_prompt": "",
        "seed": 8,
        "batch_size": 1,
        "n_iter": 1,
        "steps": 2,
        "cfg_scale": 7,
        "width": 64,
        "height": 64,
        "sampler_index": "Euler a",
        "restore_faces": False,
        "denoising_strength": 0.7,
        "mask_blur": 4,
        "firstphase_width": 0,
        "firstphase_height": 0,
        "alwayson_scripts": {},
        # the plugin's own keys, which A1111 ignores
        "mode": "txt2img",
        "selection_info": {"left": 0, "top": 0, "width": 64, "height": 64},
        "uniqueDocumentId": "doc-1",
        "use_sharp_mask": False,
        "mask_expansion": 0,
        **fields,
    }


def test_photoshop_start_up_calls(live: Live) -> None:
    assert live.get("/sdapi/v1/options")["sd_model_checkpoint"].startswith("tiny")
    assert {m["title"] for m in live.get("/sdapi/v1/sd-models")} >= {"tiny.safetensors [0123456789]"}
    for route in ("samplers", "prompt-styles", "hypernetworks", "loras", "upscalers", "sd-vae", "schedulers"):
        assert isinstance(live.get(f"/sdapi/v1/{route}"), list), route
    assert set(live.get("/sdapi/v1/embeddings")) == {"loaded", "skipped"}
    assert (
        live.post("/sdapi/v1/options", {"sd_model_checkpoint": "tiny.safetensors [0123456789]"}).json() == {}
    )


def test_photoshop_txt2img_with_hires_and_its_own_keys(live: Live) -> None:
    body = live.render(
        "/sdapi/v1/txt2img",
        _photoshop_payload(enable_hr=True, hr_scale=1.5, hr_upscaler="Latent", hr_second_pass_steps=1),
    )
    assert _array(body["images"][0]).shape == (96, 96, 3)
    assert "uniqueDocumentId" not in body["parameters"]  # echoed as A1111 does: its own fields only


def test_photoshop_outpaint_with_transparency(live: Live) -> None:
    # The selection grew past the picture: the exported layer is transparent where there is nothing yet,
    # and the mask is white there.
    layer = Image.new("RGBA", (64, 64), (0, 0, 0, 0))
    layer.paste(_noise_picture((40, 64), seed=5), (0, 0))
    mask = Image.new("L", (64, 64), 0)
    mask.paste(255, (40, 0, 64, 64))
    payload = _photoshop_payload(
        mode="outpaint",
        init_images=[b64(layer)],
        mask=b64(mask),
        inpainting_fill=1,
        inpaint_full_res=False,
        inpaint_full_res_padding=32,
        inpainting_mask_invert=0,
        denoising_strength=1.0,
    )
    body = live.render("/sdapi/v1/img2img", payload)
    start = _array(live.last.init_image or "")
    assert start[:, 44:].min() > 250  # the empty area starts from white, as A1111, not black
    out = _array(body["images"][0])
    assert out.shape == (64, 64, 3)
    assert np.abs(out[:, :32] - _array(layer.convert("RGB"))[:, :32]).mean() < 2.0  # the picture is kept


def test_photoshop_progress_with_preview_then_interrupt(live: Live) -> None:
    live.run.step_delay = 0.25
    outcome: dict[str, Any] = {}
    worker = threading.Thread(
        target=lambda: outcome.setdefault(
            "answer", live.post("/sdapi/v1/txt2img", _photoshop_payload(steps=40))
        )
    )
    worker.start()
    try:
        seen = None
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and seen is None:
            progress = live.get("/sdapi/v1/progress", skip_current_image="false")
            if progress["state"]["sampling_step"] >= 2 and progress["current_image"]:
                seen = progress
            time.sleep(0.05)
        assert seen is not None and 0 < seen["progress"] < 1
        assert _array(seen["current_image"]).shape == (64, 64, 3)
        assert live.post("/sdapi/v1/interrupt", {}).json() == {}
        worker.join(60)
    finally:
        live.run.step_delay = 0.0
    assert outcome["answer"].status_code == 200 and outcome["answer"].json()["images"] == []


# --- AI-Render (Blender) ---------------------------------------------------------------------------

# The sampler list AI-Render offers for Automatic1111 (its 30 names, old "… Karras" ones included).
AI_RENDER_SAMPLERS = (
    "Euler", "Euler a", "LMS", "Heun", "DPM2", "DPM2 a", "DPM++ 2S a", "DPM++ 2M", "DPM++ SDE",
    "DPM++ 2M SDE", "DPM++ 2M SDE Heun", "DPM++ 2M SDE Heun Karras", "DPM++ 2M SDE Heun Exponential",
    "DPM++ 3M SDE", "DPM++ 3M SDE Karras", "DPM++ 3M SDE Exponential", "DPM fast", "DPM adaptive",
    "LMS Karras", "DPM2 Karras", "DPM2 a Karras", "DPM++ 2S a Karras", "DPM++ 2M Karras", "DPM++ SDE Karras",
    "DPM++ 2M SDE Karras", "DPM++ 2M SDE Exponential", "Restart", "DDIM", "PLMS", "UniPC",
)  # fmt: skip


def _ai_render_payload(sampler: str, similarity: float = 0.4, **fields: Any) -> dict[str, Any]:
    """AI-Render's img2img: its generic params mapped to A1111's (denoising = 1 - image similarity)."""
    return {
        "prompt": "a castle, by a lake",
        "negative_prompt": "ugly",
        "width": 64,
        "height": 64,
        "seed": 42,
        "cfg_scale": 7.0,
        "steps": 2,
        "sampler_index": sampler,
        "denoising_strength": round(1 - similarity, 4),
        "batch_size": 1,
        "n_iter": 1,
        **fields,
    }


def test_ai_render_img2img_of_a_blender_render(live: Live) -> None:
    render = "data:image/png;base64," + b64(_noise_picture((64, 64), seed=9))  # AI-Render sends a data: URI
    close = live.render(
        "/sdapi/v1/img2img", _ai_render_payload("DPM++ 2M Karras", 0.8, init_images=[render], steps=10)
    )
    far = live.render(
        "/sdapi/v1/img2img", _ai_render_payload("DPM++ 2M Karras", 0.2, init_images=[render], steps=10)
    )
    assert (live.last.sampler, live.last.schedule_type) == ("DPM++ 2M", "Karras")
    assert live.last.denoising_strength == 0.8  # image similarity 0.2
    assert close["parameters"]["denoising_strength"] == 0.2
    assert _differ(close["images"][0], far["images"][0]) > 1.0


@pytest.mark.parametrize("sampler", AI_RENDER_SAMPLERS)
def test_ai_render_every_sampler_it_offers(live: Live, sampler: str) -> None:
    body = live.render("/sdapi/v1/txt2img", _ai_render_payload(sampler))
    picture = _array(body["images"][0])
    assert np.isfinite(picture).all() and picture.std() > 1


# --- stable-gimpfusion ----------------------------------------------------------------------------

GIMPFUSION_SAMPLERS = (
    "Euler a", "Euler", "LMS", "Heun", "DPM2", "DPM2 a", "DPM++ 2S a", "DPM++ 2M", "DPM++ SDE", "DPM fast",
    "DPM adaptive", "LMS Karras", "DPM2 Karras", "DPM2 a Karras", "DPM++ 2S a Karras", "DPM++ 2M Karras",
    "DPM++ SDE Karras", "DDIM",
)  # fmt: skip


def _gimp_payload(**fields: Any) -> dict[str, Any]:
    return {
        "prompt": "a fox in the snow",
        "negative_prompt": "",
        "cfg_scale": 7.5,
        "denoising_strength": 0.6,
        "steps": 2,
        "width": 64,
        "height": 64,
        "sampler_index": "Euler a",
        "batch_size": 1,
        "seed": 17,
        "restore_faces": False,
        "subseed": -1,
        "subseed_strength": 0,
        **fields,
    }


def test_gimpfusion_samplers_are_all_accepted(live: Live) -> None:
    for sampler in GIMPFUSION_SAMPLERS:
        answer = live.post("/sdapi/v1/txt2img", _gimp_payload(sampler_index=sampler, steps=1))
        assert answer.status_code == 200, (sampler, answer.text)


def test_gimpfusion_inpaints_a_layer_smaller_than_its_canvas(live: Live) -> None:
    # The active layer is 64x96, the selection mask is the canvas's size (128x128).
    layer = _noise_picture((64, 96), seed=6)
    mask = Image.new("L", (128, 128), 0)
    mask.paste(255, (0, 0, 64, 128))  # the canvas's left half: over the layer, its left half
    payload = _gimp_payload(
        init_images=[b64(layer)], mask=b64(mask), inpainting_fill=1, inpaint_full_res=False,
        inpaint_full_res_padding=0, inpainting_mask_invert=0, mask_blur=0, resize_mode=0,
        denoising_strength=1.0, width=64, height=96,
    )  # fmt: skip
    body = live.render("/sdapi/v1/img2img", payload)
    out, source = _array(body["images"][0]), _array(layer)
    assert out.shape == (96, 64, 3)
    assert np.abs(out[:, 40:] - source[:, 40:]).mean() < 2.0
    assert np.abs(out[:, :24] - source[:, :24]).mean() > 10.0
    inverted = live.render("/sdapi/v1/img2img", {**payload, "inpainting_mask_invert": 1})
    flipped = _array(inverted["images"][0])
    assert np.abs(flipped[:, :24] - source[:, :24]).mean() < 2.0


def test_refusals_come_in_a1111s_error_shape(live: Live) -> None:
    answer = live.post("/sdapi/v1/txt2img", _gimp_payload(refiner_checkpoint="refiner.safetensors"))
    assert answer.status_code == 422 and set(answer.json()) >= A1111_ERROR_KEYS
    no_tagger = {"image": b64(_noise_picture((64, 64))), "model": "deepdanbooru"}
    answer = live.post("/sdapi/v1/interrogate", no_tagger)
    assert answer.status_code == 422 and set(answer.json()) >= A1111_ERROR_KEYS
    assert "No tagger is configured" in answer.json()["detail"]
