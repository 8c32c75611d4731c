"""`generate --from` a ComfyUI picture with a 64-bit seed, end to end on a tiny model."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image
from PIL.PngImagePlugin import PngInfo
from typer.testing import CliRunner

from sfumato.cli.main import app

SEED = 2**63 + 11
COMFY_PROMPT = {
    "3": {
        "class_type": "KSampler",
        "inputs": {
            "seed": SEED,
            "steps": 3,
            "cfg": 7.0,
            "sampler_name": "euler",
            "scheduler": "karras",
            "denoise": 1.0,
            "model": ["4", 0],
            "positive": ["6", 0],
            "negative": ["7", 0],
            "latent_image": ["5", 0],
        },
    },
    "4": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "tiny.safetensors"}},
    "5": {"class_type": "EmptyLatentImage", "inputs": {"width": 64, "height": 64, "batch_size": 1}},
    "6": {"class_type": "CLIPTextEncode", "inputs": {"text": "a red circle", "clip": ["4", 1]}},
    "7": {"class_type": "CLIPTextEncode", "inputs": {"text": "", "clip": ["4", 1]}},
}


def _pixels(path: str) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"))


def test_generate_from_a_comfyui_picture_with_a_64_bit_seed(tiny_model_folder: Path, tmp_path: Path) -> None:
    info = PngInfo()
    info.add_text("prompt", json.dumps(COMFY_PROMPT))
    source = tmp_path / "ComfyUI_00001_.png"
    Image.new("RGB", (64, 64)).save(source, pnginfo=info)
    runner = CliRunner()
    out = ["--model", str(tiny_model_folder), "-o", str(tmp_path / "out"), "--json"]

    recalled = runner.invoke(app, ["generate", "--from", str(source), *out])
    assert recalled.exit_code == 0, recalled.stderr
    picture = json.loads(recalled.stdout)["images"][0]
    assert (picture["seed"], picture["prompt"], picture["width"]) == (SEED, "a red circle", 64)
    # The recipe in the new picture keeps the 64-bit seed; the archive lists it.
    again = runner.invoke(app, ["info", picture["file"], "--json"])
    assert json.loads(again.stdout)["request"]["seed"] == SEED

    # Noise as ComfyUI draws it: the CPU generator keeps the seed's low 32 bits.
    low = runner.invoke(
        app,
        [
            "generate",
            "a red circle",
            "--seed",
            str(SEED % 2**32),
            "--steps",
            "3",
            "--sampler",
            "Euler",
            "--cfg",
            "7",
            "--schedule",
            "Karras",
            "-W",
            "64",
            "-H",
            "64",
            *out,
        ],
    )
    assert low.exit_code == 0, low.stderr
    assert np.array_equal(_pixels(picture["file"]), _pixels(json.loads(low.stdout)["images"][0]["file"]))
