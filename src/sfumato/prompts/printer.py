"""Parsed prompt data -> A1111 prompt text (the inverse of ``parser``)."""

from __future__ import annotations

from collections.abc import Sequence

from sfumato.prompts.parser import ExtraNetwork, ParsedPrompt, Part, Run

_A1111_SPECIAL = "\\()[]"


def escape(text: str, special: str = _A1111_SPECIAL) -> str:
    return "".join("\\" + char if char in special else char for char in text)


def format_weight(weight: float) -> str:
    return f"{round(weight, 4):g}"


def print_runs(runs: Sequence[Run]) -> str:
    """``(text:1.3)`` for weighted runs, escaped text for the rest, ``BREAK`` between chunks."""
    out: list[str] = []
    for run in runs:
        if run.is_break:
            out.append(" BREAK ")
        elif round(run.weight, 4) == 1:
            out.append(escape(run.text))
        elif run.text:
            out.append(f"({escape(run.text)}:{format_weight(run.weight)})")
    return "".join(out)


def print_parts(parts: Sequence[Part], texts: Sequence[str] | None = None) -> str:
    """``a :1.2 AND b``; ``texts`` replaces each part's printed runs when given."""
    printed: list[str] = []
    for index, part in enumerate(parts):
        text = (texts[index] if texts is not None else print_runs(part.runs)).strip()
        printed.append(text if part.weight == 1 else f"{text} :{format_weight(part.weight)}")
    return " AND ".join(printed)


def print_network(network: ExtraNetwork) -> str:
    weights = format_weight(network.text_encoder_weight)
    if network.unet_weight != network.text_encoder_weight:
        weights += ":" + format_weight(network.unet_weight)
    return f"<{network.kind}:{network.name}:{weights}>"


def print_prompt(parsed: ParsedPrompt) -> str:
    """A prompt that A1111 (and Sfumato) reads back as the same schedule, weights and networks.

    A schedule is written as nested ``[before:after:step]`` per ``AND`` part, with step numbers.
    """
    first = parsed.schedule[0].parts
    texts: list[str] = []
    for index in range(len(first)):
        text = print_runs(first[index].runs)
        for entry in parsed.schedule[1:]:
            # A1111 keeps `before` through 0-based step `when`, so the boundary is start - 1.
            text = f"[{text}:{print_runs(entry.parts[index].runs)}:{entry.start - 1}]"
        texts.append(text)
    networks = " ".join(print_network(network) for network in parsed.networks)
    body = print_parts(first, texts)
    return f"{body} {networks}".strip() if networks else body
