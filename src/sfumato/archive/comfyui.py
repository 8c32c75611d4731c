"""The generation settings inside a ComfyUI picture (reference/anchors-reliability-ux.md §3.2).

ComfyUI stores the graph, not the settings: ``prompt`` (API form: node id -> ``class_type`` and
``inputs``, where a link is ``[node_id, slot]``) and ``workflow`` (the editor's graph). We find
the first sampler node and follow its links to the text encoders, the latent and the checkpoint.
"""

from __future__ import annotations

from pathlib import PurePath
from typing import Any

from sfumato.core.untrusted import UntrustedData, parse_json

# ComfyUI sampler and scheduler names -> A1111's.
SAMPLERS = {
    "euler": "Euler",
    "euler_ancestral": "Euler a",
    "heun": "Heun",
    "lms": "LMS",
    "dpm_2": "DPM2",
    "dpm_2_ancestral": "DPM2 a",
    "dpmpp_2m": "DPM++ 2M",
    "dpmpp_2m_sde": "DPM++ 2M SDE",
    "dpmpp_sde": "DPM++ SDE",
    "ddim": "DDIM",
    "uni_pc": "UniPC",
    "lcm": "LCM",
}
SCHEDULES = {
    "normal": "Automatic",
    "karras": "Karras",
    "exponential": "Exponential",
    "sgm_uniform": "SGM Uniform",
}

_TEXT_KEYS = ("text", "text_g", "text_l", "string", "value", "prompt")
_MAX_DEPTH = 32

Graph = dict[str, dict[str, Any]]


def _is_link(value: Any) -> bool:
    return isinstance(value, list) and len(value) == 2 and isinstance(value[0], (str, int))


def _node(graph: Graph, link: Any) -> dict[str, Any] | None:
    node = graph.get(str(link[0])) if _is_link(link) else None
    return node if isinstance(node, dict) else None


def _inputs(node: dict[str, Any] | None) -> dict[str, Any]:
    inputs = node.get("inputs") if node else None
    return inputs if isinstance(inputs, dict) else {}


def _scalar(graph: Graph, value: Any, keys: tuple[str, ...], depth: int = 0) -> Any:
    """A literal input value, following links to primitive nodes."""
    if not _is_link(value):
        return value
    if depth > _MAX_DEPTH:
        return None
    inputs = _inputs(_node(graph, value))
    for key in keys:
        if key in inputs:
            return _scalar(graph, inputs[key], keys, depth + 1)
    return None


def _text(graph: Graph, link: Any, depth: int = 0) -> str | None:
    """The prompt text behind a conditioning link (through combine / ControlNet nodes)."""
    if depth > _MAX_DEPTH:
        return None
    inputs = _inputs(_node(graph, link))
    for key in _TEXT_KEYS:
        if key in inputs:
            text = _scalar(graph, inputs[key], _TEXT_KEYS)
            if isinstance(text, str):
                return text
    for key in ("conditioning", "conditioning_1", "conditioning_to", "positive"):
        if key in inputs:
            return _text(graph, inputs[key], depth + 1)
    return None


def _checkpoint(graph: Graph, link: Any) -> str | None:
    for _ in range(_MAX_DEPTH):
        node = _node(graph, link)
        inputs = _inputs(node)
        for key in ("ckpt_name", "unet_name", "model_name"):
            if isinstance(inputs.get(key), str):
                return PurePath(inputs[key]).stem
        link = inputs.get("model")
        if link is None:
            return None
    return None


def _sort_key(node_id: str) -> tuple[int, str]:
    return (int(node_id), node_id) if node_id.isdigit() else (1 << 62, node_id)


def settings_from_prompt(graph: Graph) -> dict[str, Any]:
    """Prompt, negative prompt, seed, steps, cfg, sampler, size and model from an API-form graph."""
    samplers = [
        node_id
        for node_id, node in graph.items()
        if isinstance(node, dict) and {"positive", "negative"} <= _inputs(node).keys()
    ]
    if not samplers:
        return {}
    inputs = _inputs(graph[min(samplers, key=_sort_key)])
    found: dict[str, Any] = {
        "prompt": _text(graph, inputs.get("positive")),
        "negative_prompt": _text(graph, inputs.get("negative")),
        "seed": _scalar(graph, inputs.get("seed", inputs.get("noise_seed")), ("seed", "noise_seed", "value")),
        "steps": _scalar(graph, inputs.get("steps"), ("steps", "value")),
        "cfg_scale": _scalar(graph, inputs.get("cfg"), ("cfg", "value")),
        "sampler": _scalar(graph, inputs.get("sampler_name"), ("sampler_name", "value")),
        "scheduler": _scalar(graph, inputs.get("scheduler"), ("scheduler", "value")),
        "denoise": _scalar(graph, inputs.get("denoise"), ("denoise", "value")),
        "model": _checkpoint(graph, inputs.get("model")),
    }
    latent = _inputs(_node(graph, inputs.get("latent_image")))
    if isinstance(latent.get("width"), int) and isinstance(latent.get("height"), int):
        found["width"], found["height"] = latent["width"], latent["height"]
    return {key: value for key, value in found.items() if value is not None}


# Editor-form widgets_values order of the nodes we read.
_WIDGETS = {
    "KSampler": ("seed", None, "steps", "cfg", "sampler_name", "scheduler", "denoise"),
    "KSamplerAdvanced": (None, "noise_seed", None, "steps", "cfg", "sampler_name", "scheduler"),
    "CLIPTextEncode": ("text",),
    "EmptyLatentImage": ("width", "height", "batch_size"),
    "CheckpointLoaderSimple": ("ckpt_name",),
}


def prompt_from_workflow(workflow: dict[str, Any]) -> Graph:
    """Turn the editor's graph into the API form, for the nodes we read."""
    nodes = workflow.get("nodes")
    links = workflow.get("links")
    if not isinstance(nodes, list) or not isinstance(links, list):
        return {}
    origin = {link[0]: [str(link[1]), link[2]] for link in links if isinstance(link, list) and len(link) >= 3}
    graph: Graph = {}
    for node in nodes:
        if not isinstance(node, dict) or "id" not in node:
            continue
        inputs: dict[str, Any] = {}
        for slot in node.get("inputs") or []:
            if isinstance(slot, dict) and slot.get("link") in origin:
                inputs[str(slot.get("name"))] = origin[slot["link"]]
        values = node.get("widgets_values")
        names = _WIDGETS.get(str(node.get("type")), ())
        if isinstance(values, list):
            for name, value in zip(names, values, strict=False):
                if name is not None:
                    inputs.setdefault(name, value)
        graph[str(node["id"])] = {"class_type": node.get("type"), "inputs": inputs}
    return graph


def read_comfyui(chunks: dict[str, str]) -> dict[str, Any]:
    """Settings from ComfyUI's ``prompt`` chunk, else its ``workflow`` chunk; {} when neither parses."""
    for key, to_graph in (("prompt", lambda data: data), ("workflow", prompt_from_workflow)):
        try:
            data = parse_json(chunks[key])
        except (KeyError, TypeError, UntrustedData):
            continue
        if isinstance(data, dict) and (found := settings_from_prompt(to_graph(data))):
            return found
    return {}


def request_fields(found: dict[str, Any]) -> dict[str, Any]:
    """Request fields from ComfyUI settings; an unknown sampler is kept for validation to report."""
    data = {
        key: found[key]
        for key in ("prompt", "negative_prompt", "seed", "steps", "cfg_scale", "width", "height")
        if key in found
    }
    if "sampler" in found:
        data["sampler"] = SAMPLERS.get(str(found["sampler"]), str(found["sampler"]))
    if found.get("scheduler") in SCHEDULES:
        data["schedule_type"] = SCHEDULES[found["scheduler"]]
    if "model" in found:
        data["model"] = found["model"]
    return data
