"""A1111 prompts to and from compel's and ComfyUI's syntax (see docs/prompt-syntax.md).

Each converter returns the text and notes on what the other syntax cannot say.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass

from sfumato.prompts.parser import EMPHASIS, ParsedPrompt, Run, parse_prompt
from sfumato.prompts.printer import escape, format_weight, print_network, print_runs

COMPEL_PLUS = 1.1
COMPEL_MINUS = 0.9
_EMBEDDING_WORD = re.compile(r"embedding:([^\s,()\[\]:]+?)(?:\.(?:pt|safetensors|bin))?(?=[\s,()]|$)")


@dataclass(frozen=True)
class Converted:
    text: str
    notes: tuple[str, ...] = ()


def _first_step(parsed: ParsedPrompt, target: str, notes: list[str]) -> None:
    first = parsed.schedule[0]
    if len(parsed.schedule) > 1:
        notes.append(f"{target} has no prompt scheduling or alternation: the text of the first step is used.")
    if any(run.is_break for part in first.parts for run in part.runs):
        notes.append(f"{target} has no BREAK: it was dropped.")
    if parsed.networks:
        names = ", ".join(print_network(network) for network in parsed.networks)
        notes.append(f"{target} loads LoRAs outside the prompt (a LoRA loader): {names} left out.")


# ----------------------------------------------------------------------------------------------
# ComfyUI


def to_comfy(prompt: str | ParsedPrompt, embeddings: Collection[str] = ()) -> Converted:
    """ComfyUI's syntax: ``(text:w)`` with absolute weights, ``embedding:name``, no ``[]``."""
    parsed = parse_prompt(prompt) if isinstance(prompt, str) else prompt
    notes: list[str] = []
    _first_step(parsed, "ComfyUI", notes)
    parts = parsed.schedule[0].parts
    if len(parts) > 1:
        notes.append("ComfyUI combines sub-prompts with Conditioning nodes, not AND: the parts were joined.")
    texts: list[str] = []
    for part in parts:
        out: list[str] = []
        for run in part.runs:
            if run.is_break:
                out.append(" ")
                continue
            text = escape(run.text, "\\()")
            for name in embeddings:
                text = re.sub(rf"(?<![\w:]){re.escape(name)}(?!\w)", f"embedding:{name}", text)
            out.append(text if round(run.weight, 4) == 1 else f"({text}:{format_weight(run.weight)})")
        texts.append("".join(out))
    if any(run.weight != 1 for part in parts for run in part.runs):
        notes.append(
            "ComfyUI weighs tokens differently (relative to the empty prompt, no mean restore): "
            "the same numbers act more strongly there."
        )
    return Converted(", ".join(text.strip() for text in texts), tuple(notes))


def from_comfy(text: str) -> Converted:
    """ComfyUI prompt -> A1111 prompt: nested ``()`` multiply by 1.1; ``(x:w)`` sets w outright."""
    text = _EMBEDDING_WORD.sub(lambda match: match.group(1), text)
    runs = _comfy_runs(text, 1.0)
    return Converted(print_runs(_merge(runs)), ())


def _comfy_runs(text: str, weight: float) -> list[Run]:
    runs: list[Run] = []
    literal: list[str] = []
    pos = 0
    while pos < len(text):
        char = text[pos]
        if char == "\\" and pos + 1 < len(text):
            literal.append(text[pos + 1])
            pos += 2
            continue
        if char == "(":
            end = _closing(text, pos)
            if end is not None:
                if literal:
                    runs.append(Run("".join(literal), weight))
                    literal.clear()
                inner = text[pos + 1 : end]
                inner_weight = weight * EMPHASIS
                colon = inner.rfind(":")
                if colon > 0:
                    try:
                        inner_weight = float(inner[colon + 1 :])
                        inner = inner[:colon]
                    except ValueError:
                        pass
                runs.extend(_comfy_runs(inner, inner_weight))
                pos = end + 1
                continue
        literal.append(char)
        pos += 1
    if literal:
        runs.append(Run("".join(literal), weight))
    return runs


def _closing(text: str, start: int) -> int | None:
    depth = 0
    pos = start
    while pos < len(text):
        if text[pos] == "\\":
            pos += 2
            continue
        depth += {"(": 1, ")": -1}.get(text[pos], 0)
        if depth == 0:
            return pos
        pos += 1
    return None


def _merge(runs: list[Run]) -> list[Run]:
    merged: list[Run] = []
    for run in runs:
        if merged and merged[-1].weight == run.weight:
            merged[-1] = Run(merged[-1].text + run.text, run.weight)
        else:
            merged.append(run)
    return merged


# ----------------------------------------------------------------------------------------------
# compel


def _compel_escape(text: str) -> str:
    return escape(text, '\\()"')


def to_compel(prompt: str | ParsedPrompt) -> Converted:
    """compel's syntax: ``(text)1.3``; ``AND`` becomes ``("a", "b").and(w1, w2)``."""
    parsed = parse_prompt(prompt) if isinstance(prompt, str) else prompt
    notes: list[str] = []
    _first_step(parsed, "compel", notes)
    parts = parsed.schedule[0].parts
    texts: list[str] = []
    for part in parts:
        out: list[str] = []
        for run in part.runs:
            if run.is_break:
                out.append(" ")
            elif round(run.weight, 4) == 1:
                out.append(_compel_escape(run.text))
            elif run.text.strip():
                lead, core, tail = _strip(run.text)
                out.append(f"{lead}({_compel_escape(core)}){format_weight(run.weight)}{tail}")
        texts.append("".join(out).strip())
    if any(run.weight < 0 for part in parts for run in part.runs):
        notes.append("compel has no negative weights; Sfumato's reading of them will differ.")
    if len(parts) == 1:
        return Converted(texts[0], tuple(notes))
    quoted = ", ".join('"' + text.replace('"', '\\"') + '"' for text in texts)
    weights = ", ".join(format_weight(part.weight) for part in parts)
    return Converted(f"({quoted}).and({weights})", tuple(notes))


def _strip(text: str) -> tuple[str, str, str]:
    core = text.strip()
    start = text.index(core)
    return text[:start], core, text[start + len(core) :]


_COMPEL_CONJUNCTION = re.compile(r"^\s*\((.*)\)\s*\.(and|blend)\(([^)]*)\)\s*$", re.DOTALL)
_COMPEL_SUFFIX = re.compile(r"(-?\d+(?:\.\d+)?|-?\.\d+|[+]+|[-]+)")
_COMPEL_WORD = re.compile(r"([\w'-]+?)([+]+|[-]+)(?=[\s,.;!?]|$)")


def from_compel(text: str) -> Converted:
    """compel prompt -> A1111 prompt. ``.and()`` becomes ``AND``; ``.blend()`` has no A1111 form."""
    notes: list[str] = []
    conjunction = _COMPEL_CONJUNCTION.match(text)
    if conjunction:
        parts = [p.replace('\\"', '"') for p in re.findall(r'"((?:\\.|[^"\\])*)"', conjunction.group(1))]
        weights = [w.strip() for w in conjunction.group(3).split(",") if w.strip()]
        if conjunction.group(2) == "blend":
            notes.append("A1111 cannot blend prompts; the parts were joined with AND instead.")
        printed = []
        for index, part in enumerate(parts):
            body = print_runs(_merge(_compel_runs(part, 1.0)))
            weight = weights[index] if index < len(weights) else "1"
            printed.append(body if float(weight) == 1 else f"{body} :{weight}")
        return Converted(" AND ".join(printed), tuple(notes))
    return Converted(print_runs(_merge(_compel_runs(text, 1.0))), tuple(notes))


def _compel_runs(text: str, weight: float) -> list[Run]:
    runs: list[Run] = []
    literal: list[str] = []

    def flush() -> None:
        if literal:
            runs.extend(_compel_words("".join(literal), weight))
            literal.clear()

    pos = 0
    while pos < len(text):
        char = text[pos]
        if char == "\\" and pos + 1 < len(text):
            literal.append("\\" + text[pos + 1])
            pos += 2
            continue
        if char == "(":
            end = _closing(text, pos)
            if end is not None:
                flush()
                suffix = _COMPEL_SUFFIX.match(text, end + 1)
                inner_weight = weight * _compel_factor(suffix.group(1)) if suffix else weight
                runs.extend(_compel_runs(text[pos + 1 : end], inner_weight))
                pos = suffix.end() if suffix else end + 1
                continue
        literal.append(char)
        pos += 1
    flush()
    return runs


def _compel_factor(suffix: str) -> float:
    if set(suffix) == {"+"}:
        return COMPEL_PLUS ** len(suffix)
    if set(suffix) == {"-"}:
        return COMPEL_MINUS ** len(suffix)
    return float(suffix)


def _compel_words(text: str, weight: float) -> list[Run]:
    runs: list[Run] = []
    pos = 0
    for match in _COMPEL_WORD.finditer(text):
        runs.append(Run(_unescape(text[pos : match.start()]), weight))
        runs.append(Run(match.group(1), weight * _compel_factor(match.group(2))))
        pos = match.end()
    runs.append(Run(_unescape(text[pos:]), weight))
    return [run for run in runs if run.text]


def _unescape(text: str) -> str:
    return re.sub(r"\\(.)", r"\1", text)
