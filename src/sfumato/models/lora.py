"""LoRA (kohya/A1111 safetensors, LoCon too) applied to a model for one job, then removed exactly.

Each LoRA's low-rank update ``up @ down * alpha / rank * weight`` is added to the weights it
targets; the original tensors are kept aside and copied back afterwards, so the next job sees the
model bit for bit as it was.
"""

from __future__ import annotations

import hashlib
import json
import struct
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sfumato.core.errors import UnsupportedModel

if TYPE_CHECKING:
    import torch

    from sfumato.models.components import Components

_TE_WIDTH = {768: "sd1", 1024: "sd2"}


@dataclass(frozen=True)
class LoraSpec:
    """A LoRA to apply: its file and its weights for the UNet and the text encoder(s)."""

    path: Path
    unet_weight: float = 1.0
    text_encoder_weight: float = 1.0
    name: str = ""

    @property
    def label(self) -> str:
        return self.name or self.path.stem


@dataclass
class AppliedLora:
    spec: LoraSpec
    hash: str  # A1111's 12-hex LoRA hash
    layers: int  # weights it changed
    notes: list[str] = field(default_factory=list)


def addnet_hash(path: Path) -> str:
    """SHA-256 of a safetensors file's tensor data (after its header): A1111's LoRA hash."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        (length,) = struct.unpack("<Q", handle.read(8))
        handle.seek(8 + length)
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def lora_hash(path: Path) -> str:
    """The 12-hex hash A1111 writes in ``Lora hashes``: ``sshs_model_hash`` metadata, else the addnet hash."""
    from sfumato.models.safety import read_safetensors_header

    header = read_safetensors_header(path)
    stored = header.metadata.get("sshs_model_hash")
    return (stored or addnet_hash(path))[:12]


def format_hashes(entries: Sequence[tuple[str, str]]) -> str:
    """``Lora hashes`` / ``TI hashes`` value: ``name: hash, name: hash`` (A1111 quotes it in infotext)."""
    return ", ".join(f"{name.replace(':', '').replace(',', '')}: {digest}" for name, digest in entries)


def _module_table(components: Components) -> dict[str, tuple[str, Any]]:
    """kohya name (``lora_unet_down_blocks_0_…``) -> (which model, module)."""
    table: dict[str, tuple[str, Any]] = {}
    for name, module in components.unet.named_modules():
        table["lora_unet_" + name.replace(".", "_")] = ("unet", module)
    encoders = [("te", components.text_encoder)]
    if components.text_encoder_2 is not None:
        encoders = [("te1", components.text_encoder), ("te2", components.text_encoder_2)]
    for prefix, encoder in encoders:
        flat = not hasattr(encoder, "text_model")  # transformers 5 dropped CLIPTextModel's text_model level
        for name, module in encoder.named_modules():
            full = ("text_model." + name if flat else name).replace(".", "_")
            table[f"lora_{prefix}_{full}"] = (prefix, module)
            if prefix == "te1":
                table[f"lora_te_{full}"] = (prefix, module)
    return table


def _lora_architecture(tensors: dict[str, torch.Tensor]) -> str:
    if any(key.startswith("lora_te2_") for key in tensors):
        return "sdxl"
    for key, value in tensors.items():
        if key.startswith(("lora_te_", "lora_te1_")) and key.endswith("lora_down.weight"):
            return _TE_WIDTH.get(int(value.shape[-1]), "an unknown model")
    return "an unknown model"


def _to_diffusers_names(tensors: dict[str, torch.Tensor], components: Components) -> dict[str, torch.Tensor]:
    """LoRAs named after the original SD blocks (input_blocks…) renamed to diffusers' blocks."""
    if not any("input_blocks" in key or "output_blocks" in key or "middle_block" in key for key in tensors):
        return tensors
    from diffusers.loaders.lora_conversion_utils import _maybe_map_sgm_blocks_to_diffusers

    return _maybe_map_sgm_blocks_to_diffusers(dict(tensors), components.unet.config)


def lora_deltas(
    tensors: dict[str, torch.Tensor], components: Components, label: str
) -> tuple[list[tuple[str, torch.Tensor, torch.Tensor]], list[str]]:
    """[(target model, weight tensor, update)] for one LoRA; raises if it is for another model."""
    tensors = _to_diffusers_names(tensors, components)
    unsupported = [key for key in tensors if any(t in key for t in ("hada_w1", "lokr_w1", "oft_", ".diff"))]
    if unsupported:
        raise UnsupportedModel(
            f"{label} is a LyCORIS kind Sfumato cannot apply yet ({unsupported[0].split('.')[-2]}).",
            "Use a LoRA or LoCon file (keys ending in lora_down/lora_up).",
        )
    table = _module_table(components)
    downs = [key for key in tensors if key.endswith(".lora_down.weight")]
    if not downs:
        raise UnsupportedModel(
            f"{label} holds no LoRA weights (no lora_down/lora_up tensors).", "Check that the file is a LoRA."
        )
    deltas: list[tuple[str, torch.Tensor, torch.Tensor]] = []
    missing: list[str] = []
    for key in downs:
        base = key.removesuffix(".lora_down.weight")
        target = table.get(base)
        weight = getattr(target[1], "weight", None) if target else None
        if target is None or weight is None:
            missing.append(base)
            continue
        down = tensors[key].float()
        up = tensors[base + ".lora_up.weight"].float()
        rank = down.shape[0]
        alpha = float(tensors[base + ".alpha"].item()) if base + ".alpha" in tensors else float(rank)
        delta = (up.flatten(1) @ down.flatten(1)) * (alpha / rank)
        if delta.numel() != weight.numel():
            raise _wrong_architecture(label, tensors, components)
        deltas.append((target[0], weight, delta.reshape(weight.shape)))
    if not deltas:
        raise _wrong_architecture(label, tensors, components)
    notes = (
        [f"{label}: {len(missing)} of its {len(downs)} layers are not in this model and were ignored."]
        if missing
        else []
    )
    return deltas, notes


def _wrong_architecture(
    label: str, tensors: dict[str, torch.Tensor], components: Components
) -> UnsupportedModel:
    made_for = _lora_architecture(tensors)
    return UnsupportedModel(
        f"LoRA {label} was made for {made_for}, but the model is {components.info.architecture} "
        f"({components.info.name}); its layers do not fit.",
        "Use a LoRA made for this model's architecture, or switch model.",
    )


@contextmanager
def applied_loras(components: Components, loras: Sequence[LoraSpec]) -> Iterator[list[AppliedLora]]:
    """Apply ``loras`` for the duration of the ``with`` block; the model is restored exactly after."""
    import torch

    from sfumato.models.safety import load_safetensors

    originals: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}
    applied: list[AppliedLora] = []
    try:
        with torch.no_grad():
            for spec in loras:
                tensors = load_safetensors(spec.path)
                deltas, notes = lora_deltas(tensors, components, spec.label)
                for target, weight, delta in deltas:
                    scale = spec.unet_weight if target == "unet" else spec.text_encoder_weight
                    if scale == 0:
                        continue
                    if id(weight) not in originals:
                        originals[id(weight)] = (weight, weight.detach().clone())
                    weight.add_((delta * scale).to(device=weight.device, dtype=weight.dtype))
                applied.append(AppliedLora(spec, lora_hash(spec.path), len(deltas), notes))
        yield applied
    finally:
        with torch.no_grad():
            for weight, original in originals.values():
                weight.copy_(original)


def read_metadata(path: Path) -> dict[str, str]:
    """The safetensors ``__metadata__`` of a LoRA (training info kohya writes), for display."""
    with path.open("rb") as handle:
        (length,) = struct.unpack("<Q", handle.read(8))
        header = json.loads(handle.read(length))
    return dict(header.get("__metadata__", {}))
