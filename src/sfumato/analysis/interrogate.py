"""Image -> prompt, the clip-interrogator way: CLIP ranks phrase lists against the picture.

A caption from the user's captioning model (BLIP) leads the prompt when one is configured; each
phrase list then adds its best phrases (``pick`` of them). With the built-in demo CLIP the lists are
the demo world's colours, shapes, positions and backgrounds; with a real CLIP, mediums, artists,
movements and descriptive flavours, plus the user's own lists.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from sfumato.analysis.clip_model import Clip, demo_clip_folder
from sfumato.analysis.phrases import PhraseList, load_lists

if TYPE_CHECKING:
    from PIL import Image

    from sfumato.analysis.tagger import Tag
    from sfumato.core.settings import Settings

SHOWN = 5  # ranked phrases reported per list


@dataclass(frozen=True)
class RankedPhrase:
    phrase: str
    score: float  # cosine similarity between the picture and the phrase as put to CLIP


@dataclass
class Interrogation:
    prompt: str
    caption: str | None
    ranked: dict[str, list[RankedPhrase]] = field(default_factory=dict)
    clip: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "prompt": self.prompt,
            "caption": self.caption,
            "clip": self.clip,
            "lists": {
                name: [{"phrase": r.phrase, "score": round(r.score, 4)} for r in ranked]
                for name, ranked in self.ranked.items()
            },
        }


def phrase_set_for(clip_path: Path | None) -> str:
    """The demo CLIP knows only the demo world: it gets the demo lists, any other CLIP the general ones."""
    if clip_path is None or clip_path.expanduser().resolve() == demo_clip_folder().resolve():
        return "demo"
    return "general"


def lists_for(clip_path: Path | None, extra: Path | None, only: list[str] | None = None) -> list[PhraseList]:
    return load_lists(phrase_set_for(clip_path), extra, only)


def rank(clip: Clip, picture_embedding: np.ndarray, phrase_list: PhraseList) -> list[RankedPhrase]:
    scores = clip.embed_texts_cached(phrase_list.prompts()) @ picture_embedding
    order = np.argsort(-scores, kind="stable")
    return [RankedPhrase(phrase_list.phrases[i], float(scores[i])) for i in order]


def interrogate(
    picture: Image.Image, clip: Clip, lists: list[PhraseList], caption: str | None = None
) -> Interrogation:
    embedding = clip.embed_pictures([picture])[0]
    ranked = {phrase_list.name: rank(clip, embedding, phrase_list) for phrase_list in lists}
    picked = [r.phrase for pl in lists for r in ranked[pl.name][: pl.pick]]
    prompt = ", ".join([caption, *picked] if caption else picked)
    return Interrogation(
        prompt=prompt,
        caption=caption,
        ranked={name: found[:SHOWN] for name, found in ranked.items()},
        clip=clip.name,
    )


def interrogate_with_settings(
    picture: Image.Image, settings: Settings, lists: list[str] | None = None, caption: bool = True
) -> Interrogation:
    """Interrogation as the settings configure it: their CLIP, their lists, their captioner if any."""
    from sfumato.analysis.captioner import caption_picture
    from sfumato.analysis.clip_model import load_clip

    phrase_lists = lists_for(settings.clip_model, settings.interrogate_lists, lists)
    clip = load_clip(settings.clip_model)
    text = caption_picture(picture, settings.captioner) if caption and settings.captioner else None
    return interrogate(picture, clip, phrase_lists, text)


def tags_with_settings(picture: Image.Image, settings: Settings) -> list[Tag]:
    from sfumato.analysis.tagger import TaggerUnavailable, tag_picture

    if settings.tagger is None:
        raise TaggerUnavailable(
            "No tagger is configured, so booru-style tags (deepdanbooru mode) are not available.",
            "Set `tagger` to a folder with a WD14-style model.onnx and selected_tags.csv, or use CLIP interrogation.",
        )
    return tag_picture(picture, settings.tagger)
