"""Settings from pictures of Fooocus, SwarmUI, NovelAI and InvokeAI 2, as one plain mapping.

Fooocus, NovelAI and InvokeAI 2 (``sd-metadata`` and the older ``Dream`` text) are read by sd-parsers,
a maintained reader of these formats; we only map what it reads onto our fields. Every JSON text
goes through :func:`parse_json` (depth and number limits) before sd-parsers sees it. SwarmUI has no
reader there, so it is ours. ComfyUI, InvokeAI 3-4 and A1111 keep our own readers (see their modules).

Each reader returns the settings it found under our names (``prompt``, ``negative_prompt``,
``seed``, ``steps``, ``cfg_scale``, ``sampler`` and ``scheduler`` as the tool wrote them, ``width``,
``height``, ``model``, ``model_hash``), or {} when the text is not that tool's.
"""

from __future__ import annotations

import re
from pathlib import PurePath
from typing import TYPE_CHECKING, Any

from sfumato.archive.sampler_names import to_a1111_sampler, to_a1111_schedule
from sfumato.core.untrusted import UntrustedData, parse_json

if TYPE_CHECKING:
    from sd_parsers.data import PromptInfo


def _json_object(text: str) -> dict[str, Any] | None:
    try:
        data = parse_json(text)
    except (TypeError, UntrustedData):
        return None
    return data if isinstance(data, dict) else None


def _parse_with(parser_name: str, parameters: dict[str, str]) -> PromptInfo | None:
    """One sd-parsers parser on chunks already checked; None when it cannot read them."""
    from sd_parsers import parsers
    from sd_parsers.exceptions import ParserError

    parser = getattr(parsers, parser_name)(normalize_parameters=True)
    try:
        return parser.parse(parameters)
    except (ParserError, ValueError, TypeError, KeyError, AttributeError, IndexError):
        return None


def _whole(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    try:
        return int(str(value).strip())
    except (TypeError, ValueError):
        return None


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _lora_tags(loras: list[tuple[str, float]], prompt: str) -> str:
    """The prompt with an A1111 ``<lora:name:weight>`` for each LoRA it does not name already."""
    tags = [
        f"<lora:{name}:{weight:g}>"
        for name, weight in loras
        if f"<lora:{name}:" not in prompt and weight != 0
    ]
    return " ".join([prompt, *tags]).strip() if tags else prompt


_MODEL_SUFFIXES = (".safetensors", ".ckpt", ".pt", ".pth", ".bin", ".gguf", ".sft")


def model_name(name: Any) -> str | None:
    """'SDXL\\sd_xl_base_1.0.safetensors' -> 'sd_xl_base_1.0': the file name without folder or model
    suffix (a dot inside the name, as in 'v1.5', stays)."""
    if not isinstance(name, str) or not name.strip():
        return None
    base = PurePath(name.strip().replace("\\", "/")).name
    for suffix in _MODEL_SUFFIXES:
        if base.lower().endswith(suffix):
            return base[: -len(suffix)]
    return base


def _from_prompt_info(info: PromptInfo) -> dict[str, Any]:
    """What sd-parsers read, under our names; the first sampler is the picture's own."""
    if not info.samplers:
        return {}
    sampler = info.samplers[0]
    params = {**info.metadata, **sampler.parameters}
    found: dict[str, Any] = {
        "prompt": ", ".join(p.value for p in sampler.prompts),
        "negative_prompt": ", ".join(p.value for p in sampler.negative_prompts),
        "seed": _whole(params.get("seed")),
        "steps": _whole(params.get("steps")),
        "cfg_scale": _number(params.get("cfg_scale")),
        "sampler": sampler.name if isinstance(sampler.name, str) else None,
        "scheduler": params.get("scheduler", params.get("noise_schedule")),
        "width": _whole(params.get("width")),
        "height": _whole(params.get("height")),
    }
    if sampler.model is not None:
        found["model"] = model_name(sampler.model.name)
        found["model_hash"] = sampler.model.hash
    return {key: value for key, value in found.items() if value is not None}


def read_fooocus(parameters: str) -> dict[str, Any]:
    """Fooocus's own scheme: the ``parameters`` text is JSON (its A1111 scheme is plain infotext)."""
    data = _json_object(parameters)
    if data is None or "prompt" not in data or "sui_image_params" in data:
        return {}
    info = _parse_with("FooocusParser", {"parameters": parameters})
    if info is None:
        return {}
    found = _from_prompt_info(info)
    size = re.fullmatch(r"\(\s*(\d+)\s*,\s*(\d+)\s*\)", str(info.metadata.get("resolution", "")))
    if size:
        found["width"], found["height"] = int(size[1]), int(size[2])
    loras = info.metadata.get("loras")
    if isinstance(loras, list):
        pairs = [
            (stem, float(item[1]))
            for item in loras
            if isinstance(item, list)
            and len(item) >= 2
            and (stem := model_name(item[0]))
            and _number(item[1])
        ]
        found["prompt"] = _lora_tags(pairs, found.get("prompt", ""))
    return found


def read_swarmui(parameters: str) -> dict[str, Any]:
    """SwarmUI: the ``parameters`` text is JSON with the settings under ``sui_image_params``."""
    data = _json_object(parameters)
    params = data.get("sui_image_params") if data else None
    if not isinstance(params, dict):
        return {}
    found: dict[str, Any] = {
        "prompt": params.get("prompt") if isinstance(params.get("prompt"), str) else "",
        "negative_prompt": params.get("negativeprompt")
        if isinstance(params.get("negativeprompt"), str)
        else "",
        "seed": _whole(params.get("seed")),
        "steps": _whole(params.get("steps")),
        "cfg_scale": _number(params.get("cfgscale")),
        "sampler": params.get("sampler") if isinstance(params.get("sampler"), str) else None,
        "scheduler": params.get("scheduler") if isinstance(params.get("scheduler"), str) else None,
        "width": _whole(params.get("width")),
        "height": _whole(params.get("height")),
        "model": model_name(params.get("model")),
    }
    names, weights = params.get("loras"), params.get("loraweights")
    if isinstance(names, list):
        weights = weights if isinstance(weights, list) else []
        pairs = []
        for i, name in enumerate(names):
            weight = _number(weights[i]) if i < len(weights) else 1.0
            if (stem := model_name(name)) and weight is not None:
                pairs.append((stem, weight))
        found["prompt"] = _lora_tags(pairs, found["prompt"])
    return {key: value for key, value in found.items() if value is not None}


def read_novelai(chunks: dict[str, str]) -> dict[str, Any]:
    """NovelAI: the prompt in ``Description``, the settings as JSON in ``Comment``, model in ``Source``."""
    if not {"Comment", "Description"} <= chunks.keys() or _json_object(chunks["Comment"]) is None:
        return {}
    parameters = {key: chunks.get(key, "") for key in ("Comment", "Description", "Source")}
    info = _parse_with("NovelAIParser", parameters)
    return _from_prompt_info(info) if info is not None else {}


def read_invokeai2(chunks: dict[str, str]) -> dict[str, Any]:
    """InvokeAI 2: JSON in ``sd-metadata``, or the older ``Dream`` command line."""
    if "sd-metadata" in chunks:
        if _json_object(chunks["sd-metadata"]) is None:
            return {}
        info = _parse_with("InvokeAIParser", {"sd-metadata": chunks["sd-metadata"]})
    elif "Dream" in chunks:
        info = _parse_with("InvokeAIParser", {"Dream": chunks["Dream"]})
    else:
        return {}
    return _from_prompt_info(info) if info is not None else {}


def request_fields(found: dict[str, Any]) -> dict[str, Any]:
    """Request fields from the settings a reader found; an unknown sampler is kept for validation to report."""
    data = {
        key: found[key]
        for key in ("prompt", "negative_prompt", "seed", "steps", "cfg_scale", "width", "height", "model")
        if key in found
    }
    if "sampler" in found:
        data["sampler"] = to_a1111_sampler(str(found["sampler"]))
    if (schedule := to_a1111_schedule(found.get("scheduler"))) is not None:
        data["schedule_type"] = schedule
    return data
