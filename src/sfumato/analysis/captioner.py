"""A caption for interrogation from the user's own captioning model (BLIP, through transformers).

Nothing ships: a BLIP folder (``config.json`` with model_type ``blip``, ``*.safetensors``, the
processor's ``preprocessor_config.json`` and tokenizer files, e.g. Salesforce/blip-image-captioning-large
as published) is used when the setting ``captioner`` names one.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

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

WHAT_IS_NEEDED = (
    "A captioner is a transformers BLIP folder (config.json, model.safetensors, preprocessor_config.json and "
    "tokenizer files), e.g. Salesforce/blip-image-captioning-large; set `captioner` to it."
)
MAX_NEW_TOKENS = 40


def caption_picture(picture: Image.Image, folder: Path) -> str:
    model, processor = _load(str(folder.expanduser().resolve()))
    import torch

    inputs = processor(images=picture.convert("RGB"), return_tensors="pt")
    with torch.inference_mode():
        ids = model.generate(**inputs, max_new_tokens=MAX_NEW_TOKENS, num_beams=1, do_sample=False)
    return str(processor.decode(ids[0], skip_special_tokens=True)).strip()


@lru_cache(maxsize=1)
def _load(path: str) -> tuple[Any, Any]:
    folder = Path(path)
    if not folder.is_dir():
        raise ModelNotFound(f"No captioning model at {folder}.", WHAT_IS_NEEDED)
    weights = sorted(folder.glob("*.safetensors"))
    if not weights:
        for other in sorted(folder.glob("*.bin")) + sorted(folder.glob("*.pt*")):
            fmt = sniff_format(other)
            if fmt in (FileFormat.PICKLE, FileFormat.ZIP_PICKLE):
                raise unsafe_error(other, fmt)
        raise ModelNotFound(f"The captioner folder {folder} has no .safetensors weights.", WHAT_IS_NEEDED)
    if not (folder / "config.json").is_file():
        raise ModelNotFound(f"The captioner folder {folder} has no config.json.", WHAT_IS_NEEDED)
    kind = read_model_config(folder / "config.json").get("model_type")
    if kind != "blip":
        raise UnsupportedModel(
            f"{folder} is not a BLIP captioner (model_type {str(kind)[:40]!r}).", WHAT_IS_NEEDED
        )
    for file in weights:
        read_safetensors_header(file)
    from transformers import BlipForConditionalGeneration, BlipProcessor

    try:
        model: Any = BlipForConditionalGeneration.from_pretrained(
            folder, local_files_only=True, use_safetensors=True
        )
        processor: Any = BlipProcessor.from_pretrained(folder, local_files_only=True)
    except (OSError, ValueError, RuntimeError, KeyError, TypeError) as exc:
        raise CorruptModelFile(
            f"The captioner in {folder} cannot be loaded: {str(exc).splitlines()[0][:300]}", WHAT_IS_NEEDED
        ) from None
    model.eval()
    return model, processor
