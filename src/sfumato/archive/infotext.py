"""A1111's "infotext": the `parameters` text every Stable Diffusion tool can read.

Layout (reference/anchors-reliability-ux.md §3.1)::

    <prompt, may span lines>
    Negative prompt: <negative prompt, may span lines>     <- only when non-empty
    Steps: 20, Sampler: Euler a, CFG scale: 7, Seed: 42, Size: 512x512, ..., Version: sfumato 0.1.0

A value is JSON-quoted when it holds a comma, a colon or a newline; the last line counts as the
parameters line only when it holds at least three ``key: value`` pairs, as A1111 reads it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from sfumato import __version__
from sfumato.core.inpainting import SoftInpainting
from sfumato.core.request import GenerationRequest, Hires, MaskedContent, Mode, parse_request
from sfumato.core.result import ModelInfo

NEGATIVE_PREFIX = "Negative prompt:"
VERSION = f"sfumato {__version__}"

# One `Key: value` pair: the key starts with a word character and may hold spaces, dashes and
# slashes; the value is a JSON string (with escapes) or runs to the next comma.
_PAIR = re.compile(r'(\w[\w \-/]*?)\s*:\s*("(?:\\.|[^\\"])*"|[^,]*?)\s*(?:,|$)')


def format_number(value: float) -> str:
    """7.0 -> '7', 0.75 -> '0.75': as A1111's web UI writes slider values."""
    if float(value).is_integer():
        return str(int(value))
    return repr(float(value))


def quote(value: str) -> str:
    if "," in value or ":" in value or "\n" in value:
        return json.dumps(value, ensure_ascii=False)
    return value


def _inpaint_params(recipe: GenerationRequest) -> dict[str, str]:
    params = {"Mask blur": str(recipe.mask_blur)}
    if recipe.mask_invert:
        params["Mask mode"] = "Inpaint not masked"
    params["Masked content"] = recipe.masked_content.value
    if recipe.inpaint_only_masked:
        params["Inpaint area"] = "Only masked"
        if recipe.inpaint_only_masked_padding is not None:  # None: chosen from the mask's size
            params["Masked area padding"] = str(recipe.inpaint_only_masked_padding)
    if recipe.soft_inpainting is not None:
        params["Soft inpainting enabled"] = "True"
        for field, value in recipe.soft_inpainting.model_dump().items():
            params[f"Soft inpainting {field.replace('_', ' ')}"] = format_number(value)
    return params


def _hires_params(hires: Hires) -> dict[str, str | None]:
    resized = hires.resize_x or hires.resize_y
    return {
        "Hires upscale": None if resized else format_number(hires.scale),
        "Hires resize": f"{hires.resize_x}x{hires.resize_y}" if resized else None,
        "Hires steps": str(hires.steps) if hires.steps else None,
        "Hires upscaler": hires.upscaler,
        "Hires sampler": hires.sampler,
        "Hires prompt": hires.prompt or None,
        "Hires negative prompt": hires.negative_prompt or None,
    }


def generation_params(
    recipe: GenerationRequest,
    model: ModelInfo | None = None,
    extra: Mapping[str, str] | None = None,
    size: tuple[int, int] | None = None,
) -> dict[str, str]:
    """The parameters line in A1111's key order. ``size`` fills a missing width/height."""
    width = recipe.width if recipe.width is not None else (size[0] if size else None)
    height = recipe.height if recipe.height is not None else (size[1] if size else None)
    varied = recipe.variation_strength > 0
    candidates: dict[str, str | None] = {
        "Steps": str(recipe.steps),
        "Sampler": recipe.sampler,
        "Schedule type": None if recipe.schedule_type == "Automatic" else recipe.schedule_type,
        "CFG scale": format_number(recipe.cfg_scale),
        "Seed": str(recipe.seed),
        "Size": f"{width}x{height}" if width and height else None,
        "Model hash": model.hash if model else None,
        "Model": model.name if model else None,
        "VAE hash": model.vae_hash if model else None,
        "VAE": model.vae_name if model else None,
        "Variation seed": str(recipe.variation_seed) if varied else None,
        "Variation seed strength": format_number(recipe.variation_strength) if varied else None,
        "Denoising strength": (
            format_number(recipe.denoising_strength) if recipe.mode is not Mode.txt2img else None
        ),
        "Clip skip": str(recipe.clip_skip) if recipe.clip_skip > 1 else None,
        "Tiling": "True" if recipe.tiling else None,
        "Eta DDIM": format_number(recipe.eta) if recipe.eta is not None else None,
        "Sigma churn": format_number(recipe.churn) if recipe.churn else None,
    }
    if recipe.mode is Mode.inpaint:
        candidates.update(_inpaint_params(recipe))
    if recipe.hires is not None:
        candidates["Denoising strength"] = format_number(recipe.hires.denoising_strength)
        candidates.update(_hires_params(recipe.hires))
    for key, value in (extra or {}).items():
        candidates.setdefault(key, value)
    # Our noise is A1111's "CPU" RNG (torch's CPU generator, float32); A1111 assumes "GPU" when a
    # text names none, so saying it lets A1111 draw the same starting noise for the seed.
    candidates["RNG"] = "CPU"
    candidates["Version"] = VERSION
    return {key: value for key, value in candidates.items() if value is not None}


def join_params(params: Mapping[str, str]) -> str:
    return ", ".join(key if key == value else f"{key}: {quote(value)}" for key, value in params.items())


def format_infotext(prompt: str, negative_prompt: str, params: Mapping[str, str]) -> str:
    negative = f"\n{NEGATIVE_PREFIX} {negative_prompt}" if negative_prompt else ""
    return f"{prompt}{negative}\n{join_params(params)}".strip()


def infotext(
    recipe: GenerationRequest,
    model: ModelInfo | None = None,
    extra: Mapping[str, str] | None = None,
    size: tuple[int, int] | None = None,
) -> str:
    """The A1111 `parameters` text of one picture's recipe."""
    params = generation_params(recipe, model, extra, size)
    return format_infotext(recipe.prompt, recipe.negative_prompt, params)


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] == '"':
        try:
            decoded = json.loads(value)
        except json.JSONDecodeError:
            return value
        return decoded if isinstance(decoded, str) else value
    return value


def split_params(line: str) -> dict[str, str]:
    """'Steps: 20, Lora hashes: "a: 1, b: 2"' -> {'Steps': '20', 'Lora hashes': 'a: 1, b: 2'}."""
    return {key.strip(): _unquote(value.strip()) for key, value in _PAIR.findall(line)}


def parse_infotext(text: str) -> dict[str, str]:
    """Any A1111 infotext as a flat mapping: 'Prompt', 'Negative prompt' and every parameter as text."""
    lines = text.strip().replace("\r\n", "\n").split("\n")
    params: dict[str, str] = {}
    if lines and len(_PAIR.findall(lines[-1])) >= 3:
        params = split_params(lines.pop())
    prompt: list[str] = []
    negative: list[str] = []
    in_negative = False
    for line in lines:
        line = line.strip()
        if line.startswith(NEGATIVE_PREFIX):
            in_negative = True
            line = line[len(NEGATIVE_PREFIX) :].strip()
        (negative if in_negative else prompt).append(line)
    return {"Prompt": "\n".join(prompt), "Negative prompt": "\n".join(negative), **params}


def _size(value: str) -> tuple[int, int] | None:
    match = re.fullmatch(r"\s*(\d+)\s*x\s*(\d+)\s*", value)
    return (int(match[1]), int(match[2])) if match else None


# Parameters that map one to one onto request fields: (A1111 key, field, converter).
_FIELDS: tuple[tuple[str, str, type], ...] = (
    ("Steps", "steps", int),
    ("Sampler", "sampler", str),
    ("Schedule type", "schedule_type", str),
    ("CFG scale", "cfg_scale", float),
    ("Seed", "seed", int),
    ("Model", "model", str),
    ("VAE", "vae", str),
    ("Variation seed", "variation_seed", int),
    ("Variation seed strength", "variation_strength", float),
    ("Denoising strength", "denoising_strength", float),
    ("Clip skip", "clip_skip", int),
    ("Mask blur", "mask_blur", int),
    ("Masked area padding", "inpaint_only_masked_padding", int),
    ("Eta DDIM", "eta", float),
    ("Sigma churn", "churn", float),
)


def _converted(params: Mapping[str, str], table: tuple[tuple[str, str, type], ...]) -> dict[str, Any]:
    """The fields ``table`` maps the present keys to; a value that does not convert stays text."""
    fields: dict[str, Any] = {}
    for key, field, convert in table:
        if key in params:
            try:
                fields[field] = convert(params[key])
            except ValueError:
                fields[field] = params[key]
    return fields


def request_fields(params: Mapping[str, str]) -> dict[str, Any]:
    """Request fields from a parsed infotext; values that do not convert are passed on as text for
    the request's validation to report."""
    data: dict[str, Any] = {
        "prompt": params.get("Prompt", ""),
        "negative_prompt": params.get("Negative prompt", ""),
    }
    data |= _converted(params, _FIELDS)
    if (size := _size(params.get("Size", ""))) is not None:
        data["width"], data["height"] = size
    if params.get("Tiling") == "True":
        data["tiling"] = True
    if "Inpaint area" in params:
        data["inpaint_only_masked"] = params["Inpaint area"] == "Only masked"
    if "Mask mode" in params:
        data["mask_invert"] = params["Mask mode"] == "Inpaint not masked"
    if params.get("Masked content") in {item.value for item in MaskedContent}:
        data["masked_content"] = params["Masked content"]
    if params.get("Soft inpainting enabled") == "True":
        data["soft_inpainting"] = {
            field: params[key]
            for field in SoftInpainting.model_fields
            if (key := f"Soft inpainting {field.replace('_', ' ')}") in params
        }
    if {"Hires upscale", "Hires resize", "Hires upscaler"} & params.keys():
        data["hires"] = _hires_fields(params, data)
    if params.get("Face restoration"):
        data["postprocess"] = [_restore_faces_fields(params)]
    return data


def _restore_faces_fields(params: Mapping[str, str]) -> dict[str, Any]:
    """A1111's "Face restoration: GFPGAN" (and Sfumato's weight and visibility) as a restore step."""
    step: dict[str, Any] = {"kind": "restore_faces", "model": params["Face restoration"]}
    for key, field in (
        ("CodeFormer weight", "codeformer_weight"),
        ("Face restoration visibility", "visibility"),
    ):
        if key in params:
            try:
                step[field] = float(params[key])
            except ValueError:
                step[field] = params[key]
    return step


# Hires fix parameters: (A1111 key, field of the request's `hires`, converter).
_HIRES_FIELDS: tuple[tuple[str, str, type], ...] = (
    ("Hires upscale", "scale", float),
    ("Hires steps", "steps", int),
    ("Hires upscaler", "upscaler", str),
    ("Hires sampler", "sampler", str),
    ("Hires prompt", "prompt", str),
    ("Hires negative prompt", "negative_prompt", str),
)


def _hires_fields(params: Mapping[str, str], data: dict[str, Any]) -> dict[str, Any]:
    """The hires fix's fields; A1111's `Denoising strength` of a txt2img picture is the second pass's."""
    hires = _converted(params, _HIRES_FIELDS)
    if (resize := _size(params.get("Hires resize", ""))) is not None:
        hires["resize_x"], hires["resize_y"] = resize
    if "denoising_strength" in data:
        hires["denoising_strength"] = data.pop("denoising_strength")
    return hires


def request_from_infotext(text: str) -> GenerationRequest:
    """The request an infotext describes; raises InvalidRequest when a value is not one we can run."""
    return parse_request(request_fields(parse_infotext(text)))
