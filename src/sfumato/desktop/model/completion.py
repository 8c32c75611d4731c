"""What the prompt can complete at the cursor: a LoRA name inside ``<lora:…``, or an embedding's
name (A1111 embeddings are used by writing their name as a word)."""

from __future__ import annotations

import re
from dataclasses import dataclass

_LORA = re.compile(r"<(?:lora|lyco):([^:>\s]*)$")
_WORD = re.compile(r"[\w.-]{2,}$")


@dataclass(frozen=True)
class Completion:
    kind: str  # "lora" or "embedding", as the model library names kinds
    prefix: str
    start: int  # where the prefix begins in the text


def completion_at(text: str, cursor: int) -> Completion | None:
    before = text[:cursor]
    if match := _LORA.search(before):
        return Completion("lora", match.group(1), match.start(1))
    if (match := _WORD.search(before)) and not before[: match.start()].rstrip().endswith(":"):
        return Completion("embedding", match.group(0), match.start())
    return None


def complete(text: str, cursor: int, found: Completion, name: str) -> tuple[str, int]:
    """The text with the prefix replaced by ``name`` (a LoRA tag closed at weight 1); the new cursor."""
    written = f"{name}:1>" if found.kind == "lora" else name
    return text[: found.start] + written + text[cursor:], found.start + len(written)
