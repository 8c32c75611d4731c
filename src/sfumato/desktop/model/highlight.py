"""Where the A1111 prompt language's parts are in a text, for syntax highlighting.

Kinds: ``stronger`` / ``weaker`` / ``negative`` (text by its effective weight), ``syntax`` (the
brackets and weight numbers), ``network`` (``<lora:name:0.8>``), ``keyword`` (``AND``, ``BREAK``),
``schedule`` (the brackets of ``[a:b:when]`` and ``[a|b]``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sfumato.prompts.parser import EMPHASIS

_NETWORK = re.compile(r"<\w+:[^>]+>")
_KEYWORD = re.compile(r"\b(?:AND|BREAK)\b")
_WEIGHT_END = re.compile(r":\s*[+-]?(?:\d+\.?\d*|\.\d+)\s*\)")


@dataclass(frozen=True)
class Span:
    start: int
    length: int
    kind: str


def _weight_kind(weight: float) -> str | None:
    if weight < 0:
        return "negative"
    if weight > 1.0001:
        return "stronger"
    if weight < 0.9999:
        return "weaker"
    return None


def _is_schedule(text: str, start: int, end: int) -> bool:
    depth = 0
    for char in text[start + 1 : end]:
        if char in "([":
            depth += 1
        elif char in ")]":
            depth -= 1
        elif char in ":|" and depth == 0:
            return True
    return False


def highlight_spans(text: str) -> list[Span]:
    spans: list[Span] = []
    weights = [1.0] * len(text)
    syntax = [False] * len(text)
    stack: list[tuple[str, int]] = []
    pos = 0
    while pos < len(text):
        char = text[pos]
        if char == "\\" and pos + 1 < len(text):
            pos += 2
            continue
        if char in "([":
            stack.append((char, pos))
        elif char == ":" and stack and stack[-1][0] == "(" and (match := _WEIGHT_END.match(text, pos)):
            _, start = stack.pop()
            factor = float(match.group(0)[1:-1].strip())
            for i in range(start + 1, pos):
                weights[i] *= factor
            for i in (start, *range(pos, match.end())):
                syntax[i] = True
            pos = match.end()
            continue
        elif char == ")" and stack and stack[-1][0] == "(":
            _, start = stack.pop()
            for i in range(start + 1, pos):
                weights[i] *= EMPHASIS
            syntax[start] = syntax[pos] = True
        elif char == "]" and stack and stack[-1][0] == "[":
            _, start = stack.pop()
            if _is_schedule(text, start, pos):
                spans += [Span(start, 1, "schedule"), Span(pos, 1, "schedule")]
            else:
                for i in range(start + 1, pos):
                    weights[i] /= EMPHASIS
                syntax[start] = syntax[pos] = True
        pos += 1
    run_start, run_kind = 0, None
    for index in range(len(text) + 1):
        kind = None
        if index < len(text):
            kind = "syntax" if syntax[index] else _weight_kind(weights[index])
        if kind != run_kind:
            if run_kind is not None:
                spans.append(Span(run_start, index - run_start, run_kind))
            run_start, run_kind = index, kind
    spans += [Span(m.start(), m.end() - m.start(), "network") for m in _NETWORK.finditer(text)]
    spans += [Span(m.start(), m.end() - m.start(), "keyword") for m in _KEYWORD.finditer(text)]
    return spans
