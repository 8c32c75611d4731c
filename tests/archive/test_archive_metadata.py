"""Pictures as other tools write them (the chunks of reference/anchors-reliability-ux.md §3.1-3.3)."""

from __future__ import annotations

import json
import struct
import zlib
from pathlib import Path
from typing import Any

import pytest
from archive_helpers import MakeItem, make_image
from PIL import ExifTags, Image
from PIL.PngImagePlugin import PngInfo
from sd_parsers import ParserManager

from sfumato.archive.files import save_image
from sfumato.archive.metadata import NoRecipeInImage, read_metadata, request_from_image
from sfumato.core.errors import ImageReadError

A1111_TEXT = (
    "masterpiece, a castle on a hill\nNegative prompt: lowres, (worst quality:1.4)\n"
    "Steps: 28, Sampler: DPM++ 2M Karras, CFG scale: 7.5, Seed: 3795040245, Size: 512x768, "
    'Model hash: 7f96a1a9ca, Model: anything-v5, Clip skip: 2, Lora hashes: "add_detail: 7c6bad76eb54", '
    "Version: v1.6.0"
)

# ComfyUI's default graph, with a LoRA loader between checkpoint and sampler (API form).
COMFY_PROMPT: dict[str, Any] = {
    "3": {
        "class_type": "KSampler",
        "inputs": {
            "seed": 156680208700286,
            "steps": 20,
            "cfg": 8.0,
            "sampler_name": "dpmpp_2m",
            "scheduler": "karras",
            "denoise": 1.0,
            "model": ["10", 0],
            "positive": ["6", 0],
            "negative": ["7", 0],
            "latent_image": ["5", 0],
        },
    },
    "4": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "v1-5-pruned-emaonly.safetensors"}},
    "5": {"class_type": "EmptyLatentImage", "inputs": {"width": 512, "height": 512, "batch_size": 1}},
    "6": {
        "class_type": "CLIPTextEncode",
        "inputs": {"text": "beautiful scenery, purple galaxy bottle", "clip": ["10", 1]},
    },
    "7": {"class_type": "CLIPTextEncode", "inputs": {"text": "text, watermark", "clip": ["10", 1]}},
    "8": {"class_type": "VAEDecode", "inputs": {"samples": ["3", 0], "vae": ["4", 2]}},
    "9": {"class_type": "SaveImage", "inputs": {"filename_prefix": "ComfyUI", "images": ["8", 0]}},
    "10": {
        "class_type": "LoraLoader",
        "inputs": {
            "lora_name": "detail.safetensors",
            "strength_model": 1,
            "strength_clip": 1,
            "model": ["4", 0],
            "clip": ["4", 1],
        },
    },
}

# The same graph as the editor saves it (`workflow`): nodes with widget values, links by id.
COMFY_WORKFLOW: dict[str, Any] = {
    "last_node_id": 9,
    "last_link_id": 9,
    "nodes": [
        {
            "id": 3,
            "type": "KSampler",
            "inputs": [
                {"name": "model", "type": "MODEL", "link": 1},
                {"name": "positive", "type": "CONDITIONING", "link": 4},
                {"name": "negative", "type": "CONDITIONING", "link": 6},
                {"name": "latent_image", "type": "LATENT", "link": 2},
            ],
            "widgets_values": [42, "fixed", 25, 6.5, "euler_ancestral", "normal", 1],
        },
        {
            "id": 4,
            "type": "CheckpointLoaderSimple",
            "inputs": [],
            "widgets_values": ["dreamshaper_8.safetensors"],
        },
        {"id": 5, "type": "EmptyLatentImage", "inputs": [], "widgets_values": [640, 448, 1]},
        {
            "id": 6,
            "type": "CLIPTextEncode",
            "inputs": [{"name": "clip", "type": "CLIP", "link": 3}],
            "widgets_values": ["a lighthouse at dusk"],
        },
        {
            "id": 7,
            "type": "CLIPTextEncode",
            "inputs": [{"name": "clip", "type": "CLIP", "link": 5}],
            "widgets_values": ["blurry"],
        },
    ],
    "links": [
        [1, 4, 0, 3, 0, "MODEL"],
        [2, 5, 0, 3, 3, "LATENT"],
        [3, 4, 1, 6, 0, "CLIP"],
        [4, 6, 0, 3, 1, "CONDITIONING"],
        [5, 4, 1, 7, 0, "CLIP"],
        [6, 7, 0, 3, 2, "CONDITIONING"],
    ],
    "version": 0.4,
}

INVOKEAI_METADATA: dict[str, Any] = {
    "generation_mode": "txt2img",
    "positive_prompt": "a cozy cabin in the snow",
    "negative_prompt": "people",
    "width": 768,
    "height": 512,
    "seed": 2404130087,
    "rand_device": "cpu",
    "cfg_scale": 6.0,
    "cfg_rescale_multiplier": 0,
    "steps": 30,
    "scheduler": "dpmpp_2m_k",
    "model": {"key": "8a3b", "hash": "blake3:1234", "name": "Juggernaut XL", "base": "sdxl", "type": "main"},
    "app_version": "5.6.0",
}


def write_png(path: Path, chunks: dict[str, str]) -> Path:
    info = PngInfo()
    for key, value in chunks.items():
        info.add_text(key, value)
    make_image(32, 32).save(path, "PNG", pnginfo=info)
    return path


def write_a1111_exif(path: Path, text: str, format: str, little_endian: bool = False) -> Path:
    exif = Image.Exif()
    exif.get_ifd(ExifTags.IFD.Exif)[0x9286] = b"UNICODE\0" + text.encode(
        "utf_16_le" if little_endian else "utf_16_be"
    )
    make_image(32, 32).save(path, format, exif=exif)
    return path


def test_a1111_png(tmp_path: Path) -> None:
    metadata = read_metadata(write_png(tmp_path / "a.png", {"parameters": A1111_TEXT}))
    assert metadata.source == "a1111"
    assert metadata.prompt == "masterpiece, a castle on a hill"
    assert metadata.negative_prompt == "lowres, (worst quality:1.4)"
    assert (metadata.seed, metadata.steps, metadata.cfg_scale) == (3795040245, 28, 7.5)
    assert (metadata.sampler, metadata.model, metadata.model_hash) == (
        "DPM++ 2M Karras",
        "anything-v5",
        "7f96a1a9ca",
    )
    assert metadata.params["Lora hashes"] == "add_detail: 7c6bad76eb54"
    request = request_from_image(tmp_path / "a.png")
    assert (request.sampler, request.schedule_type, request.clip_skip) == ("DPM++ 2M", "Karras", 2)
    assert (request.width, request.height, request.seed) == (512, 768, 3795040245)


@pytest.mark.parametrize(("format", "suffix"), [("JPEG", ".jpg"), ("WEBP", ".webp")])
@pytest.mark.parametrize("little_endian", [False, True])
def test_a1111_jpeg_and_webp_user_comment(
    tmp_path: Path, format: str, suffix: str, little_endian: bool
) -> None:
    path = write_a1111_exif(tmp_path / f"a{suffix}", A1111_TEXT, format, little_endian)
    metadata = read_metadata(path)
    assert metadata.source == "a1111"
    assert metadata.parameters == A1111_TEXT
    assert request_from_image(path).prompt == "masterpiece, a castle on a hill"


def test_comfyui_prompt_graph(tmp_path: Path) -> None:
    path = write_png(
        tmp_path / "c.png", {"prompt": json.dumps(COMFY_PROMPT), "workflow": json.dumps(COMFY_WORKFLOW)}
    )
    metadata = read_metadata(path)
    assert metadata.source == "comfyui"
    # The LoRA loader between checkpoint and sampler becomes A1111's prompt tag.
    assert metadata.prompt == "beautiful scenery, purple galaxy bottle <lora:detail:1>"
    assert metadata.negative_prompt == "text, watermark"
    assert (metadata.seed, metadata.steps, metadata.cfg_scale, metadata.sampler) == (
        156680208700286,
        20,
        8.0,
        "dpmpp_2m",
    )
    assert metadata.model == "v1-5-pruned-emaonly"
    assert "Steps: 20, Sampler: DPM++ 2M, Schedule type: Karras, CFG scale: 8" in metadata.parameters
    # ComfyUI seeds go past A1111's 32 bits: recalled as they are.
    request = request_from_image(path)
    assert (request.seed, request.sampler, request.schedule_type, request.width, request.height) == (
        156680208700286,
        "DPM++ 2M",
        "Karras",
        512,
        512,
    )
    # The sample is what ComfyUI writes: an independent parser reads the same.
    info = ParserManager().parse(path)
    assert info is not None and info.generator.name == "COMFYUI"
    assert {p.value for p in info.prompts} == {"beautiful scenery, purple galaxy bottle"}


def test_comfyui_workflow_only(tmp_path: Path) -> None:
    path = write_png(tmp_path / "w.png", {"workflow": json.dumps(COMFY_WORKFLOW)})
    metadata = read_metadata(path)
    assert metadata.source == "comfyui"
    assert (metadata.prompt, metadata.negative_prompt) == ("a lighthouse at dusk", "blurry")
    request = request_from_image(path)
    assert (request.seed, request.steps, request.cfg_scale, request.sampler) == (42, 25, 6.5, "Euler a")
    assert (request.width, request.height, request.model) == (640, 448, "dreamshaper_8")


def test_invokeai(tmp_path: Path) -> None:
    path = write_png(tmp_path / "i.png", {"invokeai_metadata": json.dumps(INVOKEAI_METADATA)})
    metadata = read_metadata(path)
    assert metadata.source == "invokeai"
    assert (metadata.prompt, metadata.negative_prompt) == ("a cozy cabin in the snow", "people")
    assert (metadata.seed, metadata.steps, metadata.cfg_scale, metadata.model) == (
        2404130087,
        30,
        6.0,
        "Juggernaut XL",
    )
    request = request_from_image(path)
    assert (request.sampler, request.schedule_type, request.width, request.height) == (
        "DPM++ 2M",
        "Karras",
        768,
        512,
    )
    info = ParserManager().parse(path)
    assert info is not None and info.generator.name == "INVOKEAI"
    assert [p.value for p in info.prompts] == ["a cozy cabin in the snow"]


def test_our_json_wins_over_the_text(tmp_path: Path, make_item: MakeItem) -> None:
    item = make_item(init_image=None, variation_seed=9, variation_strength=0.0, denoising_strength=0.3)
    path = save_image(item, tmp_path)
    # Fields the A1111 text leaves out (variation seed at strength 0, denoising for txt2img) come back.
    assert request_from_image(path) == item.recipe


def test_broken_json_falls_back_to_the_text(tmp_path: Path) -> None:
    path = write_png(
        tmp_path / "b.png", {"parameters": A1111_TEXT, "sfumato": '{"request": {"steps": "many"'}
    )
    assert request_from_image(path).steps == 28


def test_overrides_apply_on_top(tmp_path: Path, make_item: MakeItem) -> None:
    path = save_image(make_item(seed=5), tmp_path)
    request = request_from_image(path, {"seed": 6, "steps": 9})
    assert (request.seed, request.steps, request.prompt) == (6, 9, "a red circle")


def test_picture_without_recipe(tmp_path: Path) -> None:
    path = tmp_path / "plain.png"
    make_image().save(path)
    assert read_metadata(path).source is None
    with pytest.raises(NoRecipeInImage, match=r"plain\.png holds no generation settings"):
        request_from_image(path)


def test_not_a_picture(tmp_path: Path) -> None:
    path = tmp_path / "notes.png"
    path.write_text("hello")
    with pytest.raises(ImageReadError, match=r"notes\.png could not be read"):
        read_metadata(path)
    with pytest.raises(ImageReadError, match="does not exist"):
        read_metadata(tmp_path / "missing.png")


def test_text_chunk_after_the_pixels(tmp_path: Path) -> None:
    """Some editors append text chunks after IDAT; they are still found."""
    path = tmp_path / "late.png"
    make_image(32, 32).save(path)
    data = path.read_bytes()
    body = b"tEXt" + b"parameters\0" + A1111_TEXT.encode("latin-1")
    chunk = struct.pack(">I", len(body) - 4) + body + struct.pack(">I", zlib.crc32(body))
    iend = data.rindex(b"IEND") - 4
    path.write_bytes(data[:iend] + chunk + data[iend:])
    assert read_metadata(path).seed == 3795040245
