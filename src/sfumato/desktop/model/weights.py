"""The per-word weight editor: read and set the A1111 weight of a word or phrase in a prompt.

Setting a weight rewrites the groups that wrap exactly that phrase (``(word)``, ``((word))``,
``[word]``, ``(word:1.3)``) as one ``(word:w)``, or as the bare phrase at weight 1. The weight
shown is what the project's prompt parser reads, so ``((word))`` shows 1.21.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sfumato.prompts.parser import parse_emphasis
from sfumato.prompts.printer import format_weight

MIN_WEIGHT, MAX_WEIGHT = -2.0, 3.0
STEP = 0.1  # Ctrl+Up / Ctrl+Down, as in A1111
_WORD = re.compile(r"[\w'-]+")
_WEIGHT_END = re.compile(r":\s*[+-]?(?:\d+\.?\d*|\.\d+)\s*\)")


@dataclass(frozen=True)
class WeightedPhrase:
    phrase_start: int
    phrase_end: int
    group_start: int  # the written group around the phrase, ``(word:1.3)``; the phrase alone if none
    group_end: int
    weight: float

    def phrase(self, text: str) -> str:
        return text[self.phrase_start : self.phrase_end]


def _escaped(text: str, pos: int) -> bool:
    count = 0
    while pos - 1 - count >= 0 and text[pos - 1 - count] == "\\":
        count += 1
    return count % 2 == 1


def _opens(text: str, pos: int) -> bool:
    return 0 <= pos < len(text) and text[pos] in "([" and not _escaped(text, pos)


def _close_end(text: str, opener: str, pos: int) -> int | None:
    """Where the group opened with ``opener`` ends if it closes right at ``pos``."""
    if opener == "[":
        return pos + 1 if pos < len(text) and text[pos] == "]" else None
    if pos < len(text) and text[pos] == ")":
        return pos + 1
    match = _WEIGHT_END.match(text, pos)
    return match.end() if match else None


def phrase_span(text: str, start: int, end: int) -> tuple[int, int]:
    """The phrase a selection means: spaces trimmed, groups it includes unwrapped, and the word
    under the cursor when nothing is selected."""
    start, end = sorted((max(0, start), min(len(text), end)))
    if start == end:
        for match in _WORD.finditer(text):
            if match.start() <= start <= match.end():
                return match.span()
        return start, end
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    while end - start >= 2 and _opens(text, start):
        inner_end = _inner_end(text, start, end)
        if inner_end is None:
            break
        start, end = start + 1, inner_end
    return start, end


def _inner_end(text: str, start: int, end: int) -> int | None:
    """The end of the content of a group that spans exactly text[start:end], else None."""
    opener = text[start]
    if opener == "[":
        return end - 1 if text[end - 1] == "]" else None
    if text[end - 1] != ")":
        return None
    match = re.search(r":\s*[+-]?(?:\d+\.?\d*|\.\d+)\s*\)$", text[start:end])
    return start + match.start() if match else end - 1


def weighted_phrase(text: str, start: int, end: int) -> WeightedPhrase:
    """The phrase a selection means, the groups wrapping exactly it, and its weight."""
    phrase_start, phrase_end = phrase_span(text, start, end)
    group_start, group_end = phrase_start, phrase_end
    while _opens(text, group_start - 1):
        closed = _close_end(text, text[group_start - 1], group_end)
        if closed is None:
            break
        group_start, group_end = group_start - 1, closed
    runs = [run for run in parse_emphasis(text[group_start:group_end]) if run.text.strip()]
    weight = runs[0].weight if len(runs) == 1 else 1.0
    return WeightedPhrase(phrase_start, phrase_end, group_start, group_end, round(weight, 4))


def set_weight(text: str, start: int, end: int, weight: float) -> tuple[str, int, int]:
    """The prompt with the selected phrase at ``weight``, and where the phrase now is."""
    found = weighted_phrase(text, start, end)
    phrase = found.phrase(text)
    if not phrase:
        return text, start, end
    weight = round(max(MIN_WEIGHT, min(MAX_WEIGHT, weight)), 2)
    written = phrase if weight == 1 else f"({phrase}:{format_weight(weight)})"
    offset = 0 if weight == 1 else 1
    new_text = text[: found.group_start] + written + text[found.group_end :]
    new_start = found.group_start + offset
    return new_text, new_start, new_start + len(phrase)


def nudge_weight(text: str, start: int, end: int, delta: float) -> tuple[str, int, int]:
    """Ctrl+Up / Ctrl+Down: the selected phrase's weight moved by ``delta``."""
    return set_weight(text, start, end, weighted_phrase(text, start, end).weight + delta)
