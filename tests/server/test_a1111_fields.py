"""A1111 request fields that used to be accepted and ignored: each now changes what is rendered (or is
refused with a 422 that says why)."""

from __future__ import annotations

import base64
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from a1111_served import Served, b64, served_app
from PIL import Image

from sfumato.core.request import GenerationRequest

pytestmark = pytest.mark.timeout(300)

BASE: dict[str, Any] = {
    "prompt": "a cat",
    "seed": 3,
    "width": 64,
    "height": 64,
    "steps": 2,
    "sampler_name": "Euler",
}


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    with served_app(tmp_path_factory.mktemp("fields")) as served:
        yield served


def _last(served: Served) -> GenerationRequest:
    return served.run.requests[-1]


def _image(ref: str | None) -> np.ndarray:
    assert ref is not None and ref.startswith("data:")
    data = base64.b64decode(ref.split(",", 1)[1])
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"), dtype=np.float32)


def _differ(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a - b).mean())


def test_options_vae_and_clip_skip_apply_to_later_pictures(served: Served) -> None:
    before = served.picture("txt2img", BASE)
    try:
        assert served.post("options", {"sd_vae": "tiny-vae.safetensors"}).status_code == 200
        assert served.client.get("/sdapi/v1/options").json()["sd_vae"] == "tiny-vae.safetensors"
        with_vae = served.picture("txt2img", BASE)
        assert _last(served).vae == "tiny-vae"
        assert (
            served.post("options", {"sd_vae": "Automatic", "CLIP_stop_at_last_layers": 2}).status_code == 200
        )
        skipped = served.picture("txt2img", BASE)
        assert _last(served).vae is None and _last(served).clip_skip == 2
        # the payload's own override_settings win over the options
        own = served.picture("txt2img", {**BASE, "override_settings": {"CLIP_stop_at_last_layers": 1}})
        assert _last(served).clip_skip == 1
    finally:
        served.post("options", {"sd_vae": "Automatic", "CLIP_stop_at_last_layers": 1})
    assert _differ(before, with_vae) > 1.0
    assert _differ(before, skipped) > 1.0
    assert np.array_equal(before, own)


@pytest.mark.parametrize(
    ("options", "status", "words"),
    [
        ({"sd_vae": "nope"}, 404, "no vae named 'nope'"),
        ({"CLIP_stop_at_last_layers": 0}, 422, "1 to 12"),
        ({"img2img_background_color": "not a colour"}, 422, "#rrggbb"),
    ],
)
def test_bad_generation_options_are_refused_when_set(
    served: Served, options: dict[str, Any], status: int, words: str
) -> None:
    answer = served.post("options", options)
    assert answer.status_code == status and words in answer.json()["detail"]


def test_styles_from_styles_csv_are_listed_and_applied(served: Served) -> None:
    listed = served.client.get("/sdapi/v1/prompt-styles").json()
    assert listed[0] == {
        "name": "Cinematic",
        "prompt": "cinematic still of {prompt}, film grain",
        "negative_prompt": "cartoon",
    }
    plain = served.picture("txt2img", {**BASE, "negative_prompt": "blurry"})
    answer = served.post("txt2img", {**BASE, "negative_prompt": "blurry", "styles": ["Cinematic", "Red"]})
    assert answer.status_code == 200
    request = _last(served)
    assert request.prompt == "cinematic still of a cat, film grain, red"
    assert request.negative_prompt == "blurry, cartoon, blue"
    info = answer.json()["info"]
    assert "cinematic still of a cat" in info and '"styles": ["Cinematic", "Red"]' in info
    assert _differ(plain, _image("data:," + answer.json()["images"][0])) > 1.0
    unknown = served.post("txt2img", {**BASE, "styles": ["Nope"]})
    assert unknown.status_code == 422 and "no prompt style named 'Nope'" in unknown.json()["detail"]


def _bands() -> Image.Image:
    """128x64: red left quarter, green middle half, blue right quarter; brighter towards the bottom."""
    array = np.zeros((64, 128, 3), dtype=np.uint8)
    shade = np.linspace(60, 250, 64, dtype=np.float32)[:, None]
    array[:, :32, 0] = shade
    array[:, 32:96, 1] = shade
    array[:, 96:, 2] = shade
    return Image.fromarray(array)


def test_resize_modes_just_resize_crop_and_fill(served: Served) -> None:
    starts, outputs = {}, {}
    for mode in (0, 1, 2):
        payload = {**BASE, "init_images": [b64(_bands())], "resize_mode": mode, "denoising_strength": 0.5}
        outputs[mode] = served.picture("img2img", payload)
        starts[mode] = _image(_last(served).init_image)
    stretched, cropped, filled = starts[0], starts[1], starts[2]
    assert all(start.shape == (64, 64, 3) for start in starts.values())
    # just resize: all three bands, squeezed side by side
    assert stretched[:, 4, 0].mean() > 100 and stretched[:, 60, 2].mean() > 100
    # crop and resize: the middle of the picture only, so all green
    assert cropped[:, :, 1].mean() > 100 and cropped[:, :, 0].max() < 40 and cropped[:, :, 2].max() < 40
    # resize and fill: the picture in the middle 32 rows, the bands above and below its edge rows repeated
    assert np.abs(filled[0] - filled[12]).max() < 8 and np.abs(filled[52] - filled[63]).max() < 8
    assert filled[40, 30, 1] - filled[20, 30, 1] > 50  # the whole shading, squeezed in the middle
    assert stretched[12, 30, 1] - stretched[0, 30, 1] > 20  # where resizing keeps the top's shading
    for a, b in ((0, 1), (0, 2), (1, 2)):
        assert _differ(outputs[a], outputs[b]) > 1.0
    refused = served.post("img2img", {**BASE, "init_images": [b64(_bands())], "resize_mode": 4})
    assert refused.status_code == 422 and "resize_mode" in refused.json()["detail"]


def test_transparent_init_areas_lie_on_the_background_colour(served: Served) -> None:
    init = Image.new("RGBA", (64, 64), (200, 30, 30, 255))
    init.paste((0, 0, 0, 0), (0, 0, 32, 64))  # the left half transparent, as an editor's layer
    payload = {**BASE, "init_images": [b64(init)], "denoising_strength": 0.3}
    served.picture("img2img", payload)
    start = _image(_last(served).init_image)
    assert start[:, :28].min() > 250  # white by default, as A1111
    assert start[:, 36:, 0].mean() > 190
    served.picture("img2img", {**payload, "override_settings": {"img2img_background_color": "#0000ff"}})
    blue = _image(_last(served).init_image)
    assert blue[:, :28, 2].min() > 250 and blue[:, :28, :2].max() < 5


def test_a_canvas_sized_mask_is_resized_onto_the_picture(served: Served) -> None:
    init = Image.fromarray(np.random.default_rng(1).integers(0, 255, (64, 64, 3), dtype=np.uint8))
    mask = Image.new("L", (128, 128), 0)
    mask.paste(255, (0, 0, 64, 128))  # the left half, drawn on a canvas twice the picture's size
    payload = {
        **BASE,
        "init_images": [b64(init)],
        "mask": b64(mask),
        "denoising_strength": 1.0,
        "inpainting_fill": 1,
        "mask_blur": 0,
        "inpaint_full_res": False,
    }
    out = served.picture("img2img", payload)
    sent = _image(_last(served).mask)
    assert sent.shape == (64, 64, 3) and sent[:, :30].min() > 250 and sent[:, 34:].max() < 5
    source = np.asarray(init, dtype=np.float32)
    assert np.abs(out[:, 40:] - source[:, 40:]).mean() < 2.0  # kept outside the mask
    assert np.abs(out[:, :24] - source[:, :24]).mean() > 10.0


def test_mask_round_thresholds_a_soft_mask_as_a1111(served: Served) -> None:
    init = Image.new("RGB", (64, 64), (90, 90, 90))
    soft = Image.linear_gradient("L").resize((64, 64))  # 0 at the top to 255 at the bottom
    payload = {
        **BASE,
        "init_images": [b64(init)],
        "mask": b64(soft),
        "inpaint_full_res": False,
        "mask_blur": 0,
    }
    served.picture("img2img", payload)
    rounded = _image(_last(served).mask)
    assert set(np.unique(rounded[:, :, 0])) <= {0.0, 255.0}
    served.picture("img2img", {**payload, "mask_round": False})
    graded = _image(_last(served).mask)
    assert len(np.unique(graded[:, :, 0])) > 20


def test_tiling_renders_a_seamless_picture(served: Served) -> None:
    plain = served.picture("txt2img", BASE)
    answer = served.post("txt2img", {**BASE, "tiling": True})
    assert answer.status_code == 200 and _last(served).tiling is True
    assert "Tiling: True" in answer.json()["info"]
    assert _differ(plain, _image("data:," + answer.json()["images"][0])) > 1.0


def test_infotext_fills_the_fields_the_payload_leaves_out(served: Served) -> None:
    infotext = (
        "a dog on a hill\nNegative prompt: a cat\n"
        "Steps: 3, Sampler: DPM++ 2M, Schedule type: Karras, CFG scale: 4.5, Seed: 77, Size: 64x64, Clip skip: 2"
    )
    answer = served.post("txt2img", {"infotext": infotext, "steps": 2})
    assert answer.status_code == 200, answer.text
    request = _last(served)
    assert (request.prompt, request.negative_prompt, request.seed) == ("a dog on a hill", "a cat", 77)
    assert request.steps == 2  # sent in the payload: the payload wins
    assert (request.sampler, request.schedule_type, request.cfg_scale) == ("DPM++ 2M", "Karras", 4.5)
    assert (request.width, request.height, request.clip_skip) == (64, 64, 2)


@pytest.mark.parametrize(
    ("extra", "words"),
    [
        ({"refiner_checkpoint": "sdxl_refiner.safetensors", "refiner_switch_at": 0.8}, "refiner"),
        ({"init_images": ["x", "y"]}, "2 init images"),
    ],
)
def test_fields_we_cannot_honour_are_refused(served: Served, extra: dict[str, Any], words: str) -> None:
    route = "img2img" if "init_images" in extra else "txt2img"
    answer = served.post(route, {**BASE, **extra})
    assert answer.status_code == 422 and words in answer.json()["detail"]
    assert set(answer.json()) >= {"error", "detail", "body", "errors"}  # A1111's error shape


def _saved(served: Served) -> int:
    return sum(1 for path in Path(served.settings.outputs).rglob("*.png"))


def test_save_images_and_do_not_save_samples_keep_pictures_out_of_the_archive(served: Served) -> None:
    before = _saved(served)
    for payload in ({"save_images": False}, {"do_not_save_samples": True, "save_images": True}):
        answer = served.post("txt2img", {**BASE, **payload})
        assert answer.status_code == 200 and len(answer.json()["images"]) == 1
        assert _saved(served) == before
    assert served.post("txt2img", {**BASE, "save_images": True}).status_code == 200
    assert _saved(served) == before + 1
    assert served.post("txt2img", BASE).status_code == 200  # saying nothing: archived, as all of Sfumato's
    assert _saved(served) == before + 2


def test_ddim_eta_and_euler_churn_change_the_picture(served: Served) -> None:
    ddim = {**BASE, "sampler_name": "DDIM", "steps": 3}
    still = served.picture("txt2img", {**ddim, "eta": 0.0})
    assert _last(served).eta == 0.0
    noisy = served.picture("txt2img", {**ddim, "eta": 1.0})
    assert _differ(still, noisy) > 1.0
    euler = {**BASE, "steps": 3}
    plain = served.picture("txt2img", euler)
    churned = served.picture("txt2img", {**euler, "s_churn": 5.0, "s_tmax": 0, "s_noise": 1.0})
    assert _last(served).churn == 5.0 and _last(served).churn_max_sigma == 0.0
    assert _differ(plain, churned) > 1.0
    # what a deterministic sampler ignores in A1111 it ignores here too
    quiet = served.picture("txt2img", {**BASE, "sampler_name": "DPM++ 2M", "eta": 0.3, "s_churn": 2.0})
    assert _last(served).eta is None and _last(served).churn == 0.0
    assert quiet.shape == (64, 64, 3)


def test_disable_extra_networks_and_persistent_overrides(served: Served) -> None:
    answer = served.post(
        "txt2img", {**BASE, "prompt": "a cat <lora:missing:0.8>", "disable_extra_networks": True}
    )
    assert answer.status_code == 200 and _last(served).prompt == "a cat "
    try:
        kept = {**BASE, "override_settings": {"CLIP_stop_at_last_layers": 2}}
        assert (
            served.post("txt2img", {**kept, "override_settings_restore_afterwards": False}).status_code == 200
        )
        assert served.client.get("/sdapi/v1/options").json()["CLIP_stop_at_last_layers"] == 2
        served.picture("txt2img", BASE)
        assert _last(served).clip_skip == 2
    finally:
        served.post("options", {"CLIP_stop_at_last_layers": 1})


@pytest.mark.parametrize(
    ("route", "extra", "words"),
    [
        ("txt2img", {"sampler_name": "Euler a", "eta": 0.5}, "eta 0.5"),
        ("txt2img", {"sampler_name": "DPM++ 2M SDE", "s_noise": 0.9}, "s_noise 0.9"),
        ("txt2img", {"sampler_name": "Heun", "s_churn": 1.0}, "Euler sampler here"),
        ("txt2img", {"s_min_uncond": 0.5}, "s_min_uncond"),
        ("txt2img", {"seed_resize_from_w": 128, "seed_resize_from_h": 128}, "seed_resize_from"),
        ("img2img", {"initial_noise_multiplier": 0.9}, "initial_noise_multiplier"),
        ("img2img", {"latent_mask": "abc"}, "latent_mask"),
        ("img2img", {"mask_blur_x": 4, "mask_blur_y": 8}, "mask_blur_x 4 and mask_blur_y 8"),
    ],
)
def test_settings_this_engine_cannot_follow_are_refused(
    served: Served, route: str, extra: dict[str, Any], words: str
) -> None:
    init = {"init_images": [b64(Image.new("RGB", (64, 64), (50, 60, 70)))]} if route == "img2img" else {}
    answer = served.post(route, {**BASE, **init, **extra})
    assert answer.status_code == 422 and words in answer.json()["detail"], answer.text


def test_a_first_pass_picture_is_refused(served: Served) -> None:
    first = b64(Image.new("RGB", (64, 64), (10, 20, 30)))
    answer = served.post("txt2img", {**BASE, "enable_hr": True, "firstpass_image": first})
    assert answer.status_code == 422 and "firstpass_image" in answer.json()["detail"]


def test_eta_churn_and_tiling_are_in_the_infotext_and_recalled(served: Served) -> None:
    from sfumato.archive.infotext import request_from_infotext

    answer = served.post("txt2img", {**BASE, "sampler_name": "DDIM", "eta": 0.5, "tiling": True})
    infotext = json.loads(answer.json()["info"])["infotexts"][0]
    assert "Eta DDIM: 0.5" in infotext and "Tiling: True" in infotext
    recalled = request_from_infotext(infotext)
    assert (recalled.eta, recalled.tiling) == (0.5, True)
    answer = served.post("txt2img", {**BASE, "s_churn": 3.0})
    infotext = json.loads(answer.json()["info"])["infotexts"][0]
    assert "Sigma churn: 3" in infotext and request_from_infotext(infotext).churn == 3.0


@pytest.mark.parametrize(
    "line", ["Steps: inf, Seed: 1e999", "CFG scale: nan", "Size: 10x", "Size: 100000x64", "Steps: 99999"]
)
def test_an_infotext_with_bad_values_is_a_4xx_not_a_crash(served: Served, line: str) -> None:
    answer = served.post("txt2img", {"infotext": f"a cat\n{line}", "steps": 1, "width": 64, "height": 64})
    assert answer.status_code in (200, 422), answer.text
