"""A CLIP to see with: the built-in demo CLIP, or the real CLIP/OpenCLIP weights a user has.

Accepted: a transformers CLIP folder (``config.json`` + ``model.safetensors`` or its shards;
tokenizer files optional, CLIP's own vocabulary is built in), which is how OpenAI's ViT-L/14 and
LAION's OpenCLIP ViT-bigG are published for transformers; or one ``.safetensors`` file with
transformers' CLIP tensor names, whose configuration is read from the tensor shapes. Pickles are
refused as everywhere in Sfumato (``models/safety.py``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from importlib.resources import files
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from sfumato.core.errors import CorruptModelFile, ModelNotFound, UnsupportedModel
from sfumato.models.safety import (
    FileFormat,
    read_model_config,
    read_safetensors_header,
    sniff_format,
    unsafe_error,
)

if TYPE_CHECKING:
    from PIL import Image
    from transformers import CLIPModel, CLIPTokenizer

OPENAI_MEAN = (0.48145466, 0.4578275, 0.40821073)
OPENAI_STD = (0.26862954, 0.26130258, 0.27577711)
WHAT_IS_NEEDED = (
    "A CLIP is a transformers CLIP folder (config.json + model.safetensors, e.g. openai/clip-vit-large-patch14 "
    "or laion/CLIP-ViT-bigG-14-laion2B-39B-b160k) or one .safetensors file with transformers' CLIP tensor names."
)
BATCH = 32
# Heads of the published CLIP towers by width (ViT-B/L/H/bigG); others are assumed to use 64-wide heads.
KNOWN_HEADS = {512: 8, 768: 12, 1024: 16, 1280: 20, 1664: 16}


def demo_clip_folder() -> Path:
    return Path(str(files("sfumato.demo").joinpath("clip")))


@dataclass
class Clip:
    """A loaded CLIP with what it needs to read pictures and text; embeddings are unit float32 rows."""

    model: CLIPModel
    tokenizer: CLIPTokenizer
    name: str
    image_size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    known_texts: dict[str, np.ndarray] = field(default_factory=dict, repr=False)

    @property
    def dim(self) -> int:
        return int(self.model.config.projection_dim or 0)

    def embed_texts(self, texts: list[str]) -> np.ndarray:
        import torch

        rows = []
        with torch.inference_mode():
            for start in range(0, len(texts), BATCH * 4):
                chunk = texts[start : start + BATCH * 4]
                ids = self.tokenizer(
                    chunk, padding=True, max_length=77, truncation=True, return_tensors="pt"
                ).input_ids
                pooled = self.model.text_model(input_ids=ids).pooler_output
                rows.append(self.model.text_projection(pooled).float().numpy())
        return _unit(np.concatenate(rows) if rows else np.zeros((0, self.dim), np.float32))

    def embed_texts_cached(self, texts: list[str]) -> np.ndarray:
        """Like ``embed_texts``, remembering each text's row: phrase lists are embedded once per CLIP."""
        new = [t for t in dict.fromkeys(texts) if t not in self.known_texts]
        if new:
            self.known_texts.update(zip(new, self.embed_texts(new), strict=True))
        return (
            np.stack([self.known_texts[t] for t in texts]) if texts else np.zeros((0, self.dim), np.float32)
        )

    def embed_pictures(self, pictures: list[Image.Image]) -> np.ndarray:
        import torch

        rows = []
        with torch.inference_mode():
            for start in range(0, len(pictures), BATCH):
                pixels = torch.from_numpy(
                    np.stack([self.pixels(p) for p in pictures[start : start + BATCH]])
                ).to(self.model.dtype)
                pooled = self.model.vision_model(pixel_values=pixels).pooler_output
                rows.append(self.model.visual_projection(pooled).float().numpy())
        return _unit(np.concatenate(rows) if rows else np.zeros((0, self.dim), np.float32))

    def pixels(self, picture: Image.Image) -> np.ndarray:
        """CLIP's reading of a picture: shortest side to the tower's size (bicubic), centre crop, normalise."""
        from PIL import Image

        rgb = picture.convert("RGB")
        scale = self.image_size / min(rgb.size)
        width, height = (
            max(self.image_size, round(rgb.width * scale)),
            max(self.image_size, round(rgb.height * scale)),
        )
        if (width, height) != rgb.size:
            rgb = rgb.resize((width, height), Image.Resampling.BICUBIC)
        left, top = (width - self.image_size) // 2, (height - self.image_size) // 2
        rgb = rgb.crop((left, top, left + self.image_size, top + self.image_size))
        array = np.asarray(rgb, dtype=np.float32) / 255.0
        array = (array - np.array(self.mean, np.float32)) / np.array(self.std, np.float32)
        return array.transpose(2, 0, 1)


def _unit(rows: np.ndarray) -> np.ndarray:
    rows = rows.astype(np.float32)
    return rows / np.maximum(np.linalg.norm(rows, axis=1, keepdims=True), 1e-12)


def load_clip(path: Path | None = None) -> Clip:
    """The CLIP at ``path`` (default: the built-in demo CLIP), loaded once per file version."""
    target = (path or demo_clip_folder()).expanduser()
    if not target.exists():
        raise ModelNotFound(f"No CLIP at {target}.", WHAT_IS_NEEDED)
    stamp = max((f.stat().st_mtime_ns for f in _weight_files(target)), default=0)
    return _load_cached(str(target.resolve()), stamp)


@lru_cache(maxsize=2)
def _load_cached(path: str, stamp: int) -> Clip:
    target = Path(path)
    if target.is_dir():
        return _load_folder(target)
    return _load_single_file(target)


def _weight_files(target: Path) -> list[Path]:
    if target.is_file():
        return [target]
    return sorted(target.glob("*.safetensors")) + sorted(target.glob("*.bin")) + sorted(target.glob("*.pt*"))


def _load_folder(folder: Path) -> Clip:
    config_path = folder / "config.json"
    weights = sorted(folder.glob("*.safetensors"))
    if not weights:
        for other in _weight_files(folder):
            fmt = sniff_format(other)
            if fmt in (FileFormat.PICKLE, FileFormat.ZIP_PICKLE):
                raise unsafe_error(other, fmt)
        raise ModelNotFound(f"The CLIP folder {folder} has no .safetensors weights.", WHAT_IS_NEEDED)
    if not config_path.is_file():
        raise ModelNotFound(f"The CLIP folder {folder} has no config.json.", WHAT_IS_NEEDED)
    config = read_model_config(config_path)
    if config.get("model_type") != "clip":
        raise UnsupportedModel(
            f"{folder} is not a CLIP (its config.json says model_type {str(config.get('model_type'))[:40]!r}).",
            WHAT_IS_NEEDED,
        )
    for file in weights:
        read_safetensors_header(file)
    from transformers import CLIPModel
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()  # a CLI's output is the answer, not a loading bar
    try:
        model: Any = CLIPModel.from_pretrained(
            folder, local_files_only=True, use_safetensors=True, dtype="float32"
        )
    except (OSError, ValueError, RuntimeError, KeyError, TypeError) as exc:
        raise CorruptModelFile(
            f"The CLIP in {folder} cannot be loaded: {str(exc).splitlines()[0][:300]}", WHAT_IS_NEEDED
        ) from None
    model.eval()
    size, mean, std = _preprocessing(folder, int(model.config.vision_config.image_size))
    return Clip(model, _tokenizer(folder), folder.name, size, mean, std)


def _preprocessing(folder: Path, default_size: int) -> tuple[int, Any, Any]:
    file = folder / "preprocessor_config.json"
    if not file.is_file():
        return default_size, OPENAI_MEAN, OPENAI_STD
    config = read_model_config(file)
    crop = config.get("crop_size", default_size)
    size = crop.get("height", default_size) if isinstance(crop, dict) else crop
    mean, std = config.get("image_mean", OPENAI_MEAN), config.get("image_std", OPENAI_STD)
    valid = (
        isinstance(size, int)
        and 8 <= size <= 1024
        and all(
            isinstance(v, list | tuple)
            and len(v) == 3
            and all(isinstance(x, int | float) and 0 < abs(x) < 10 for x in v)
            for v in (mean, std)
        )
    )
    if not valid:
        raise CorruptModelFile(f"{file} is not a valid CLIP preprocessor config.", WHAT_IS_NEEDED)
    return int(size), tuple(mean), tuple(std)


def _tokenizer(folder: Path) -> CLIPTokenizer:
    for place in (folder, folder / "tokenizer"):
        if (place / "vocab.json").is_file() and (place / "merges.txt").is_file():
            from transformers import CLIPTokenizer

            return CLIPTokenizer.from_pretrained(place, local_files_only=True)
    from sfumato.models.tokenizer import load_clip_tokenizer

    return load_clip_tokenizer()


def _load_single_file(path: Path) -> Clip:
    header = read_safetensors_header(path)
    shapes = {name: info.shape for name, info in header.tensors.items()}
    config = clip_config_from_shapes(shapes, path)
    from safetensors.torch import load_file
    from transformers import CLIPConfig, CLIPModel

    model: Any = CLIPModel(CLIPConfig(**config))
    tensors = load_file(str(path))
    missing, _ = model.load_state_dict(tensors, strict=False)
    missing = [k for k in missing if not k.endswith("position_ids")]
    if missing:
        raise CorruptModelFile(
            f"{path.name} lacks {len(missing)} CLIP tensors (e.g. {missing[0]}).", WHAT_IS_NEEDED
        )
    model.float().eval()
    from sfumato.models.tokenizer import load_clip_tokenizer

    return Clip(
        model,
        load_clip_tokenizer(),
        path.stem,
        int(config["vision_config"]["image_size"]),
        OPENAI_MEAN,
        OPENAI_STD,
    )


def clip_config_from_shapes(shapes: dict[str, tuple[int, ...]], path: Path) -> dict[str, Any]:
    """A CLIPConfig (as a dict) that fits the tensors of a file in transformers' CLIP naming."""

    def shape(name: str) -> tuple[int, ...]:
        if name not in shapes:
            hint = ""
            if any(k.startswith(("visual.", "transformer.resblocks")) for k in shapes):
                hint = " It looks like an OpenCLIP checkpoint; use its transformers version (a folder with config.json)."
            raise UnsupportedModel(
                f"{path.name} is not a transformers CLIP file (no {name}).{hint}", WHAT_IS_NEEDED
            )
        return shapes[name]

    def layers(prefix: str) -> int:
        found = {k[len(prefix) :].split(".")[0] for k in shapes if k.startswith(prefix)}
        return len([f for f in found if f.isdigit()])

    vocab, text_hidden = shape("text_model.embeddings.token_embedding.weight")
    positions = shape("text_model.embeddings.position_embedding.weight")[0]
    text_mlp = shape("text_model.encoder.layers.0.mlp.fc1.weight")[0]
    vision_hidden, _, patch, _ = shape("vision_model.embeddings.patch_embedding.weight")
    patches = shape("vision_model.embeddings.position_embedding.weight")[0] - 1
    vision_mlp = shape("vision_model.encoder.layers.0.mlp.fc1.weight")[0]
    projection = shape("text_projection.weight")[0]
    grid = round(patches**0.5)
    return {
        "text_config": {
            "vocab_size": vocab,
            "hidden_size": text_hidden,
            "intermediate_size": text_mlp,
            "num_hidden_layers": layers("text_model.encoder.layers."),
            "num_attention_heads": KNOWN_HEADS.get(text_hidden, max(1, text_hidden // 64)),
            "max_position_embeddings": positions,
            "bos_token_id": 49406,
            "eos_token_id": 49407,
            "pad_token_id": 49407,
        },
        "vision_config": {
            "image_size": grid * patch,
            "patch_size": patch,
            "hidden_size": vision_hidden,
            "intermediate_size": vision_mlp,
            "num_hidden_layers": layers("vision_model.encoder.layers."),
            "num_attention_heads": KNOWN_HEADS.get(vision_hidden, max(1, vision_hidden // 64)),
        },
        "projection_dim": projection,
    }
