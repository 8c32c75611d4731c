"""Textual-inversion embeddings: learned token vectors used in prompts by their file name.

Read from safetensors only (a pickled ``.pt`` is refused with a hint to convert it). Understood
layouts: A1111 (``emb_params`` or ``string_to_param.*``), diffusers ``learned_embeds`` (one tensor
named after the token), SDXL (``clip_l`` and ``clip_g``; SDXL's refiner uses ``clip_g`` alone).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from sfumato.core.errors import CorruptModelFile, UnsupportedModel

if TYPE_CHECKING:
    import torch

    from sfumato.models.components import Components

# Token-vector width of each text encoder Stable Diffusion uses.
WIDTH_ARCHITECTURE = {768: "sd1", 1024: "sd2"}


@dataclass(frozen=True)
class Embedding:
    """Vectors per text encoder: ``clip_l`` (SD1, SDXL's first), ``clip_g`` (SDXL's second) or
    ``clip`` when the file does not say (one encoder: SD1 or SD2, told apart by width)."""

    name: str
    vectors: dict[str, torch.Tensor]  # each [tokens, width]
    path: Path | None = None
    hash: str = ""  # A1111 "TI hashes": first 12 hex of the file's SHA-256
    trained_on: str = ""  # the checkpoint it was trained on, when the file says (A1111's sd_checkpoint_name)

    @property
    def tokens(self) -> int:
        return next(iter(self.vectors.values())).shape[0]

    @property
    def architecture(self) -> str:
        if "clip_g" in self.vectors:
            return "sdxl"
        width = next(iter(self.vectors.values())).shape[-1]
        found = WIDTH_ARCHITECTURE.get(width, f"an unknown model ({width}-wide vectors)")
        return f"{found}, trained on {self.trained_on}" if self.trained_on else found


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def load_embedding(path: Path, name: str | None = None) -> Embedding:
    """Read a textual-inversion file. Pickles raise UnsafeModelFile (convert them first)."""
    from sfumato.models.safety import load_safetensors, read_safetensors_header

    tensors = load_safetensors(path)
    trained_on = read_safetensors_header(path).metadata.get("sd_checkpoint_name", "")
    embedding = embedding_from_tensors(name or path.stem, tensors, path=path, hash=file_sha256(path)[:12])
    return replace(embedding, trained_on=trained_on)


def embedding_from_tensors(
    name: str, tensors: dict[str, torch.Tensor], *, path: Path | None = None, hash: str = ""
) -> Embedding:
    label = path.name if path else name
    if "clip_l" in tensors and "clip_g" in tensors:
        vectors = {"clip_l": tensors["clip_l"], "clip_g": tensors["clip_g"]}
    elif "emb_params" in tensors:
        vectors = {"clip": tensors["emb_params"]}
    elif params := [key for key in tensors if key.startswith("string_to_param")]:
        vectors = {"clip": tensors[params[0]]}
    elif len(tensors) == 1:  # diffusers learned_embeds: {"<token>": [width] or [n, width]}
        vectors = {"clip": next(iter(tensors.values()))}
    else:
        raise UnsupportedModel(
            f"{label} is not a textual-inversion embedding Sfumato understands (tensors: "
            f"{', '.join(sorted(tensors)[:5])}).",
            "Use an A1111, diffusers or SDXL (clip_l/clip_g) embedding file.",
        )
    if any(value.dim() == 0 or value.numel() == 0 for value in vectors.values()):
        raise CorruptModelFile(f"{label} holds no vectors.", "Get the embedding file again.")
    vectors = {
        key: (value if value.dim() == 2 else value.reshape(-1, value.shape[-1])).float()
        for key, value in vectors.items()
    }
    if any(value.numel() == 0 for value in vectors.values()):
        raise CorruptModelFile(f"{label} holds no vectors.", "Get the embedding file again.")
    return Embedding(name, vectors, path, hash)


def vectors_for(
    embedding: Embedding, components: Components, *, sd1_on_sdxl: bool = False
) -> tuple[list[torch.Tensor | None] | None, str | None]:
    """Per text encoder of ``components``, the vectors to inject; or None and why it was skipped.

    On SDXL an SD1 embedding (made for CLIP-L) is used on the first encoder only when asked
    (``sd1_on_sdxl``); the second encoder then sees None (filled with a neutral vector).
    SDXL's refiner has only SDXL's second encoder (OpenCLIP ViT-bigG): it takes an SDXL
    embedding's ``clip_g`` vectors, and never CLIP-L ones (it has no CLIP-L encoder).
    """
    if components.is_refiner:
        return _vectors_for_refiner(embedding, components)
    widths = [_width(components.text_encoder)]
    if components.text_encoder_2 is not None:
        widths.append(_width(components.text_encoder_2))
    model = components.info.architecture
    vectors = embedding.vectors
    skipped = (
        f"Embedding '{embedding.name}' was made for {embedding.architecture}, not {model}; it was skipped."
    )
    if len(widths) == 1:
        single = vectors.get("clip", vectors.get("clip_l")) if "clip_g" not in vectors else None
        if single is not None and single.shape[-1] == widths[0]:
            return [single], None
        return None, skipped
    if "clip_l" in vectors and "clip_g" in vectors:
        if vectors["clip_l"].shape[-1] == widths[0] and vectors["clip_g"].shape[-1] == widths[1]:
            if vectors["clip_l"].shape[0] != vectors["clip_g"].shape[0]:
                return None, f"Embedding '{embedding.name}' has different token counts for its two encoders."
            return [vectors["clip_l"], vectors["clip_g"]], None
        return None, skipped
    single = vectors["clip"]
    if single.shape[-1] == widths[0]:
        if sd1_on_sdxl:
            return [single, None], None
        return None, skipped + " It can be applied to SDXL's CLIP-L encoder alone on request."
    return None, skipped


def _vectors_for_refiner(
    embedding: Embedding, components: Components
) -> tuple[list[torch.Tensor | None] | None, str | None]:
    width = _width(components.text_encoder)
    vectors = embedding.vectors.get("clip_g", embedding.vectors.get("clip"))
    if vectors is not None and vectors.shape[-1] == width:
        return [vectors], None
    found = vectors if vectors is not None else next(iter(embedding.vectors.values()))
    return None, (
        f"Embedding '{embedding.name}' was made for {embedding.architecture}, not "
        f"{components.info.architecture}; it was skipped: SDXL's refiner has only SDXL's OpenCLIP "
        f"ViT-bigG text encoder, which takes {width}-wide vectors (this embedding's are "
        f"{found.shape[-1]}-wide), and no CLIP-L encoder for SD1 embeddings. "
        "Use an SDXL embedding (one with clip_g vectors) with the refiner."
    )


def _width(encoder: object) -> int:
    return int(encoder.config.hidden_size)  # pyright: ignore[reportAttributeAccessIssue]
