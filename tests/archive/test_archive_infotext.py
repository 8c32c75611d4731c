from __future__ import annotations

from typing import Any

import pytest

from sfumato import __version__
from sfumato.archive.infotext import infotext, parse_infotext, request_from_infotext
from sfumato.core.errors import InvalidRequest
from sfumato.core.request import GenerationRequest, Hires
from sfumato.core.result import ModelInfo

V = f"RNG: CPU, Version: sfumato {__version__}"
DEMO = ModelInfo("demo", "e6e99610c4")
INIT = "data:image/png;base64,AAAA"

CASES: list[tuple[str, dict[str, Any], ModelInfo | None, dict[str, str], str]] = [
    (
        "txt2img, no negative prompt, Automatic schedule left out",
        {"prompt": "a red circle", "sampler": "Euler a", "seed": 42, "width": 512, "height": 512},
        DEMO,
        {},
        f"a red circle\nSteps: 20, Sampler: Euler a, CFG scale: 7, Seed: 42, Size: 512x512, "
        f"Model hash: e6e99610c4, Model: demo, {V}",
    ),
    (
        "negative prompt, schedule type, fractional CFG, clip skip, VAE",
        {
            "prompt": "a cat",
            "negative_prompt": "blurry, ugly",
            "sampler": "DPM++ 2M",
            "schedule_type": "Karras",
            "cfg_scale": 7.5,
            "seed": 965400086,
            "width": 512,
            "height": 768,
            "steps": 30,
            "clip_skip": 2,
        },
        ModelInfo("sd15", "abcdef0123", vae_name="vae-ft-mse", vae_hash="735e4c3a44"),
        {},
        "a cat\nNegative prompt: blurry, ugly\nSteps: 30, Sampler: DPM++ 2M, Schedule type: Karras, "
        "CFG scale: 7.5, Seed: 965400086, Size: 512x768, Model hash: abcdef0123, Model: sd15, "
        f"VAE hash: 735e4c3a44, VAE: vae-ft-mse, Clip skip: 2, {V}",
    ),
    (
        "variation seed only when its strength is above 0",
        {
            "prompt": "x",
            "seed": 1,
            "variation_seed": 7,
            "variation_strength": 0.25,
            "width": 64,
            "height": 64,
        },
        None,
        {},
        f"x\nSteps: 20, Sampler: DPM++ 2M, CFG scale: 7, Seed: 1, Size: 64x64, Variation seed: 7, "
        f"Variation seed strength: 0.25, {V}",
    ),
    (
        "variation seed at strength 0 is not written",
        {"prompt": "x", "seed": 1, "variation_seed": 7, "variation_strength": 0.0, "width": 64, "height": 64},
        None,
        {},
        f"x\nSteps: 20, Sampler: DPM++ 2M, CFG scale: 7, Seed: 1, Size: 64x64, {V}",
    ),
    (
        "img2img writes the denoising strength after the variation seed",
        {
            "prompt": "x",
            "seed": 1,
            "init_image": INIT,
            "denoising_strength": 0.6,
            "variation_seed": 3,
            "variation_strength": 0.1,
            "width": 64,
            "height": 64,
        },
        None,
        {},
        f"x\nSteps: 20, Sampler: DPM++ 2M, CFG scale: 7, Seed: 1, Size: 64x64, Variation seed: 3, "
        f"Variation seed strength: 0.1, Denoising strength: 0.6, {V}",
    ),
    (
        "inpaint: mask blur, masked content, only-masked area and padding",
        {
            "prompt": "x",
            "seed": 1,
            "init_image": INIT,
            "mask": INIT,
            "inpaint_only_masked": True,
            "inpaint_only_masked_padding": 48,
            "masked_content": "latent noise",
            "clip_skip": 2,
            "width": 64,
            "height": 64,
        },
        DEMO,
        {},
        "x\nSteps: 20, Sampler: DPM++ 2M, CFG scale: 7, Seed: 1, Size: 64x64, Model hash: e6e99610c4, "
        "Model: demo, Denoising strength: 0.75, Clip skip: 2, Mask blur: 4, Masked content: latent noise, "
        f"Inpaint area: Only masked, Masked area padding: 48, {V}",
    ),
    (
        "inverted mask, whole picture",
        {
            "prompt": "x",
            "seed": 1,
            "init_image": INIT,
            "mask": INIT,
            "mask_invert": True,
            "width": 64,
            "height": 64,
        },
        None,
        {},
        "x\nSteps: 20, Sampler: DPM++ 2M, CFG scale: 7, Seed: 1, Size: 64x64, Denoising strength: 0.75, "
        f"Mask blur: 4, Mask mode: Inpaint not masked, Masked content: original, {V}",
    ),
    (
        "extra params are quoted when they hold a comma, colon or newline",
        {"prompt": "x", "seed": 1, "width": 64, "height": 64},
        None,
        {"Lora hashes": "a: 0123456789ab, b: ba9876543210", "Hires upscaler": "Latent", "Note": "two\nlines"},
        f'x\nSteps: 20, Sampler: DPM++ 2M, CFG scale: 7, Seed: 1, Size: 64x64, Lora hashes: "a: 0123456789ab, '
        f'b: ba9876543210", Hires upscaler: Latent, Note: "two\\nlines", {V}',
    ),
    (
        "multi-line prompt and negative prompt, empty prompt",
        {"prompt": "", "negative_prompt": "bad\nworse", "seed": 5, "width": 64, "height": 64},
        None,
        {},
        f"Negative prompt: bad\nworse\nSteps: 20, Sampler: DPM++ 2M, CFG scale: 7, Seed: 5, Size: 64x64, {V}",
    ),
]


@pytest.mark.parametrize(
    ("fields", "model", "extra", "expected"), [case[1:] for case in CASES], ids=[case[0] for case in CASES]
)
def test_infotext_is_exactly_what_a1111_writes(
    fields: dict[str, Any], model: ModelInfo | None, extra: dict[str, str], expected: str
) -> None:
    assert infotext(GenerationRequest(**fields), model, extra) == expected


def test_missing_size_comes_from_the_picture() -> None:
    text = infotext(GenerationRequest(prompt="x", seed=3), size=(640, 448))
    assert "Size: 640x448" in text


ROUND_TRIPS: list[dict[str, Any]] = [
    {"prompt": "a red circle", "sampler": "Euler", "seed": 1},
    {"prompt": "a, b: (c:1.2)\n[d|e] BREAK f", "negative_prompt": "x, y:\nz", "schedule_type": "SGM Uniform"},
    {
        "sampler": "DPM++ 2M SDE",
        "schedule_type": "Exponential",
        "cfg_scale": 4.25,
        "clip_skip": 3,
        "steps": 150,
    },
    {"variation_seed": 4294967295, "variation_strength": 0.35, "seed": 0},
    {"init_image": INIT, "denoising_strength": 0.45, "sampler": "LCM"},
    {
        "init_image": INIT,
        "mask": INIT,
        "mask_blur": 0,
        "mask_invert": True,
        "inpaint_only_masked": True,
        "inpaint_only_masked_padding": 0,
        "masked_content": "fill",
        "vae": "vae-ft-mse",
    },
    {"hires": {"scale": 1.5, "upscaler": "Latent (nearest)", "denoising_strength": 0.55}},
    {
        "hires": {
            "resize_x": 1024,
            "resize_y": 768,
            "upscaler": "Lanczos",
            "steps": 12,
            "sampler": "DPM++ SDE",
            "prompt": "sharp, detailed: a castle",
            "negative_prompt": "blur",
        }
    },
]


def test_hires_fix_is_written_with_a1111s_keys() -> None:
    recipe = GenerationRequest(prompt="a castle", seed=1, width=512, height=512, hires=Hires(steps=10))
    text = infotext(recipe)
    assert "Denoising strength: 0.7, Hires upscale: 2, Hires steps: 10, Hires upscaler: Latent" in text
    assert "Size: 512x512" in text  # the first pass's size, as A1111 writes it


@pytest.mark.parametrize("fields", ROUND_TRIPS)
def test_request_from_infotext_gives_back_the_recipe(fields: dict[str, Any]) -> None:
    recipe = GenerationRequest(**{"width": 512, "height": 512, "seed": 77, "model": "demo", **fields})
    model = ModelInfo("demo", "e6e99610c4", vae_name=recipe.vae)
    parsed = request_from_infotext(infotext(recipe, model))
    # Pictures are not in the text: they come back as the image being recalled.
    assert parsed == recipe.model_copy(update={"init_image": None, "mask": None})


A1111_19 = (
    "1girl, masterpiece\nNegative prompt: lowres\nSteps: 8, Sampler: Euler, Schedule type: SGM Uniform, CFG scale: 1, "
    "Seed: 0, Size: 896x1152, Model hash: 43f0501ac4, Model: sdxl_lightning_8step, Clip skip: 2, RNG: CPU, "
    "SGM noise multiplier: True, Version: v1.8.0-238-g31306ce6"
)
A1111_OLD = (
    "masterpiece, (best quality:1.2), a castle\non a hill\nNegative prompt: (worst quality:1.4), lowres,\nbad hands\n"
    "Steps: 28, Sampler: DPM++ 2M Karras, CFG scale: 7.5, Seed: 3795040245, Size: 512x768, Model hash: 7f96a1a9ca, "
    "Model: anything-v5, Denoising strength: 0.5, Clip skip: 2, ENSD: 31337, Hires upscale: 2, "
    'Hires upscaler: Latent, Lora hashes: "add_detail: 7c6bad76eb54, \\"odd\\": 0123", Version: v1.6.0'
)


def test_parse_a1111_19_text() -> None:
    params = parse_infotext(A1111_19)
    assert params["Prompt"] == "1girl, masterpiece"
    assert params["Negative prompt"] == "lowres"
    assert params["Schedule type"] == "SGM Uniform"
    assert params["SGM noise multiplier"] == "True"
    assert params["Version"] == "v1.8.0-238-g31306ce6"
    request = request_from_infotext(A1111_19)
    assert (request.sampler, request.schedule_type, request.cfg_scale, request.clip_skip) == (
        "Euler",
        "SGM Uniform",
        1.0,
        2,
    )
    assert (request.width, request.height, request.model) == (896, 1152, "sdxl_lightning_8step")


def test_parse_old_text_with_multiline_prompts_quotes_and_karras_sampler() -> None:
    params = parse_infotext(A1111_OLD)
    assert params["Prompt"] == "masterpiece, (best quality:1.2), a castle\non a hill"
    assert params["Negative prompt"] == "(worst quality:1.4), lowres,\nbad hands"
    assert params["Lora hashes"] == 'add_detail: 7c6bad76eb54, "odd": 0123'
    assert params["Hires upscaler"] == "Latent"
    request = request_from_infotext(A1111_OLD)
    assert (request.sampler, request.schedule_type) == ("DPM++ 2M", "Karras")
    assert (request.seed, request.steps, request.cfg_scale) == (3795040245, 28, 7.5)
    # A txt2img picture's denoising strength is its hires fix's.
    assert request.hires is not None
    assert (request.hires.scale, request.hires.upscaler, request.hires.denoising_strength) == (
        2,
        "Latent",
        0.5,
    )


def test_text_without_parameters_line_is_all_prompt() -> None:
    params = parse_infotext("just a prompt, with: one colon\nand a second line")
    assert params == {"Prompt": "just a prompt, with: one colon\nand a second line", "Negative prompt": ""}


def test_unknown_sampler_is_a_clear_error() -> None:
    text = "x\nSteps: 20, Sampler: Euler z, CFG scale: 7, Seed: 1, Size: 512x512"
    with pytest.raises(InvalidRequest, match="unknown sampler 'Euler z'"):
        request_from_infotext(text)
