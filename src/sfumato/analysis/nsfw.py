"""The NSFW filter: check a finished picture, then blur it or withhold it when it is flagged.

Two checkers, used when configured: a CLIP-concept checker on whatever CLIP is loaded (each concept
a text whose similarity to the picture above its threshold flags it: ``nsfw_concepts``, written
``"concept"`` or ``"concept=0.3"``), and diffusers' ``StableDiffusionSafetyChecker`` with the weights
the user has (``safety_checker``: its folder, with ``config.json``, ``model.safetensors`` and
``preprocessor_config.json``). Off by default, as the user chooses.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from sfumato.core.errors import CorruptModelFile, InvalidRequest, ModelNotFound

if TYPE_CHECKING:
    from PIL import Image

    from sfumato.analysis.clip_model import Clip
    from sfumato.core.result import GeneratedImage
    from sfumato.core.settings import Settings

FilterMode = Literal["off", "blur", "withhold"]
DEFAULT_THRESHOLD = 0.25  # cosine similarity; real CLIPs score a matching concept around 0.25-0.35
BLUR_FRACTION = 0.08  # blur radius as a fraction of the picture's longer side: nothing stays legible
SAFETY_CHECKER_NEEDS = (
    "diffusers' safety checker is a folder with config.json, model.safetensors and preprocessor_config.json "
    "(CompVis/stable-diffusion-safety-checker); set `safety_checker` to it."
)


@dataclass(frozen=True)
class Concept:
    text: str
    threshold: float = DEFAULT_THRESHOLD


@dataclass
class Verdict:
    flagged: bool
    reasons: list[str] = field(default_factory=list)  # "star 0.41 >= 0.30", "safety checker"

    def describe(self) -> str:
        return "flagged (" + "; ".join(self.reasons) + ")" if self.flagged else "passed"


def parse_concepts(entries: list[str]) -> list[Concept]:
    concepts = []
    for entry in entries:
        text, equals, value = entry.rpartition("=") if "=" in entry else (entry, "", "")
        text = text.strip()
        if not text:
            raise InvalidRequest(
                f"The NSFW concept {entry!r} has no text.", 'Write "concept" or "concept=0.3".'
            )
        try:
            threshold = float(value) if equals else DEFAULT_THRESHOLD
        except ValueError:
            raise InvalidRequest(
                f"The NSFW concept {entry!r} has a threshold that is not a number.",
                'Write e.g. "concept=0.3".',
            ) from None
        if not -1.0 <= threshold <= 1.0:
            raise InvalidRequest(f"The NSFW concept {entry!r}: a threshold is a similarity from -1 to 1.")
        concepts.append(Concept(text, threshold))
    return concepts


def concept_check(picture: Image.Image, clip: Clip, concepts: list[Concept]) -> Verdict:
    if not concepts:
        return Verdict(False)
    similarities = clip.embed_texts_cached([c.text for c in concepts]) @ clip.embed_pictures([picture])[0]
    reasons = [
        f"{c.text} {s:.2f} >= {c.threshold:.2f}"
        for c, s in zip(concepts, similarities.tolist(), strict=True)
        if s >= c.threshold
    ]
    return Verdict(bool(reasons), reasons)


def safety_checker_check(picture: Image.Image, folder: Path) -> Verdict:
    import numpy as np
    import torch

    checker, processor = _safety_checker(str(folder.expanduser().resolve()))
    clip_input = processor(images=[picture.convert("RGB")], return_tensors="pt").pixel_values
    array = np.asarray(picture.convert("RGB"), dtype=np.float32)[None] / 255.0
    with torch.inference_mode():
        _, flagged = checker(images=array, clip_input=clip_input.to(checker.dtype))
    return Verdict(bool(flagged[0]), ["safety checker"] if flagged[0] else [])


@lru_cache(maxsize=1)
def _safety_checker(path: str) -> tuple[Any, Any]:
    from sfumato.models.safety import read_model_config, read_safetensors_header

    folder = Path(path)
    weights = sorted(folder.glob("*.safetensors")) if folder.is_dir() else []
    if not weights or not (folder / "config.json").is_file():
        raise ModelNotFound(f"No safety checker weights at {folder}.", SAFETY_CHECKER_NEEDS)
    read_model_config(folder / "config.json")
    for file in weights:
        read_safetensors_header(file)
    from diffusers.pipelines.stable_diffusion.safety_checker import StableDiffusionSafetyChecker
    from transformers import CLIPImageProcessor

    try:
        checker: Any = StableDiffusionSafetyChecker.from_pretrained(
            folder, local_files_only=True, use_safetensors=True
        )
        processor: Any = (
            CLIPImageProcessor.from_pretrained(folder, local_files_only=True)
            if (folder / "preprocessor_config.json").is_file()
            else CLIPImageProcessor()
        )
    except (OSError, ValueError, RuntimeError, KeyError, TypeError) as exc:
        raise CorruptModelFile(
            f"The safety checker in {folder} cannot be loaded: {str(exc).splitlines()[0][:300]}",
            SAFETY_CHECKER_NEEDS,
        ) from None
    checker.eval()
    return checker, processor


def check_picture(picture: Image.Image, settings: Settings) -> Verdict:
    """Every configured checker; flagged when any flags it."""
    from sfumato.analysis.clip_model import load_clip

    concepts = parse_concepts(settings.nsfw_concepts)
    if not concepts and settings.safety_checker is None:
        raise InvalidRequest(
            "The NSFW filter is on but no checker is configured.",
            "Set nsfw_concepts (concepts for the CLIP check) or safety_checker (diffusers' safety checker folder).",
        )
    verdict = concept_check(picture, load_clip(settings.clip_model), concepts) if concepts else Verdict(False)
    if settings.safety_checker is not None:
        other = safety_checker_check(picture, settings.safety_checker)
        verdict = Verdict(verdict.flagged or other.flagged, verdict.reasons + other.reasons)
    return verdict


def blurred(picture: Image.Image) -> Image.Image:
    from PIL import ImageFilter

    radius = max(4.0, BLUR_FRACTION * max(picture.size))
    return picture.filter(ImageFilter.GaussianBlur(radius)).filter(ImageFilter.GaussianBlur(radius))


def apply_filter(
    item: GeneratedImage, mode: FilterMode, settings: Settings
) -> tuple[GeneratedImage | None, str | None]:
    """The picture as the filter lets it out (None when withheld) and a note for the user when flagged.

    The mode and the decision go into the picture's metadata (infotext ``NSFW filter``/``NSFW check``).
    """
    from dataclasses import replace

    if mode == "off":
        return item, None
    verdict = check_picture(item.image, settings)
    extra = {**item.extra, "NSFW filter": mode, "NSFW check": verdict.describe()}
    if not verdict.flagged:
        return replace(item, extra=extra), None
    number = item.index + 1
    if mode == "withhold":
        return None, f"Picture {number} was withheld by the NSFW filter: {verdict.describe()}."
    note = f"Picture {number} was blurred by the NSFW filter: {verdict.describe()}."
    return replace(item, image=blurred(item.image), extra=extra), note
