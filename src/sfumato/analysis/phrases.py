"""Phrase lists that interrogation ranks with CLIP: the ones Sfumato ships and the user's own.

A list is a UTF-8 ``.txt`` file, one phrase a line; ``#`` starts a comment. Two comment lines are
directives: ``# template: a {} shape`` (how each phrase is put to CLIP; default ``{}``) and
``# pick: 3`` (how many of the list's best phrases go into the prompt; default 1). The user's
folder (setting ``interrogate_lists``) adds lists; a file named like a shipped list extends it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path

from sfumato.core.errors import InvalidRequest

MAX_LIST_BYTES = 2_000_000
MAX_PICK = 20
SETS = ("general", "demo")


@dataclass(frozen=True)
class PhraseList:
    name: str
    phrases: tuple[str, ...]
    template: str = "{}"
    pick: int = 1

    def prompts(self) -> list[str]:
        return [self.template.format(p) for p in self.phrases]


def shipped_folder(which: str) -> Path:
    return Path(str(files("sfumato.analysis").joinpath("phrases", which)))


def read_list(path: Path) -> PhraseList:
    """One list file, or an error naming the file and line."""
    try:
        if path.stat().st_size > MAX_LIST_BYTES:
            raise _bad(path, 0, f"it is larger than {MAX_LIST_BYTES // 1_000_000} MB")
        text = path.read_bytes().decode("utf-8")
    except OSError as exc:
        raise _bad(path, 0, exc.strerror or str(exc)) from None
    except UnicodeDecodeError:
        raise _bad(path, 0, "it is not UTF-8 text") from None
    template, pick, phrases = "{}", 1, []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        directive = re.match(r"#\s*(template|pick)\s*:\s*(.*)$", line)
        if directive:
            key, value = directive.group(1), directive.group(2).strip()
            if key == "template":
                if value.count("{}") != 1 or re.search(r"\{[^}]", value.replace("{}", "")):
                    raise _bad(path, number, "a template holds exactly one {} where the phrase goes")
                template = value
            elif not value.isdigit() or not 1 <= int(value) <= MAX_PICK:
                raise _bad(path, number, f"pick must be a whole number from 1 to {MAX_PICK}")
            else:
                pick = int(value)
            continue
        if not line or line.startswith("#"):
            continue
        if "\x00" in line or len(line) > 300:
            raise _bad(path, number, "a phrase is one line of at most 300 characters")
        phrases.append(line)
    if not phrases:
        raise _bad(path, 0, "it holds no phrases")
    return PhraseList(path.stem, tuple(dict.fromkeys(phrases)), template, pick)


def _bad(path: Path, line: int, why: str) -> InvalidRequest:
    where = f"line {line}: " if line else ""
    return InvalidRequest(
        f"The phrase list {path} cannot be used: {where}{why}.",
        "A phrase list is a UTF-8 .txt file, one phrase a line; see the README's Interrogate section.",
    )


def load_lists(which: str, extra: Path | None = None, only: list[str] | None = None) -> list[PhraseList]:
    """The shipped lists of one set (``general`` or ``demo``) plus the user's folder, in name order."""
    lists = {p.stem: read_list(p) for p in sorted(shipped_folder(which).glob("*.txt"))}
    if extra is not None:
        if not extra.is_dir():
            raise InvalidRequest(
                f"The phrase-list folder {extra} does not exist.",
                "Set interrogate_lists to a folder of .txt lists.",
            )
        for path in sorted(extra.glob("*.txt")):
            mine = read_list(path)
            base = lists.get(mine.name)
            if base is not None:
                mine = PhraseList(
                    base.name, tuple(dict.fromkeys(base.phrases + mine.phrases)), base.template, base.pick
                )
            lists[mine.name] = mine
    if only:
        unknown = [name for name in only if name not in lists]
        if unknown:
            raise InvalidRequest(
                f"No phrase list named {', '.join(unknown)}.", f"Lists here: {', '.join(sorted(lists))}."
            )
        return [lists[name] for name in only]
    return list(lists.values())
