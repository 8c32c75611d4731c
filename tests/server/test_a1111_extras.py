"""A1111's Extras (/extra-single-image, /extra-batch-images) and upscaler listings, driven by `webuiapi`."""

# webuiapi is untyped: its parameter types are inferred from its defaults (int for a visibility).
# pyright: reportAttributeAccessIssue=false, reportArgumentType=false

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import numpy as np
import pytest
import requests
import webuiapi
from PIL import Image
from server_helpers import TINY_CATALOG, TinyRun, live_server

from sfumato.core.postprocess import UpscaleStep
from sfumato.core.settings import Settings
from sfumato.jobs.extras import postprocess_picture
from sfumato.server import create_app
from sfumato.server.catalog import ModelEntry, StaticCatalog
from upscaler_files import compact_state, write

pytestmark = pytest.mark.timeout(300)


@dataclasses.dataclass
class Served:
    api: webuiapi.WebUIApi
    url: str
    settings: Settings


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    home = tmp_path_factory.mktemp("extras")
    write(home / "webui" / "models" / "RealESRGAN" / "2x-tiny.safetensors", compact_state(seed=0))
    write(home / "webui" / "models" / "ESRGAN" / "2x-other.safetensors", compact_state(seed=1))
    settings = Settings(data_dir=home / "data", model_folders=[home / "webui"], max_canvas_side=1024)
    upscalers = [
        ModelEntry(
            name=name, filename=f"{name}.safetensors", kind="upscaler", architecture="RealESRGAN Compact"
        )
        for name in ("2x-tiny", "2x-other")
    ]
    catalog = StaticCatalog([*TINY_CATALOG.entries, *upscalers])
    app = create_app(settings, run=TinyRun(settings), catalog=catalog, poll_seconds=0.05)
    with live_server(app) as url:
        yield Served(webuiapi.WebUIApi(baseurl=url + "/sdapi/v1"), url + "/sdapi/v1", settings)


@pytest.fixture
def picture() -> Image.Image:
    rng = np.random.default_rng(0)
    return Image.fromarray(rng.integers(0, 255, (30, 40, 3), dtype=np.uint8))


def _array(image: Image.Image) -> np.ndarray:
    return np.asarray(image.convert("RGB"), dtype=np.int16)


def test_extra_single_image_upscales_with_a_model(served: Served, picture: Image.Image) -> None:
    result = served.api.extra_single_image(picture, upscaler_1="2x-tiny", upscaling_resize=2)
    assert result.image.size == (80, 60)
    expected = postprocess_picture(served.settings, picture, [UpscaleStep(upscaler="2x-tiny", scale=2)])
    assert np.array_equal(_array(result.image), _array(expected))
    lanczos = served.api.extra_single_image(picture, upscaler_1=webuiapi.Upscaler.Lanczos, upscaling_resize=2)
    assert not np.array_equal(_array(lanczos.image), _array(result.image))


def test_extra_single_image_to_a_size_with_a_blended_second_upscaler(
    served: Served, picture: Image.Image
) -> None:
    sized = served.api.extra_single_image(
        picture, resize_mode=1, upscaling_resize_w=100, upscaling_resize_h=60, upscaler_1="2x-tiny"
    )
    assert sized.image.size == (100, 60)  # covered, then cropped in the middle, as A1111
    one = served.api.extra_single_image(picture, upscaler_1="2x-tiny", upscaling_resize=2)
    two = served.api.extra_single_image(picture, upscaler_1="2x-other", upscaling_resize=2)
    blend = served.api.extra_single_image(
        picture,
        upscaler_1="2x-tiny",
        upscaler_2="2x-other",
        extras_upscaler_2_visibility=0.5,
        upscaling_resize=2,
    )
    middle = (_array(one.image) + _array(two.image)) / 2
    assert np.abs(_array(blend.image) - middle).max() <= 1
    unchanged = served.api.extra_single_image(picture)  # upscaler_1 "None": the picture as it was
    assert np.array_equal(_array(unchanged.image), _array(picture))


def test_extra_batch_images(served: Served, picture: Image.Image) -> None:
    other = picture.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    result = served.api.extra_batch_images([picture, other], upscaler_1="2x-tiny", upscaling_resize=3)
    assert [image.size for image in result.images] == [(120, 90), (120, 90)]
    assert not np.array_equal(_array(result.images[0]), _array(result.images[1]))


def test_upscaler_listings_have_a1111_shape(served: Served) -> None:
    listed = requests.get(served.url + "/upscalers", timeout=30).json()
    assert [item["name"] for item in listed[:3]] == ["None", "Lanczos", "Nearest"]
    assert set(listed[0]) == {"name", "model_name", "model_path", "model_url", "scale"}
    tiny = next(item for item in listed if item["name"] == "2x-tiny")
    assert tiny == {
        "name": "2x-tiny",
        "model_name": "RealESRGAN Compact",
        "model_path": "2x-tiny.safetensors",
        "model_url": None,
        "scale": 2,
    }
    realesrgan = requests.get(served.url + "/realesrgan-models", timeout=30).json()
    assert {"name": "2x-tiny", "path": "2x-tiny.safetensors", "scale": 2} in realesrgan
    assert {"name": "Latent"} in requests.get(served.url + "/latent-upscale-modes", timeout=30).json()


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"upscaler_1": "R-ESRGAN 4x+"}, "Unknown upscaler 'R-ESRGAN 4x+'"),
        ({"upscaler_1": "2x-tiny", "upscaling_resize": 64}, "upscaling_resize 64 is out of range"),
        (
            {"upscaler_1": "2x-tiny", "upscaling_resize": 8},
            "would be 1600x1200 pixels; the maximum is 1024 a side",
        ),
    ],
)
def test_extras_refusals_are_422(
    served: Served, picture: Image.Image, fields: dict[str, object], message: str
) -> None:
    payload = {"image": webuiapi.b64_img(picture), **fields}
    if fields.get("upscaling_resize") == 8:
        payload["image"] = webuiapi.b64_img(picture.resize((200, 150)))
    answer = requests.post(served.url + "/extra-single-image", json=payload, timeout=60)
    assert answer.status_code == 422 and message in answer.json()["detail"]


def test_sfumato_api_postprocess_and_upscaler_models(served: Served, picture: Image.Image) -> None:
    api = served.url.removesuffix("/sdapi/v1") + "/api"
    body = {
        "image": webuiapi.b64_img(picture),
        "steps": [{"kind": "upscale", "upscaler": "2x-tiny", "scale": 2}],
    }
    answer = requests.post(api + "/postprocess", json=body, timeout=60)
    assert answer.status_code == 200, answer.text
    result = answer.json()
    assert (result["width"], result["height"]) == (80, 60)
    expected = postprocess_picture(served.settings, picture, [UpscaleStep(upscaler="2x-tiny", scale=2)])
    import base64
    import io

    got = Image.open(io.BytesIO(base64.b64decode(result["image"])))
    assert np.array_equal(_array(got), _array(expected))
    models = requests.get(api + "/models", params={"kind": "upscaler"}, timeout=30).json()
    assert {(m["name"], m["architecture"]) for m in models} >= {("2x-tiny", "RealESRGAN Compact")}
    faces = {**body, "steps": [{"kind": "restore_faces"}]}
    refused = requests.post(api + "/postprocess", json=faces, timeout=60)
    from sfumato.postprocess.steps import step_functions

    if "restore_faces" not in step_functions():
        assert refused.status_code == 422 and "'restore_faces' is not available" in refused.json()["detail"]
    unknown = {**body, "steps": [{"kind": "upscale", "upscaler": "../../etc/passwd"}]}
    assert requests.post(api + "/postprocess", json=unknown, timeout=60).status_code == 422
