"""PNG Info: `sfumato info FILE` and `/sdapi/v1/png-info` answer as A1111's PNG Info does."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from archive_helpers import make_image
from fastapi.testclient import TestClient
from PIL import ExifTags, Image
from PIL.PngImagePlugin import PngInfo
from typer.testing import CliRunner

from sfumato.archive.pnginfo import a1111_parameters
from sfumato.cli.main import app
from sfumato.core.settings import Settings
from sfumato.server import create_app

A1111_TEXT = (
    "a castle, (sunset:1.2)\nNegative prompt: lowres\n"
    "Steps: 28, Sampler: DPM++ 2M Karras, CFG scale: 7.5, Seed: 3795040245, Size: 512x768, "
    'Model hash: 7f96a1a9ca, Model: anything-v5, Hires resize: 1024x1536, Lora hashes: "a: 7c6bad76eb54", '
    "RNG: CPU, Version: v1.6.0"
)
COMFY_PROMPT = {
    "3": {
        "class_type": "KSampler",
        "inputs": {
            "seed": 2**63 + 11,
            "steps": 20,
            "cfg": 8.0,
            "sampler_name": "dpmpp_2m",
            "scheduler": "karras",
            "denoise": 1.0,
            "model": ["4", 0],
            "positive": ["6", 0],
            "negative": ["7", 0],
            "latent_image": ["5", 0],
        },
    },
    "4": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "v1-5-pruned-emaonly.safetensors"}},
    "5": {"class_type": "EmptyLatentImage", "inputs": {"width": 512, "height": 512, "batch_size": 1}},
    "6": {"class_type": "CLIPTextEncode", "inputs": {"text": "a galaxy in a bottle", "clip": ["4", 1]}},
    "7": {"class_type": "CLIPTextEncode", "inputs": {"text": "text", "clip": ["4", 1]}},
}


def write_png(path: Path, chunks: dict[str, str]) -> Path:
    info = PngInfo()
    for key, value in chunks.items():
        info.add_text(key, value)
    make_image(32, 32).save(path, "PNG", pnginfo=info)
    return path


def write_jpeg(path: Path, text: str) -> Path:
    exif = Image.Exif()
    exif.get_ifd(ExifTags.IFD.Exif)[0x9286] = b"UNICODE\0" + text.encode("utf_16_be")
    make_image(32, 32).save(path, "JPEG", exif=exif)
    return path


def test_parameters_are_parsed_as_a1111_parses_them() -> None:
    fields = a1111_parameters(A1111_TEXT)
    assert (fields["Prompt"], fields["Negative prompt"]) == ("a castle, (sunset:1.2)", "lowres")
    # WxH values become Key-1 / Key-2, as text; the old sampler name is split.
    assert (fields["Size-1"], fields["Size-2"], "Size" in fields) == ("512", "768", False)
    assert (fields["Hires resize-1"], fields["Hires resize-2"]) == ("1024", "1536")
    assert (fields["Sampler"], fields["Schedule type"]) == ("DPM++ 2M", "Karras")
    assert (fields["Seed"], fields["Lora hashes"], fields["RNG"]) == ("3795040245", "a: 7c6bad76eb54", "CPU")
    # A1111's defaults for what the text leaves out, with A1111's types.
    assert (fields["Clip skip"], fields["Masked area padding"], fields["Mask mode"]) == (
        "1",
        32,
        "Inpaint masked",
    )
    assert (fields["Hires sampler"], fields["VAE Decoder"]) == ("Use same sampler", "Full")
    assert a1111_parameters("a cat\nSteps: 5, Sampler: Euler, Seed: 1")["RNG"] == "GPU"  # A1111's default


@pytest.fixture
def client(tmp_path: Path) -> TestClient:
    return TestClient(
        create_app(Settings(data_dir=tmp_path / "data", model_folders=[])), base_url="http://127.0.0.1:7860"
    )


@pytest.mark.parametrize("kind", ["png", "jpeg"])
def test_server_png_info_in_a1111_shape(client: TestClient, tmp_path: Path, kind: str) -> None:
    path = (
        write_png(tmp_path / "a.png", {"parameters": A1111_TEXT})
        if kind == "png"
        else write_jpeg(tmp_path / "a.jpg", A1111_TEXT)
    )
    answer = client.post("/sdapi/v1/png-info", json={"image": base64.b64encode(path.read_bytes()).decode()})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert set(body) == {"info", "items", "parameters"}
    assert body["info"] == A1111_TEXT
    assert body["parameters"] == a1111_parameters(A1111_TEXT)
    assert "parameters" not in body["items"]
    if kind == "jpeg":
        assert body["items"]["exif comment"] == A1111_TEXT  # where A1111 reports a JPEG's text


def test_server_png_info_of_a_comfyui_picture(client: TestClient, tmp_path: Path) -> None:
    path = write_png(tmp_path / "c.png", {"prompt": json.dumps(COMFY_PROMPT)})
    body = client.post(
        "/sdapi/v1/png-info", json={"image": base64.b64encode(path.read_bytes()).decode()}
    ).json()
    assert body["parameters"]["Prompt"] == "a galaxy in a bottle"
    assert (body["parameters"]["Seed"], body["parameters"]["Sampler"]) == (str(2**63 + 11), "DPM++ 2M")
    assert (body["parameters"]["Size-1"], body["parameters"]["Size-2"]) == ("512", "512")
    assert json.loads(body["items"]["prompt"]) == COMFY_PROMPT


runner = CliRunner()


def test_info_command(tmp_path: Path) -> None:
    path = write_png(tmp_path / "c.png", {"prompt": json.dumps(COMFY_PROMPT)})
    shown = runner.invoke(app, ["info", str(path)])
    assert shown.exit_code == 0, shown.stderr
    assert shown.stdout.startswith(
        "a galaxy in a bottle\nNegative prompt: text\nSteps: 20, Sampler: DPM++ 2M"
    )
    assert "made with: ComfyUI" in shown.stdout and f"sfumato generate --from {path}" in shown.stdout

    as_json = runner.invoke(app, ["info", str(path), "--json"])
    assert as_json.exit_code == 0, as_json.stderr
    report = json.loads(as_json.stdout)
    assert report["source"] == "comfyui"
    assert report["parameters"]["Seed"] == str(2**63 + 11)
    request = report["request"]
    assert (request["seed"], request["sampler"], request["schedule_type"]) == (
        2**63 + 11,
        "DPM++ 2M",
        "Karras",
    )
    assert (request["model"], request["width"], request["height"]) == ("v1-5-pruned-emaonly", 512, 512)


def test_info_of_a_picture_without_settings_and_of_a_missing_file(tmp_path: Path) -> None:
    plain = tmp_path / "plain.png"
    make_image(32, 32).save(plain)
    shown = runner.invoke(app, ["info", str(plain), "--json"])
    assert shown.exit_code == 0
    assert json.loads(shown.stdout)["source"] is None and json.loads(shown.stdout)["request"] is None
    missing = runner.invoke(app, ["info", str(tmp_path / "nope.png")])
    assert missing.exit_code == 1 and "does not exist" in missing.stderr
    assert "Traceback" not in missing.stderr + missing.stdout


def test_info_on_hostile_pictures_is_a_report_or_one_line(tmp_path: Path) -> None:
    from hostile import one_line_error, write_pictures

    for name, path in write_pictures(tmp_path).items():
        for args in (["info", str(path)], ["info", str(path), "--json"]):
            result = runner.invoke(app, args)
            assert "Traceback" not in result.output, (name, result.output)
            assert result.exception is None or isinstance(result.exception, SystemExit), (name, result.output)
            if result.exit_code:
                assert result.exit_code == 1, (name, result.output)
                if "--json" in args:
                    assert set(json.loads(result.stdout)) == {"error", "hint"}, name
                else:
                    assert one_line_error(result.output), (name, result.output)
            elif "--json" in args:
                assert json.loads(result.stdout)["file"] == str(path)


def test_png_info_of_our_picture_says_its_rng_is_cpu(tmp_path: Path) -> None:
    from sfumato.archive.files import save_image
    from sfumato.archive.pnginfo import png_info
    from sfumato.core.request import GenerationRequest
    from sfumato.core.result import GeneratedImage, ModelInfo

    recipe = GenerationRequest(prompt="a red circle", seed=7, width=64, height=64)
    path = save_image(GeneratedImage(make_image(64, 64), recipe, ModelInfo(name="demo")), tmp_path)
    with Image.open(path) as image:
        found = png_info(image)
    assert (found.parameters["RNG"], found.parameters["Seed"], found.metadata.source) == (
        "CPU",
        "7",
        "sfumato",
    )
    assert "sfumato" in found.items  # our full recipe, as an item beside the infotext
