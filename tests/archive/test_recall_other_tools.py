"""Recall from the pictures of other tools, each sample written the way that tool writes it."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any

import pytest
from archive_helpers import make_image
from PIL import ExifTags, Image
from PIL.PngImagePlugin import PngInfo

from sfumato.archive.metadata import NoRecipeInImage, read_metadata, request_from_image
from sfumato.core.request import SCHEDULE_TYPES, GenerationRequest

BIG_SEED = 2**64 - 17  # ComfyUI draws seeds up to 2**64 - 1
# ComfyUI's "normal" schedule is A1111's "Normal" where this build has it, else the sampler's own.
NORMAL = "Normal" if "Normal" in SCHEDULE_TYPES else "Automatic"


def write_png(path: Path, chunks: dict[str, str]) -> Path:
    info = PngInfo()
    for key, value in chunks.items():
        info.add_text(key, value)
    make_image(32, 32).save(path, "PNG", pnginfo=info)
    return path


def recalled(path: Path) -> tuple[Any, ...]:
    r = request_from_image(path)
    return (
        r.prompt,
        r.negative_prompt,
        r.seed,
        r.steps,
        r.cfg_scale,
        r.sampler,
        r.schedule_type,
        r.width,
        r.height,
    )


# --- ComfyUI ---------------------------------------------------------------------------------

# SamplerCustomAdvanced (API form): noise, guider, sampler and sigmas each come from their own node.
CUSTOM_ADVANCED: dict[str, Any] = {
    "4": {
        "class_type": "CheckpointLoaderSimple",
        "inputs": {"ckpt_name": "SDXL\\sd_xl_base_1.0.safetensors"},
    },
    "11": {
        "class_type": "LoraLoader",
        "inputs": {
            "lora_name": "styles/ink.safetensors",
            "strength_model": 0.7,
            "strength_clip": 1.0,
            "model": ["4", 0],
            "clip": ["4", 1],
        },
    },
    "6": {"class_type": "CLIPTextEncode", "inputs": {"text": "an ink drawing of a heron", "clip": ["11", 1]}},
    "7": {"class_type": "CLIPTextEncode", "inputs": {"text": "photo", "clip": ["11", 1]}},
    "20": {
        "class_type": "CFGGuider",
        "inputs": {"cfg": 5.5, "model": ["11", 0], "positive": ["6", 0], "negative": ["7", 0]},
    },
    "21": {"class_type": "RandomNoise", "inputs": {"noise_seed": BIG_SEED}},
    "22": {"class_type": "KSamplerSelect", "inputs": {"sampler_name": "dpmpp_2m_sde_gpu"}},
    "23": {
        "class_type": "BasicScheduler",
        "inputs": {"scheduler": "karras", "steps": 26, "denoise": 1.0, "model": ["11", 0]},
    },
    "5": {"class_type": "EmptyLatentImage", "inputs": {"width": 832, "height": 1216, "batch_size": 1}},
    "13": {
        "class_type": "SamplerCustomAdvanced",
        "inputs": {
            "noise": ["21", 0],
            "guider": ["20", 0],
            "sampler": ["22", 0],
            "sigmas": ["23", 0],
            "latent_image": ["5", 0],
        },
    },
}
CUSTOM_ADVANCED_RECALLED = (
    "an ink drawing of a heron <lora:ink:0.7>",
    "photo",
    BIG_SEED,
    26,
    5.5,
    "DPM++ 2M SDE",
    "Karras",
    832,
    1216,
)


def _node(node_id: int, kind: str, inputs: list[tuple[str, int]], widgets: list[Any]) -> dict[str, Any]:
    return {
        "id": node_id,
        "type": kind,
        "inputs": [{"name": name, "type": "*", "link": link} for name, link in inputs],
        "outputs": [],
        "widgets_values": widgets,
    }


# The same graph as ComfyUI's editor saves it in workflow schema 1: links are objects.
_LINKS = [  # (id, from node, from slot, to node, to slot, type)
    (1, 4, 0, 11, 0, "MODEL"),
    (2, 4, 1, 11, 1, "CLIP"),
    (3, 11, 1, 6, 0, "CLIP"),
    (4, 11, 1, 7, 0, "CLIP"),
    (5, 11, 0, 20, 0, "MODEL"),
    (6, 6, 0, 20, 1, "CONDITIONING"),
    (7, 7, 0, 20, 2, "CONDITIONING"),
    (8, 11, 0, 23, 0, "MODEL"),
    (9, 21, 0, 13, 0, "NOISE"),
    (10, 20, 0, 13, 1, "GUIDER"),
    (11, 22, 0, 13, 2, "SAMPLER"),
    (12, 23, 0, 13, 3, "SIGMAS"),
    (13, 5, 0, 13, 4, "LATENT"),
]
WORKFLOW_V1: dict[str, Any] = {
    "id": "0b1c2d3e-0000-4000-8000-000000000001",
    "revision": 0,
    "version": 1,
    "state": {"lastNodeId": 23, "lastLinkId": 13, "lastGroupId": 0, "lastRerouteId": 0},
    "nodes": [
        _node(4, "CheckpointLoaderSimple", [], ["SDXL\\sd_xl_base_1.0.safetensors"]),
        _node(11, "LoraLoader", [("model", 1), ("clip", 2)], ["styles/ink.safetensors", 0.7, 1.0]),
        _node(6, "CLIPTextEncode", [("clip", 3)], ["an ink drawing of a heron"]),
        _node(7, "CLIPTextEncode", [("clip", 4)], ["photo"]),
        _node(20, "CFGGuider", [("model", 5), ("positive", 6), ("negative", 7)], [5.5]),
        _node(21, "RandomNoise", [], [BIG_SEED, "randomize"]),
        _node(22, "KSamplerSelect", [], ["dpmpp_2m_sde_gpu"]),
        _node(23, "BasicScheduler", [("model", 8)], ["karras", 26, 1.0]),
        _node(5, "EmptyLatentImage", [], [832, 1216, 1]),
        _node(
            13,
            "SamplerCustomAdvanced",
            [("noise", 9), ("guider", 10), ("sampler", 11), ("sigmas", 12), ("latent_image", 13)],
            [],
        ),
    ],
    "links": [
        {"id": i, "origin_id": a, "origin_slot": s, "target_id": b, "target_slot": t, "type": kind}
        for i, a, s, b, t, kind in _LINKS
    ],
    "groups": [],
    "config": {},
    "extra": {},
}


def test_comfyui_sampler_custom_advanced_api_form(tmp_path: Path) -> None:
    path = write_png(tmp_path / "c.png", {"prompt": json.dumps(CUSTOM_ADVANCED)})
    assert read_metadata(path).source == "comfyui"
    assert recalled(path) == CUSTOM_ADVANCED_RECALLED
    assert request_from_image(path).model == "sd_xl_base_1.0"


def test_comfyui_workflow_schema_1(tmp_path: Path) -> None:
    path = write_png(tmp_path / "w.png", {"workflow": json.dumps(WORKFLOW_V1)})
    assert read_metadata(path).source == "comfyui"
    assert recalled(path) == CUSTOM_ADVANCED_RECALLED


def test_comfyui_hires_graph_recalls_the_first_pass(tmp_path: Path) -> None:
    def sampler(seed: int, steps: int, latent: str, name: str) -> dict[str, Any]:
        inputs = {"seed": seed, "steps": steps, "cfg": 7, "sampler_name": name, "scheduler": "normal"}
        inputs |= {"denoise": 1, "model": ["4", 0], "positive": ["6", 0], "negative": ["7", 0]}
        return {"class_type": "KSampler", "inputs": {**inputs, "latent_image": [latent, 0]}}

    graph = {
        "2": sampler(9, 12, "8", "euler"),  # the second pass, with the lower id
        "3": sampler(2**40 + 3, 30, "5", "euler_ancestral"),
        "4": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "a.safetensors"}},
        "5": {"class_type": "EmptyLatentImage", "inputs": {"width": 512, "height": 768, "batch_size": 1}},
        "6": {"class_type": "CLIPTextEncode", "inputs": {"text": "a fox", "clip": ["4", 1]}},
        "7": {"class_type": "CLIPTextEncode", "inputs": {"text": "", "clip": ["4", 1]}},
        "8": {"class_type": "LatentUpscaleBy", "inputs": {"samples": ["3", 0], "scale_by": 1.5}},
    }
    path = write_png(tmp_path / "h.png", {"prompt": json.dumps(graph)})
    assert recalled(path) == ("a fox", "", 2**40 + 3, 30, 7.0, "Euler a", NORMAL, 512, 768)


# --- InvokeAI ----------------------------------------------------------------------------------

INVOKEAI_2 = {
    "model": "stable diffusion",
    "model_weights": "stable-diffusion-1.5",
    "model_hash": "cc6cb27103417325ff94f52b7a5d2dde45a7515b25c255d8e396c90014281516",
    "app_id": "invoke-ai/InvokeAI",
    "app_version": "2.3.5",
    "image": {
        "prompt": [{"prompt": "a fantasy castle [blurry, lowres]", "weight": 1.0}],
        "steps": 30,
        "cfg_scale": 7.5,
        "threshold": 0,
        "perlin": 0,
        "height": 512,
        "width": 768,
        "seed": 3259385431,
        "seamless": False,
        "hires_fix": False,
        "type": "txt2img",
        "postprocessing": None,
        "sampler": "k_euler_a",
        "variations": [],
    },
}
INVOKEAI_2_RECALLED = (
    "a fantasy castle",
    "blurry, lowres",
    3259385431,
    30,
    7.5,
    "Euler a",
    "Automatic",
    768,
    512,
)


def test_invokeai_2_sd_metadata(tmp_path: Path) -> None:
    dream = '"a fantasy castle [blurry, lowres]" -s 30 -S 3259385431 -W 768 -H 512 -C 7.5 -A k_euler_a'
    path = write_png(tmp_path / "i2.png", {"sd-metadata": json.dumps(INVOKEAI_2), "Dream": dream})
    metadata = read_metadata(path)
    assert (metadata.source, metadata.model) == ("invokeai", "stable-diffusion-1.5")
    assert recalled(path) == INVOKEAI_2_RECALLED


def test_invokeai_2_dream_alone(tmp_path: Path) -> None:
    dream = '"a fantasy castle [blurry, lowres]" -s 30 -S 3259385431 -W 768 -H 512 -C 7.5 -A k_euler_a'
    path = write_png(tmp_path / "d.png", {"Dream": dream})
    assert recalled(path) == INVOKEAI_2_RECALLED


def test_invokeai_3(tmp_path: Path) -> None:
    metadata = {
        "generation_mode": "txt2img",
        "positive_prompt": "a lighthouse",
        "negative_prompt": "fog",
        "width": 512,
        "height": 640,
        "seed": 881,
        "rand_device": "cpu",
        "cfg_scale": 7.5,
        "steps": 40,
        "scheduler": "euler_a",
        "clip_skip": 0,
        "model": {"model_name": "stable-diffusion-v1-5", "base_model": "sd-1", "model_type": "main"},
        "loras": [{"lora": {"model_name": "film_grain", "base_model": "sd-1"}, "weight": 0.6}],
        "app_version": "3.4.0",
    }
    path = write_png(tmp_path / "i3.png", {"invokeai_metadata": json.dumps(metadata)})
    assert recalled(path) == (
        "a lighthouse <lora:film_grain:0.6>",
        "fog",
        881,
        40,
        7.5,
        "Euler a",
        "Automatic",
        512,
        640,
    )
    assert request_from_image(path).model == "stable-diffusion-v1-5"


def test_invokeai_4(tmp_path: Path) -> None:
    metadata = {
        "generation_mode": "sdxl_txt2img",
        "positive_prompt": "a red kite",
        "negative_prompt": "",
        "width": 1024,
        "height": 1024,
        "seed": 4000000000,
        "cfg_scale": 5,
        "steps": 25,
        "scheduler": "dpmpp_2m_sde_k",
        "model": {
            "key": "e5f1",
            "hash": "blake3:ab12",
            "name": "Juggernaut XL v9",
            "base": "sdxl",
            "type": "main",
        },
        "loras": [
            {"model": {"key": "1", "hash": "h", "name": "sharp", "base": "sdxl", "type": "lora"}, "weight": 1}
        ],
        "app_version": "4.2.9",
    }
    path = write_png(tmp_path / "i4.png", {"invokeai_metadata": json.dumps(metadata)})
    assert recalled(path) == (
        "a red kite <lora:sharp:1>",
        "",
        4000000000,
        25,
        5.0,
        "DPM++ 2M SDE",
        "Karras",
        1024,
        1024,
    )
    assert request_from_image(path).model == "Juggernaut XL v9"


# --- NovelAI, Fooocus, SwarmUI ---------------------------------------------------------------------

NOVELAI_COMMENT = {
    "prompt": "1girl, looking at viewer, masterpiece",
    "steps": 28,
    "height": 1216,
    "width": 832,
    "scale": 5.0,
    "uncond_scale": 0.0,
    "cfg_rescale": 0.0,
    "seed": 1234567890,
    "n_samples": 1,
    "noise_schedule": "karras",
    "sampler": "k_dpmpp_2m",
    "sm": False,
    "sm_dyn": False,
    "uc": "lowres, bad anatomy",
    "request_type": "PromptGenerateRequest",
    "version": 1,
}


def test_novelai(tmp_path: Path) -> None:
    chunks = {
        "Title": "AI generated image",
        "Description": "1girl, looking at viewer, masterpiece",
        "Software": "NovelAI",
        "Source": "Stable Diffusion XL C1E1DE52",
        "Generation time": "4.2",
        "Comment": json.dumps(NOVELAI_COMMENT),
    }
    path = write_png(tmp_path / "n.png", chunks)
    metadata = read_metadata(path)
    assert (metadata.source, metadata.model, metadata.model_hash) == (
        "novelai",
        "Stable Diffusion XL",
        "C1E1DE52",
    )
    assert recalled(path) == (
        "1girl, looking at viewer, masterpiece",
        "lowres, bad anatomy",
        1234567890,
        28,
        5.0,
        "DPM++ 2M",
        "Karras",
        832,
        1216,
    )


FOOOCUS = {
    "adm_guidance": "(1.5, 0.8, 0.3)",
    "base_model": "juggernautXL_v8Rundiffusion.safetensors",
    "base_model_hash": "aeb7e9e689",
    "full_negative_prompt": ["blurry", "unrealistic"],
    "full_prompt": ["a cat in a spacesuit", "highly detailed"],
    "guidance_scale": 4,
    "loras": [["sd_xl_offset_example-lora_1.0.safetensors", 0.1, "4852686128"]],
    "metadata_scheme": "fooocus",
    "negative_prompt": "blurry",
    "performance": "Speed",
    "prompt": "a cat in a spacesuit",
    "prompt_expansion": "a cat in a spacesuit, highly detailed",
    "refiner_model": "None",
    "refiner_switch": 0.5,
    "resolution": "(1152, 896)",
    "sampler": "dpmpp_2m_sde_gpu",
    "scheduler": "karras",
    "seed": "8374992719311541120",
    "sharpness": 2,
    "steps": 30,
    "styles": "['Fooocus V2', 'Fooocus Enhance']",
    "version": "Fooocus v2.5.5",
}
FOOOCUS_RECALLED = (
    "a cat in a spacesuit <lora:sd_xl_offset_example-lora_1.0:0.1>",
    "blurry",
    8374992719311541120,
    30,
    4.0,
    "DPM++ 2M SDE",
    "Karras",
    1152,
    896,
)


def test_fooocus_png(tmp_path: Path) -> None:
    path = write_png(tmp_path / "f.png", {"parameters": json.dumps(FOOOCUS), "fooocus_scheme": "fooocus"})
    metadata = read_metadata(path)
    assert (metadata.source, metadata.model) == ("fooocus", "juggernautXL_v8Rundiffusion")
    assert recalled(path) == FOOOCUS_RECALLED
    assert "Seed: 8374992719311541120" in metadata.parameters  # shown and searched as infotext


def test_fooocus_jpeg(tmp_path: Path) -> None:
    """Fooocus writes its JSON into a UserComment of the main IFD (not the Exif IFD)."""
    exif = Image.Exif()
    exif[0x9286] = json.dumps(FOOOCUS)
    exif[0x0131] = "Fooocus v2.5.5"
    path = tmp_path / "f.jpg"
    make_image(32, 32).save(path, "JPEG", exif=exif)
    assert recalled(path) == FOOOCUS_RECALLED


SWARMUI = {
    "sui_image_params": {
        "prompt": "a photo of a red fox in snow",
        "negativeprompt": "blurry",
        "model": "OfficialStableDiffusion/sd_xl_base_1.0",
        "seed": 1796253913,
        "steps": 30,
        "cfgscale": 6.5,
        "aspectratio": "Custom",
        "width": 1024,
        "height": 768,
        "sampler": "euler_ancestral",
        "scheduler": "normal",
        "loras": ["detail-tweaker"],
        "loraweights": ["0.8"],
        "swarm_version": "0.9.5.2",
    },
    "sui_extra_data": {"date": "2025-01-01", "generation_time": "2.1 sec"},
    "sui_models": [{"name": "sd_xl_base_1.0.safetensors", "param": "model", "hash": "0x31e35c80fc"}],
}


@pytest.mark.parametrize("format", ["PNG", "WEBP"])
def test_swarmui(tmp_path: Path, format: str) -> None:
    text = json.dumps(SWARMUI, indent=2)
    if format == "PNG":
        path = write_png(tmp_path / "s.png", {"parameters": text})
    else:
        exif = Image.Exif()
        exif.get_ifd(ExifTags.IFD.Exif)[0x9286] = b"UNICODE\0" + text.encode("utf_16_be")
        path = tmp_path / "s.webp"
        make_image(32, 32).save(path, "WEBP", exif=exif)
    metadata = read_metadata(path)
    assert (metadata.source, metadata.model) == ("swarmui", "sd_xl_base_1.0")
    assert recalled(path) == (
        "a photo of a red fox in snow <lora:detail-tweaker:0.8>",
        "blurry",
        1796253913,
        30,
        6.5,
        "Euler a",
        NORMAL,
        1024,
        768,
    )


def test_json_parameters_of_an_unknown_tool_are_not_taken_for_a_prompt(tmp_path: Path) -> None:
    path = write_png(tmp_path / "j.png", {"parameters": json.dumps({"positive": "a cat", "seed": 5})})
    assert read_metadata(path).source is None
    with pytest.raises(NoRecipeInImage):
        request_from_image(path)


def test_a1111_prompt_that_starts_with_a_brace_is_still_infotext(tmp_path: Path) -> None:
    text = "{red|blue} car\nSteps: 20, Sampler: Euler, CFG scale: 7, Seed: 1, Size: 512x512"
    path = write_png(tmp_path / "b.png", {"parameters": text})
    assert recalled(path)[:3] == ("{red|blue} car", "", 1)


# --- 64-bit seeds --------------------------------------------------------------------------------


def test_64_bit_seeds_are_requests_and_round_trip(tmp_path: Path) -> None:
    from sfumato.archive.files import save_image
    from sfumato.archive.index import ArchiveIndex
    from sfumato.core.errors import InvalidRequest
    from sfumato.core.request import parse_request
    from sfumato.core.result import GeneratedImage, ModelInfo

    assert GenerationRequest(seed=2**64 - 1, variation_seed=2**64 - 1).seed == 2**64 - 1
    with pytest.raises(InvalidRequest, match="seed"):
        parse_request({"seed": 2**64})
    recipe = GenerationRequest(prompt="a red circle", seed=2**64 - 1, width=64, height=64)
    path = save_image(
        GeneratedImage(make_image(64, 64), recipe, ModelInfo(name="tiny", hash=None)), tmp_path / "out"
    )
    assert request_from_image(path) == recipe
    # The A1111 text alone gives the same seed back (what other tools read).
    with Image.open(path) as image:
        assert f"Seed: {2**64 - 1}," in image.info["parameters"]
    index = ArchiveIndex(tmp_path / "out", tmp_path / "index.sqlite")
    index.rebuild()
    assert [record.seed for record in index.list()] == [2**64 - 1]


# --- Broken metadata: never a crash, at worst "no settings" or a clear error ---------------------


@pytest.mark.parametrize(
    "chunks",
    [
        {"sd-metadata": '{"image": "x"}'},
        {"sd-metadata": '{"image": {"prompt": 5, "sampler": "k_lms"}}'},
        {"sd-metadata": "[" * 5000 + "]" * 5000},
        {"Dream": "no quotes at all -s x"},
        {"Comment": "[]", "Description": "x"},
        {"Comment": '{"sampler": 5, "seed": "abc"}', "Description": "x", "Source": "y"},
        {"parameters": '{"prompt": 1, "base_model": null}'},
        {"parameters": '{"sui_image_params": {"seed": "abc", "loras": [1, null], "loraweights": "x"}}'},
        {
            "prompt": '{"1": {"class_type": "KSampler", "inputs": {"latent_image": ["1", 0], "guider": ["1", 0]}}}'
        },
        {
            "workflow": '{"nodes": [{"id": 1, "type": "KSampler", "inputs": [{"name": "model", "link": 9}]}], "links": [{"id": 9}]}'
        },
    ],
)
def test_broken_metadata_of_other_tools(tmp_path: Path, chunks: dict[str, str]) -> None:
    from sfumato.core.errors import InvalidRequest

    path = write_png(tmp_path / "x.png", chunks)
    read_metadata(path)
    with contextlib.suppress(InvalidRequest):
        request_from_image(path)


def test_the_archive_indexes_other_tools_pictures_with_their_settings(tmp_path: Path) -> None:
    from sfumato.archive.index import ArchiveIndex

    out = tmp_path / "out"
    out.mkdir()
    write_png(out / "fooocus.png", {"parameters": json.dumps(FOOOCUS)})
    write_png(out / "swarm.png", {"parameters": json.dumps(SWARMUI)})
    write_png(out / "comfy.png", {"workflow": json.dumps(WORKFLOW_V1)})
    write_png(out / "invoke2.png", {"sd-metadata": json.dumps(INVOKEAI_2)})
    index = ArchiveIndex(out, tmp_path / "index.sqlite")
    index.rebuild()
    records = {Path(r.path).stem: r for r in index.list()}
    assert {name: (r.source, r.seed) for name, r in records.items()} == {
        "fooocus": ("fooocus", 8374992719311541120),
        "swarm": ("swarmui", 1796253913),
        "comfy": ("comfyui", BIG_SEED),
        "invoke2": ("invokeai", 3259385431),
    }
    assert records["fooocus"].prompt.startswith("a cat in a spacesuit")  # not the JSON text
    assert [Path(r.path).stem for r in index.search("heron")] == ["comfy"]
