"""The generation settings inside a ComfyUI picture (reference/anchors-reliability-ux.md §3.2).

ComfyUI stores the graph, not the settings: ``prompt`` (API form: node id -> ``class_type`` and
``inputs``, where a link is ``[node_id, slot]``) and ``workflow`` (the editor's graph: schema 0.4 with
links as ``[id, from, slot, to, slot, type]`` lists, or schema 1 with links as objects). We find the
first-pass sampler (``KSampler``, ``KSamplerAdvanced``, ``SamplerCustom`` or ``SamplerCustomAdvanced``
with its noise, guider, sampler and sigmas nodes) and follow its links to the text encoders, the
latent, the LoRA loaders and the checkpoint.

Our own reader rather than sd-parsers': sd-parsers (0.6) needs both chunks, reads schema-0.4 links
only, and has no SamplerCustomAdvanced, LoRA loaders or size.
"""

from __future__ import annotations

from typing import Any

from sfumato.archive.foreign import model_name
from sfumato.core.untrusted import UntrustedData, parse_json

_TEXT_KEYS = ("text", "text_g", "text_l", "clip_l", "t5xxl", "string", "value", "prompt")
_MAX_DEPTH = 32
_LORA_LOADERS = ("LoraLoader", "LoraLoaderModelOnly")
# Sigma nodes of SamplerCustom(Advanced) whose schedule has an A1111 name.
_SIGMA_NODES = {
    "KarrasScheduler": "karras",
    "ExponentialScheduler": "exponential",
    "PolyexponentialScheduler": "polyexponential",
    "AlignYourStepsScheduler": "align_your_steps",
    "BetaSamplingScheduler": "beta",
}

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
    """The prompt text behind a conditioning link (through combine / ControlNet / guidance nodes)."""
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


def _model_chain(graph: Graph, link: Any) -> tuple[str | None, list[tuple[str, float]]]:
    """The checkpoint (or UNet) behind a model link, and the LoRAs loaded on the way, nearest last."""
    loras: list[tuple[str, float]] = []
    for _ in range(_MAX_DEPTH):
        node = _node(graph, link)
        inputs = _inputs(node)
        if node is not None and node.get("class_type") in _LORA_LOADERS:
            name = _scalar(graph, inputs.get("lora_name"), ("lora_name", "value"))
            weight = _scalar(graph, inputs.get("strength_model"), ("strength_model", "value"))
            if isinstance(name, str) and isinstance(weight, (int, float)) and weight != 0:
                loras.append((model_name(name) or name, float(weight)))
        for key in ("ckpt_name", "unet_name", "model_name"):
            if isinstance(inputs.get(key), str):
                return model_name(inputs[key]), loras[::-1]
        link = inputs.get("model")
        if link is None:
            break
    return None, loras[::-1]


def _sort_key(node_id: str) -> tuple[int, str]:
    return (int(node_id), node_id) if node_id.isdigit() else (1 << 62, node_id)


def _is_sampler(node: Any) -> bool:
    inputs = _inputs(node) if isinstance(node, dict) else {}
    return "latent_image" in inputs and ({"positive", "negative"} <= inputs.keys() or "guider" in inputs)


def _first_pass(graph: Graph, samplers: list[str]) -> str:
    """The sampler that starts from an empty latent (a hires or refiner pass starts from another's)."""

    def from_scratch(node_id: str) -> bool:
        latent = _inputs(_node(graph, _inputs(graph[node_id]).get("latent_image")))
        return "width" in latent and "height" in latent

    fresh = [node_id for node_id in samplers if from_scratch(node_id)]
    return min(fresh or samplers, key=_sort_key)


def _linked_inputs(graph: Graph, inputs: dict[str, Any], key: str) -> dict[str, Any]:
    return _inputs(_node(graph, inputs.get(key)))


def settings_from_prompt(graph: Graph) -> dict[str, Any]:
    """Prompt (with ``<lora:…>`` for each LoRA loader), negative prompt, seed, steps, cfg, sampler,
    schedule, size and model from an API-form graph."""
    samplers = [node_id for node_id, node in graph.items() if _is_sampler(node)]
    if not samplers:
        return {}
    inputs = _inputs(graph[_first_pass(graph, samplers)])
    guider = _linked_inputs(graph, inputs, "guider")  # CFGGuider / BasicGuider
    noise = _linked_inputs(graph, inputs, "noise")  # RandomNoise
    chosen = _linked_inputs(graph, inputs, "sampler")  # KSamplerSelect
    sigmas_node = _node(graph, inputs.get("sigmas"))  # BasicScheduler and kin
    sigmas = _inputs(sigmas_node)
    merged = {**sigmas, **chosen, **noise, **guider, **inputs}
    schedule = _scalar(graph, merged.get("scheduler"), ("scheduler", "value"))
    if schedule is None and sigmas_node is not None:
        schedule = _SIGMA_NODES.get(str(sigmas_node.get("class_type")))
    positive = merged.get("positive", merged.get("conditioning"))
    model, loras = _model_chain(graph, merged.get("model"))
    found: dict[str, Any] = {
        "prompt": _text(graph, positive),
        "negative_prompt": _text(graph, merged.get("negative")),
        "seed": _scalar(graph, merged.get("seed", merged.get("noise_seed")), ("seed", "noise_seed", "value")),
        "steps": _scalar(graph, merged.get("steps"), ("steps", "value")),
        "cfg_scale": _scalar(graph, merged.get("cfg"), ("cfg", "value")),
        "sampler": _scalar(graph, merged.get("sampler_name"), ("sampler_name", "value")),
        "scheduler": schedule,
        "denoise": _scalar(graph, merged.get("denoise"), ("denoise", "value")),
        "model": model,
    }
    if loras:
        tags = " ".join(f"<lora:{name}:{weight:g}>" for name, weight in loras)
        found["prompt"] = f"{found['prompt'] or ''} {tags}".strip()
    latent = _inputs(_node(graph, inputs.get("latent_image")))
    width = _scalar(graph, latent.get("width"), ("width", "value"))
    height = _scalar(graph, latent.get("height"), ("height", "value"))
    if isinstance(width, int) and isinstance(height, int):
        found["width"], found["height"] = width, height
    return {key: value for key, value in found.items() if value is not None}


# Editor-form widgets_values order of the nodes we read (None: a widget we skip, such as
# "control_after_generate").
_WIDGETS: dict[str, tuple[str | None, ...]] = {
    "KSampler": ("seed", None, "steps", "cfg", "sampler_name", "scheduler", "denoise"),
    "KSamplerAdvanced": (None, "noise_seed", None, "steps", "cfg", "sampler_name", "scheduler"),
    "SamplerCustom": (None, "noise_seed", None, "cfg"),
    "RandomNoise": ("noise_seed",),
    "KSamplerSelect": ("sampler_name",),
    "BasicScheduler": ("scheduler", "steps", "denoise"),
    "KarrasScheduler": ("steps",),
    "ExponentialScheduler": ("steps",),
    "PolyexponentialScheduler": ("steps",),
    "AlignYourStepsScheduler": (None, "steps", "denoise"),
    "BetaSamplingScheduler": ("steps",),
    "CFGGuider": ("cfg",),
    "CLIPTextEncode": ("text",),
    "CLIPTextEncodeSDXL": (None, None, None, None, None, None, "text_g", "text_l"),
    "CLIPTextEncodeFlux": ("clip_l", "t5xxl"),
    "EmptyLatentImage": ("width", "height", "batch_size"),
    "EmptySD3LatentImage": ("width", "height", "batch_size"),
    "CheckpointLoaderSimple": ("ckpt_name",),
    "UNETLoader": ("unet_name",),
    "LoraLoader": ("lora_name", "strength_model", "strength_clip"),
    "LoraLoaderModelOnly": ("lora_name", "strength_model"),
    "PrimitiveNode": ("value",),
}


def _link_origins(links: list[Any]) -> dict[Any, list[Any]]:
    """Link id -> [origin node id, origin slot], from either schema's links."""
    origins: dict[Any, list[Any]] = {}
    for link in links:
        if isinstance(link, list) and len(link) >= 3:  # schema 0.4
            origins[link[0]] = [str(link[1]), link[2]]
        elif isinstance(link, dict) and {"id", "origin_id", "origin_slot"} <= link.keys():  # schema 1
            origins[link["id"]] = [str(link["origin_id"]), link["origin_slot"]]
    return origins


def prompt_from_workflow(workflow: dict[str, Any]) -> Graph:
    """Turn the editor's graph (schema 0.4 or 1) into the API form, for the nodes we read."""
    nodes = workflow.get("nodes")
    links = workflow.get("links")
    if not isinstance(nodes, list) or not isinstance(links, list):
        return {}
    origin = _link_origins(links)
    graph: Graph = {}
    for node in nodes:
        if not isinstance(node, dict) or "id" not in node:
            continue
        inputs: dict[str, Any] = {}
        for slot in node.get("inputs") or []:
            if isinstance(slot, dict) and isinstance(slot.get("link"), int) and slot["link"] in origin:
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
