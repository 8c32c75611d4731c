"""LoRA (kohya/A1111 safetensors; LyCORIS LoCon, LoHa, LoKr) applied to a model for one job,
then removed exactly.

Each file's weight update (for a LoRA ``up @ down * alpha / rank``; see :func:`module_delta` for
the other kinds), times the user's weight, is added to the weights it targets; the original tensors are kept aside and copied back afterwards, so the next job sees the
model bit for bit as it was.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sfumato.core.errors import CorruptModelFile, UnsupportedModel

if TYPE_CHECKING:
    import torch

    from sfumato.models.components import Components

_TE_WIDTH = {768: "sd1", 1024: "sd2"}
_CROSS_ATTENTION_WIDTH = {768: "sd1", 1024: "sd2", 2048: "sdxl", 1280: "sdxl-refiner"}


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
        prefix = handle.read(8)
        (length,) = struct.unpack("<Q", prefix.ljust(8, b"\0"))
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


def kohya_module_table(components: Components) -> dict[str, tuple[str, Any]]:
    """kohya name (``lora_unet_down_blocks_0_…``) -> (which model, module).

    SDXL's first encoder is listed twice (``lora_te1_`` and ``lora_te_``). SDXL's refiner lists its
    one encoder as ``lora_te_``; files that name it ``lora_te2_`` are matched in :func:`lora_deltas`.
    """
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
    for key, value in tensors.items():
        # cross-attention keys are as wide as the text the UNet reads, which tells SDXL from its refiner
        if key.startswith("lora_unet_") and key.endswith("attn2_to_k.lora_down.weight"):
            found = _CROSS_ATTENTION_WIDTH.get(int(value.shape[-1]))
            if found:
                return found
    if any(key.startswith("lora_te2_") for key in tensors):
        return "sdxl"
    for key, value in tensors.items():
        # the input side of a text-encoder layer is as wide as the encoder (LoRA down, LoHa w1_b)
        if key.startswith(("lora_te_", "lora_te1_")) and key.endswith(("lora_down.weight", "hada_w1_b")):
            return _TE_WIDTH.get(int(value.shape[-1]), "an unknown model")
    return "an unknown model"


def _to_diffusers_names(tensors: dict[str, torch.Tensor], components: Components) -> dict[str, torch.Tensor]:
    """LoRAs named after the original SD blocks (input_blocks…) renamed to diffusers' blocks."""
    if not any("input_blocks" in key or "output_blocks" in key or "middle_block" in key for key in tensors):
        return tensors
    from diffusers.loaders.lora_conversion_utils import _maybe_map_sgm_blocks_to_diffusers

    return _maybe_map_sgm_blocks_to_diffusers(dict(tensors), components.unet.config)


# The tensor names that mark a module's weights in each kind of file, by the kind they belong to.
_KIND_MARKERS = {
    "lora": (".lora_down.weight",),
    "loha": (".hada_w1_a",),
    "lokr": (".lokr_w1", ".lokr_w1_a"),
}
_UNSUPPORTED_MARKERS = ("oft_", ".diff", ".oft_blocks", ".b_norm", ".w_norm")


def _bases(tensors: dict[str, torch.Tensor]) -> dict[str, str]:
    """Module name -> kind of update stored for it."""
    found: dict[str, str] = {}
    for key in tensors:
        for kind, markers in _KIND_MARKERS.items():
            for marker in markers:
                if key.endswith(marker):
                    found.setdefault(key.removesuffix(marker), kind)
    return found


def _scale(tensors: dict[str, torch.Tensor], base: str, rank: int | None) -> float:
    alpha = tensors.get(base + ".alpha")
    if alpha is None or rank is None:
        return 1.0
    return float(alpha.item()) / rank


def _tucker(core: torch.Tensor, out_factor: torch.Tensor, in_factor: torch.Tensor) -> torch.Tensor:
    """A conv weight [out, in, kh, kw] from a Tucker core [r, r, kh, kw] and factors [r, out], [r, in]."""
    import torch

    return torch.einsum("i j ..., i o, j c -> o c ...", core, out_factor, in_factor)


def module_delta(tensors: dict[str, torch.Tensor], base: str, kind: str) -> torch.Tensor:
    """The weight update one module of a LoRA/LoCon, LoHa or LoKr file stores (not yet reshaped).

    LoRA: ``up @ down`` (or, with ``lora_mid``, Tucker-decomposed for convolutions) * alpha / rank.
    LoHa: ``(w1_a @ w1_b) * (w2_a @ w2_b)`` (or Tucker with ``hada_t1/t2``) * alpha / rank.
    LoKr: ``kron(w1, w2)``, each factor whole or as ``a @ b`` (``w2`` Tucker with ``lokr_t2``),
    * alpha / rank when a factor is decomposed, else 1 (LyCORIS stores no usable rank then).
    """
    import torch

    def get(name: str) -> torch.Tensor | None:
        value = tensors.get(f"{base}.{name}")
        return None if value is None else value.float()

    if kind == "lora":
        down, up, mid = get("lora_down.weight"), get("lora_up.weight"), get("lora_mid.weight")
        assert down is not None and up is not None
        rank = down.shape[0]
        if mid is not None:
            return _tucker(mid, up.flatten(1).T, down.flatten(1)) * _scale(tensors, base, rank)
        return (up.flatten(1) @ down.flatten(1)) * _scale(tensors, base, rank)
    if kind == "loha":
        w1a, w1b, w2a, w2b = get("hada_w1_a"), get("hada_w1_b"), get("hada_w2_a"), get("hada_w2_b")
        assert w1a is not None and w1b is not None and w2a is not None and w2b is not None
        t1, t2 = get("hada_t1"), get("hada_t2")
        scale = _scale(tensors, base, w1b.shape[0])
        if t1 is not None and t2 is not None:
            return _tucker(t1, w1a, w1b) * _tucker(t2, w2a, w2b) * scale
        return (w1a @ w1b) * (w2a @ w2b) * scale
    w1, w1a, w1b = get("lokr_w1"), get("lokr_w1_a"), get("lokr_w1_b")
    w2, w2a, w2b, t2 = get("lokr_w2"), get("lokr_w2_a"), get("lokr_w2_b"), get("lokr_t2")
    rank = w1b.shape[0] if w1b is not None else w2b.shape[0] if w2b is not None else None
    if w1 is None:
        assert w1a is not None and w1b is not None
        w1 = w1a @ w1b
    if w2 is None:
        assert w2a is not None and w2b is not None
        w2 = _tucker(t2, w2a, w2b) if t2 is not None else w2a @ w2b
    if w2.dim() == 4:
        w1 = w1[:, :, None, None]
    return torch.kron(w1, w2) * _scale(tensors, base, rank)


def lora_deltas(
    tensors: dict[str, torch.Tensor], components: Components, label: str, trained_on: str = ""
) -> tuple[list[tuple[str, torch.Tensor, torch.Tensor]], list[str]]:
    """[(target model, weight tensor, update)] for one LoRA; raises if it is for another model."""
    tensors = _to_diffusers_names(tensors, components)
    unsupported = [key for key in tensors if any(t in key for t in _UNSUPPORTED_MARKERS)]
    if unsupported:
        raise UnsupportedModel(
            f"{label} is a LyCORIS kind Sfumato cannot apply yet ({unsupported[0].split('.')[-2]}).",
            "Use a LoRA, LoCon, LoHa or LoKr file.",
        )
    table = kohya_module_table(components)
    bases = _bases(tensors)
    if not bases:
        raise UnsupportedModel(
            f"{label} holds no LoRA weights (no lora_down/lora_up, LoHa or LoKr tensors).",
            "Check that the file is a LoRA.",
        )
    deltas: list[tuple[str, torch.Tensor, torch.Tensor]] = []
    missing: list[str] = []
    names = _refiner_names(bases) if components.is_refiner else {}
    for base, kind in bases.items():
        target = table.get(names.get(base, base))
        weight = getattr(target[1], "weight", None) if target else None
        if target is None or weight is None:
            missing.append(base)
            continue
        try:
            delta = module_delta(tensors, base, kind)
        except (RuntimeError, ValueError, IndexError, TypeError) as exc:  # shapes that do not multiply
            raise CorruptModelFile(
                f"{label}: its layer {base} is malformed ({str(exc).splitlines()[0][:200]}).",
                "The LoRA file is damaged or not a LoRA; get it again.",
            ) from None
        if delta.numel() != weight.numel():
            raise _wrong_architecture(label, tensors, components, trained_on)
        deltas.append((target[0], weight, delta.reshape(weight.shape)))
    if not deltas:
        raise _wrong_architecture(label, tensors, components, trained_on)
    notes = (
        [f"{label}: {len(missing)} of its {len(bases)} layers are not in this model and were ignored."]
        if missing
        else []
    )
    return deltas, notes


def _refiner_names(bases: dict[str, str]) -> dict[str, str]:
    """Names in a LoRA for SDXL's refiner -> names in its module table (where its encoder is ``lora_te_``).

    The refiner's one encoder is SDXL's second, so kohya's ``lora_te2_`` names it; in a file that
    has ``lora_te2_`` layers, ``lora_te_``/``lora_te1_`` layers are CLIP-L's, which the refiner lacks.
    """
    if not any(base.startswith("lora_te2_") for base in bases):
        return {}
    renamed: dict[str, str] = {}
    for base in bases:
        if base.startswith("lora_te2_"):
            renamed[base] = "lora_te_" + base.removeprefix("lora_te2_")
        elif base.startswith("lora_te_"):
            renamed[base] = "lora_te1_" + base.removeprefix("lora_te_")  # not in the refiner: ignored
    return renamed


def _wrong_architecture(
    label: str, tensors: dict[str, torch.Tensor], components: Components, trained_on: str = ""
) -> UnsupportedModel:
    made_for = _lora_architecture(tensors) + (f" (trained on {trained_on})" if trained_on else "")
    return UnsupportedModel(
        f"LoRA {label} was made for {made_for}, but the model is {components.info.architecture} "
        f"({components.info.name}); its layers do not fit.",
        "Use a LoRA made for this model's architecture, or switch model.",
    )


@contextmanager
def applied_loras(components: Components, loras: Sequence[LoraSpec]) -> Iterator[list[AppliedLora]]:
    """Apply ``loras`` for the duration of the ``with`` block; the model is restored exactly after."""
    import torch

    from sfumato.models.safety import load_safetensors, read_safetensors_header

    originals: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}
    applied: list[AppliedLora] = []
    fast_unet = components.fast_unet
    try:
        with torch.no_grad():
            for spec in loras:
                tensors = load_safetensors(spec.path)
                trained_on = read_safetensors_header(spec.path).metadata.get("ss_sd_model_name", "")
                deltas, notes = lora_deltas(tensors, components, spec.label, trained_on)
                for target, weight, delta in deltas:
                    scale = spec.unet_weight if target == "unet" else spec.text_encoder_weight
                    if scale == 0:
                        continue
                    if target == "unet":  # a compiled UNet's frozen weights would not see the LoRA
                        components.fast_unet = None
                    if id(weight) not in originals:
                        originals[id(weight)] = (weight, weight.detach().clone())
                    weight.add_((delta * scale).to(device=weight.device, dtype=weight.dtype))
                applied.append(AppliedLora(spec, lora_hash(spec.path), len(deltas), notes))
        yield applied
    finally:
        components.fast_unet = fast_unet
        with torch.no_grad():
            for weight, original in originals.values():
                weight.copy_(original)


def read_metadata(path: Path) -> dict[str, str]:
    """The safetensors ``__metadata__`` of a LoRA (training info kohya writes), for display."""
    from sfumato.models.safety import read_safetensors_header

    return read_safetensors_header(path).metadata
