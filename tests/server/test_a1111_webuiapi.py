"""The A1111-compatible API driven by the unmodified `webuiapi` client, against a real server."""

# webuiapi is untyped and its calls may return an asyncio Task (use_async); these never do.
# pyright: reportAttributeAccessIssue=false

from __future__ import annotations

import base64
import io
import json
import threading
import time
from collections.abc import Iterator

import numpy as np
import pytest
import webuiapi
from PIL import Image
from server_helpers import TINY_CATALOG, TinyRun, live_server

from sfumato.core.settings import Settings
from sfumato.server import create_app

pytestmark = pytest.mark.timeout(300)

# Keys A1111 documents in the `info` JSON of txt2img/img2img (processing.Processed.js()).
A1111_INFO_KEYS = {
    "prompt",
    "all_prompts",
    "negative_prompt",
    "all_negative_prompts",
    "seed",
    "all_seeds",
    "subseed",
    "all_subseeds",
    "subseed_strength",
    "width",
    "height",
    "sampler_name",
    "cfg_scale",
    "steps",
    "batch_size",
    "restore_faces",
    "face_restoration_model",
    "sd_model_name",
    "sd_model_hash",
    "sd_vae_name",
    "sd_vae_hash",
    "seed_resize_from_w",
    "seed_resize_from_h",
    "denoising_strength",
    "extra_generation_params",
    "index_of_first_image",
    "infotexts",
    "styles",
    "job_timestamp",
    "clip_skip",
    "is_using_inpainting_conditioning",
    "version",
}
PROGRESS_STATE_KEYS = {
    "skipped",
    "interrupted",
    "job",
    "job_count",
    "job_timestamp",
    "job_no",
    "sampling_step",
    "sampling_steps",
}


class Served:
    def __init__(self, api: webuiapi.WebUIApi, run: TinyRun, settings: Settings) -> None:
        self.api = api
        self.run = run
        self.settings = settings


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    home = tmp_path_factory.mktemp("a1111")
    settings = Settings(data_dir=home / "data")
    run = TinyRun(settings)
    app = create_app(settings, run=run, catalog=TINY_CATALOG, poll_seconds=0.05)
    with live_server(app) as url:
        api = webuiapi.WebUIApi(baseurl=url + "/sdapi/v1", sampler="Euler a", steps=2)
        yield Served(api, run, settings)


def _pixels(image: Image.Image) -> np.ndarray:
    return np.asarray(image.convert("RGB"), dtype=np.float32)


def test_txt2img_answers_like_a1111(served: Served) -> None:
    result = served.api.txt2img(
        prompt="a red circle",
        negative_prompt="blurry",
        seed=5,
        width=64,
        height=64,
        steps=2,
        batch_size=2,
        cfg_scale=5,
    )
    assert len(result.images) == 2
    assert all(image.size == (64, 64) for image in result.images)
    assert set(result.info) >= A1111_INFO_KEYS
    assert result.info["all_seeds"] == [5, 6] and result.info["seed"] == 5
    assert result.info["all_prompts"] == ["a red circle", "a red circle"]
    assert result.info["sd_model_name"] == "tiny" and result.info["sd_model_hash"] == "0123456789"
    assert result.info["sampler_name"] == "Euler a"
    assert len(result.info["infotexts"]) == 2
    assert (
        "Seed: 6" in result.info["infotexts"][1] and "Negative prompt: blurry" in result.info["infotexts"][0]
    )
    # every picture carries its A1111 `parameters` text, as A1111's API images do
    assert result.images[0].info["parameters"] == result.info["infotexts"][0]
    assert result.parameters["prompt"] == "a red circle" and result.parameters["steps"] == 2
    assert not np.array_equal(_pixels(result.images[0]), _pixels(result.images[1]))


def test_same_seed_same_picture_and_legacy_sampler_names(served: Served) -> None:
    one = served.api.txt2img(
        prompt="a cat", seed=11, width=64, height=64, steps=2, sampler_name="DPM++ 2M Karras"
    )
    two = served.api.txt2img(
        prompt="a cat", seed=11, width=64, height=64, steps=2, sampler_name="DPM++ 2M", scheduler="karras"
    )
    assert np.array_equal(_pixels(one.image), _pixels(two.image))
    assert one.info["sampler_name"] == "DPM++ 2M"
    assert one.info["extra_generation_params"] == {"Schedule type": "Karras"}
    assert "Schedule type: Karras" in one.info["infotexts"][0]


def test_img2img_and_inpaint_with_a_mask(served: Served) -> None:
    rng = np.random.default_rng(0)
    init = Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8))
    result = served.api.img2img(
        images=[init], prompt="a blue square", seed=3, width=64, height=64, steps=2, denoising_strength=0.6
    )
    assert result.image.size == (64, 64)
    assert result.info["denoising_strength"] == 0.6
    assert "Denoising strength: 0.6" in result.info["infotexts"][0]

    mask = Image.new("L", (64, 64), 0)
    mask.paste(255, (0, 0, 32, 64))  # repaint the left half only
    painted = served.api.img2img(
        images=[init],
        mask_image=mask,
        prompt="a blue square",
        seed=3,
        width=64,
        height=64,
        steps=2,
        denoising_strength=1.0,
        inpainting_fill=1,
        mask_blur=0,
        inpaint_full_res=False,
    )
    out, source = _pixels(painted.image), _pixels(init)
    kept = np.abs(out[:, 40:] - source[:, 40:]).mean()
    changed = np.abs(out[:, :24] - source[:, :24]).mean()
    assert kept < 2.0, kept  # outside the mask the picture is the init image
    assert changed > 10.0, changed
    assert "Mask blur: 0" in painted.info["infotexts"][0]


def test_options_switch_the_model(served: Served) -> None:
    api = served.api
    assert api.util_get_model_names() == ["tiny-b.safetensors [abcdef0123]", "tiny.safetensors [0123456789]"]
    before = api.txt2img(prompt="a house", seed=1, width=64, height=64, steps=2)
    try:
        api.util_set_model("tiny-b.safetensors [abcdef0123]")
        assert api.util_get_current_model() == "tiny-b.safetensors [abcdef0123]"
        assert api.get_options()["sd_checkpoint_hash"].startswith("abcdef0123")
        after = api.txt2img(prompt="a house", seed=1, width=64, height=64, steps=2)
    finally:
        api.set_options({"sd_model_checkpoint": "tiny.safetensors [0123456789]"})
    assert after.info["sd_model_name"] == "tiny-b" and after.info["sd_model_hash"] == "abcdef0123"
    assert "Model: tiny-b" in after.info["infotexts"][0]
    assert not np.array_equal(_pixels(before.image), _pixels(after.image))
    with pytest.raises(RuntimeError, match="404"):
        api.txt2img(
            prompt="x", width=64, height=64, steps=1, override_settings={"sd_model_checkpoint": "nope"}
        )


def test_progress_while_a_job_runs_then_interrupt(served: Served) -> None:
    api = served.api
    idle = api.get_progress()
    assert (
        idle["progress"] == 0
        and idle["state"]["job_count"] == 0
        and set(idle["state"]) >= PROGRESS_STATE_KEYS
    )
    served.run.step_delay = 0.3
    outcome: dict[str, object] = {}
    worker = threading.Thread(
        target=lambda: outcome.setdefault(
            "result", api.txt2img(prompt="slow", seed=2, width=64, height=64, steps=40)
        )
    )
    worker.start()
    try:
        seen = None
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            progress = api.get_progress()
            if progress["state"]["sampling_step"] >= 2 and progress["current_image"]:
                seen = progress
                break
            time.sleep(0.05)
        assert seen is not None, "no progress with a preview was reported"
        assert 0 < seen["progress"] < 1 and seen["eta_relative"] > 0
        assert seen["state"]["sampling_steps"] == 40 and seen["state"]["job_count"] == 1
        assert Image.open(io.BytesIO(base64.b64decode(seen["current_image"]))).size == (64, 64)
        api.interrupt()
        worker.join(60)
    finally:
        served.run.step_delay = 0.0
    assert not worker.is_alive()
    result = outcome["result"]
    assert isinstance(result, webuiapi.WebUIApiResult) and result.images == []
    assert api.get_progress()["state"]["job_count"] == 0


def test_listings_and_png_info(served: Served) -> None:
    api = served.api
    assert {"Euler a", "DPM++ 2M", "DDIM"} <= set(api.util_get_sampler_names())
    assert "karras" in api.util_get_scheduler_names()
    models = api.get_sd_models()
    assert set(models[0]) == {"title", "model_name", "hash", "sha256", "filename", "config"}
    assert api.get_sd_vae() == [] and api.get_loras() == []
    assert api.get_embeddings() == {"loaded": {}, "skipped": {}}
    assert api.refresh_checkpoints() is None  # A1111 answers null
    made = api.txt2img(prompt="a tree, (sunset:1.2)", seed=9, width=64, height=64, steps=2)
    info = api.png_info(made.image)
    assert info.info == made.info["infotexts"][0]
    assert (
        info.json["parameters"]["Seed"] == "9" and info.json["parameters"]["Prompt"] == "a tree, (sunset:1.2)"
    )
    assert json.loads(json.dumps(info.json))


def test_bad_input_is_a_4xx_with_a_message(served: Served) -> None:
    session = served.api.session
    base = served.api.baseurl
    bad_json = session.post(
        base + "/txt2img", data=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert bad_json.status_code == 422 and "JSON" in bad_json.json()["detail"]
    bad_b64 = session.post(base + "/img2img", json={"init_images": ["!!!not base64!!!"], "steps": 1})
    assert bad_b64.status_code == 422 and "base64" in bad_b64.json()["detail"]
    sampler = session.post(base + "/txt2img", json={"sampler_name": "Nope", "steps": 1})
    assert sampler.status_code == 422 and "Unknown sampler" in sampler.json()["detail"]


def test_hires_fix_and_outpainting_scripts_through_the_client(served: Served) -> None:
    result = served.api.txt2img(
        prompt="a red circle",
        seed=2,
        width=64,
        height=64,
        steps=2,
        enable_hr=True,
        hr_resize_x=96,
        hr_upscaler=webuiapi.HiResUpscaler.LatentNearest,
        denoising_strength=0.5,
    )
    assert result.image.size == (96, 96)
    assert "Hires resize: 96x0, Hires upscaler: Latent (nearest)" in result.info["infotexts"][0]
    assert served.api.txt2img(
        prompt="x", width=64, height=64, steps=2, enable_hr=True, hr_upscaler=webuiapi.HiResUpscaler.none
    ).image.size == (128, 128)
    init = Image.new("RGB", (64, 64), (200, 40, 40))
    grown = served.api.img2img(
        images=[init],
        prompt="a red square",
        steps=2,
        seed=1,
        script_name="Outpainting mk2",
        script_args=[None, 16, 8, ["left", "right"], 1.0, 0.05],
    )
    assert grown.image.size == (96, 64)
