"""A1111's prompt styles: named prompt fragments read from its ``styles.csv``, applied to a prompt.

The file has a header row ``name,prompt,negative_prompt``. A style's text holding ``{prompt}`` has the
prompt put in its place; any other style text is appended after a comma, as A1111 does.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from sfumato.core.errors import InvalidRequest

PLACEHOLDER = "{prompt}"
MAX_STYLES_BYTES = 4 * 1024 * 1024


@dataclass(frozen=True)
class PromptStyle:
    name: str
    prompt: str = ""
    negative_prompt: str = ""


def read_styles(path: Path) -> list[PromptStyle]:
    """The styles of one ``styles.csv``; an unreadable or oversized file gives none."""
    try:
        if path.stat().st_size > MAX_STYLES_BYTES:
            return []
        text = path.read_text("utf-8-sig", errors="replace")
    except OSError:
        return []
    styles: list[PromptStyle] = []
    for row in csv.DictReader(text.splitlines()):
        name = (row.get("name") or "").strip()
        if name:
            styles.append(
                PromptStyle(
                    name, (row.get("prompt") or "").strip(), (row.get("negative_prompt") or "").strip()
                )
            )
    return styles


def styles_in(paths: list[Path]) -> list[PromptStyle]:
    """Every style of the files that exist, the first file's winning where two share a name."""
    found: dict[str, PromptStyle] = {}
    for path in paths:
        for style in read_styles(path):
            found.setdefault(style.name, style)
    return list(found.values())


def apply_style_text(prompt: str, style_text: str) -> str:
    if not style_text:
        return prompt
    if PLACEHOLDER in style_text:
        return style_text.replace(PLACEHOLDER, prompt)
    return f"{prompt}, {style_text}" if prompt.strip() else style_text


def apply_styles(prompt: str, negative: str, names: list[str], styles: list[PromptStyle]) -> tuple[str, str]:
    """(prompt, negative prompt) with the named styles applied in order; an unknown name is refused."""
    by_name = {style.name: style for style in styles}
    for name in names:
        style = by_name.get(name)
        if style is None:
            known = ", ".join(repr(s) for s in list(by_name)[:10]) or "none (no styles.csv was found)"
            raise InvalidRequest(f"There is no prompt style named {name!r}.", f"Known styles: {known}.")
        prompt = apply_style_text(prompt, style.prompt)
        negative = apply_style_text(negative, style.negative_prompt)
    return prompt, negative
