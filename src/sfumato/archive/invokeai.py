"""The generation settings in InvokeAI's ``invokeai_metadata`` chunk (3.x and 4.x; reference §3.3).

Our own reader: sd-parsers (0.6) loses the 4.x model (``name``, not ``model_name``) and the LoRAs.
InvokeAI 2's ``sd-metadata`` and ``Dream`` chunks are read through sd-parsers (archive/foreign.py).
"""

from __future__ import annotations

from typing import Any

from sfumato.core.untrusted import UntrustedData, parse_json

# InvokeAI scheduler names -> A1111 (sampler, schedule type).
SCHEDULERS: dict[str, tuple[str, str]] = {
    "euler": ("Euler", "Automatic"),
    "euler_k": ("Euler", "Karras"),
    "euler_a": ("Euler a", "Automatic"),
    "heun": ("Heun", "Automatic"),
    "heun_k": ("Heun", "Karras"),
    "lms": ("LMS", "Automatic"),
    "lms_k": ("LMS", "Karras"),
    "kdpm_2": ("DPM2", "Automatic"),
    "kdpm_2_k": ("DPM2", "Karras"),
    "kdpm_2_a": ("DPM2 a", "Automatic"),
    "kdpm_2_a_k": ("DPM2 a", "Karras"),
    "dpmpp_2m": ("DPM++ 2M", "Automatic"),
    "dpmpp_2m_k": ("DPM++ 2M", "Karras"),
    "dpmpp_2m_sde": ("DPM++ 2M SDE", "Automatic"),
    "dpmpp_2m_sde_k": ("DPM++ 2M SDE", "Karras"),
    "dpmpp_sde": ("DPM++ SDE", "Automatic"),
    "dpmpp_sde_k": ("DPM++ SDE", "Karras"),
    "ddim": ("DDIM", "Automatic"),
    "pndm": ("PLMS", "Automatic"),
    "unipc": ("UniPC", "Automatic"),
    "unipc_k": ("UniPC", "Karras"),
    "lcm": ("LCM", "Automatic"),
}


def read_invokeai(chunk: str) -> dict[str, Any]:
    """Prompt, negative prompt, seed, steps, cfg, scheduler, size and model; {} when it does not parse."""
    try:
        data = parse_json(chunk)
    except (TypeError, UntrustedData):
        return {}
    if not isinstance(data, dict):
        return {}
    found = {
        "prompt": data.get("positive_prompt"),
        "negative_prompt": data.get("negative_prompt"),
        "seed": data.get("seed"),
        "steps": data.get("steps"),
        "cfg_scale": data.get("cfg_scale"),
        "sampler": data.get("scheduler"),
        "width": data.get("width"),
        "height": data.get("height"),
        "denoise": data.get("strength"),
    }
    model = data.get("model")
    if isinstance(model, dict):
        found["model"] = model.get("name") or model.get("model_name")
        found["model_hash"] = model.get("hash")
    elif isinstance(model, str):
        found["model"] = model
    if loras := _loras(data.get("loras")):
        tags = " ".join(f"<lora:{name}:{weight:g}>" for name, weight in loras)
        found["prompt"] = f"{found.get('prompt') or ''} {tags}".strip()
    return {key: value for key, value in found.items() if value is not None}


def _loras(items: Any) -> list[tuple[str, float]]:
    """3.x: ``{"lora": {"model_name": …}, "weight": …}``; 4.x: ``{"model": {"name": …}, "weight": …}``."""
    found: list[tuple[str, float]] = []
    for item in items if isinstance(items, list) else []:
        if not isinstance(item, dict):
            continue
        model = item.get("model", item.get("lora"))
        name = (model.get("name") or model.get("model_name")) if isinstance(model, dict) else None
        weight = item.get("weight", 1.0)
        if (
            isinstance(name, str)
            and name
            and isinstance(weight, (int, float))
            and not isinstance(weight, bool)
        ):
            found.append((name, float(weight)))
    return found


def request_fields(found: dict[str, Any]) -> dict[str, Any]:
    data = {
        key: found[key]
        for key in ("prompt", "negative_prompt", "seed", "steps", "cfg_scale", "width", "height")
        if key in found
    }
    if "sampler" in found:
        scheduler = str(found["sampler"])
        data["sampler"], data["schedule_type"] = SCHEDULERS.get(scheduler, (scheduler, "Automatic"))
    if "model" in found:
        data["model"] = found["model"]
    return data
