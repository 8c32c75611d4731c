"""Which models an embedding or LoRA fits, told from file headers alone (nothing is loaded).

A textual-inversion embedding fits a model whose text encoder has vectors as wide as its own (an SDXL
embedding carries both of SDXL's widths). A LoRA fits a model whose UNet reads text as wide as its
cross-attention layers do, and whose text encoders are as wide as its text-encoder layers. Checkpoints
are described the same way: a diffusers folder by its configs, a single file by its architecture.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from sfumato.core.errors import SfumatoError

if TYPE_CHECKING:
    from sfumato.models.library import ModelEntry

# text-encoder widths and the UNet's cross-attention width of each architecture
ARCHITECTURE_SHAPES: dict[str, tuple[tuple[int, ...], int]] = {
    "sd1": ((768,), 768),
    "sd2": ((1024,), 1024),
    "sdxl": ((768, 1280), 2048),
    "sdxl-refiner": ((1280,), 1280),
}
_FAMILY_BY_WIDTHS = {
    (768,): "SD1 (768-wide text vectors)",
    (1024,): "SD2 (1024-wide text vectors)",
    (768, 1280): "SDXL (768 + 1280-wide text vectors)",
    (1280,): "SDXL refiner (1280-wide text vectors)",
}
_FAMILY_BY_CROSS_ATTENTION = {768: "SD1", 1024: "SD2", 2048: "SDXL", 1280: "SDXL refiner"}


@dataclass(frozen=True)
class Shape:
    """What a network needs, or what a checkpoint offers; None = not known from the file."""

    text_widths: tuple[int, ...] | None = None
    cross_attention: int | None = None

    @property
    def family(self) -> str:
        if self.text_widths is not None:
            found = _FAMILY_BY_WIDTHS.get(self.text_widths)
            return found or f"a model with {' + '.join(map(str, self.text_widths))}-wide text vectors"
        if self.cross_attention is not None:
            found = _FAMILY_BY_CROSS_ATTENTION.get(self.cross_attention)
            return found or f"a model whose UNet reads {self.cross_attention}-wide text"
        return "unknown"


@dataclass(frozen=True)
class Compatibility:
    name: str
    kind: str  # embedding or lora
    family: str  # what it was made for, in words
    models: tuple[str, ...]  # the library's checkpoints it fits
    problem: str = ""  # why it could not be read, when it could not

    def to_json(self) -> dict[str, object]:
        return {
            "name": self.name,
            "kind": self.kind,
            "family": self.family,
            "models": list(self.models),
            "problem": self.problem,
        }


def embedding_shape(path: Path) -> Shape:
    from sfumato.models.safety import read_safetensors_header

    tensors = read_safetensors_header(path).tensors
    if "clip_l" in tensors and "clip_g" in tensors:
        return Shape((tensors["clip_l"].shape[-1], tensors["clip_g"].shape[-1]))
    wanted = [key for key in tensors if key == "emb_params" or key.startswith("string_to_param")]
    key = wanted[0] if wanted else next(iter(tensors), None)
    if key is None or not tensors[key].shape:
        return Shape()
    return Shape((int(tensors[key].shape[-1]),))


def lora_shape(path: Path) -> Shape:
    from sfumato.models.safety import read_safetensors_header

    tensors = read_safetensors_header(path).tensors
    cross = None
    first = second = None
    for key, info in tensors.items():
        if not info.shape:
            continue
        width = int(info.shape[-1]) if len(info.shape) == 2 else None
        if key.startswith("lora_unet_") and key.endswith("attn2_to_k.lora_down.weight"):
            cross = width
        elif key.startswith(("lora_te_", "lora_te1_")) and key.endswith("q_proj.lora_down.weight"):
            first = width
        elif key.startswith("lora_te2_") and key.endswith("q_proj.lora_down.weight"):
            second = width
    widths = tuple(w for w in (first, second) if w is not None) or None
    return Shape(widths, cross)


def checkpoint_shape(entry: ModelEntry) -> Shape:
    """A diffusers folder by its configs; a single file by its architecture (identified)."""
    from sfumato.models.safety import read_model_config

    if entry.path.is_dir():
        widths = []
        for part in ("text_encoder", "text_encoder_2"):
            config = entry.path / part / "config.json"
            if config.is_file():
                widths.append(int(read_model_config(config).get("hidden_size", 0)))
        unet = entry.path / "unet" / "config.json"
        cross = int(read_model_config(unet).get("cross_attention_dim", 0)) if unet.is_file() else None
        return Shape(tuple(widths) or None, cross)
    known = ARCHITECTURE_SHAPES.get(entry.architecture or "")
    return Shape(*known) if known else Shape()


def fits(network: Shape, checkpoint: Shape) -> bool:
    """Every width the network states matches the checkpoint's (an SD1 embedding on SDXL's first
    encoder only is a choice the prompt makes, not a fit)."""
    if network.text_widths is None and network.cross_attention is None:
        return False
    if network.text_widths is not None:
        offered = checkpoint.text_widths or ()
        if network.text_widths != offered[: len(network.text_widths)] or len(offered) != len(
            network.text_widths
        ):
            return False
    return network.cross_attention is None or network.cross_attention == checkpoint.cross_attention


def compatibility(entries: list[ModelEntry]) -> list[Compatibility]:
    """Every embedding and LoRA of ``entries`` with the checkpoints among ``entries`` it fits."""
    checkpoints = []
    for entry in entries:
        if entry.kind == "checkpoint":
            try:
                checkpoints.append((entry.name, checkpoint_shape(entry)))
            except SfumatoError:
                continue
    found = []
    for entry in entries:
        if entry.kind not in ("embedding", "lora"):
            continue
        try:
            shape = embedding_shape(entry.path) if entry.kind == "embedding" else lora_shape(entry.path)
        except SfumatoError as error:
            found.append(Compatibility(entry.name, entry.kind, "unknown", (), error.message))
            continue
        models = tuple(name for name, offered in checkpoints if fits(shape, offered))
        found.append(Compatibility(entry.name, entry.kind, shape.family, models))
    return found
