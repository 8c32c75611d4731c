"""The optional name blocklist: prompts that name a listed person or character are refused.

Lists are UTF-8 text files the user edits (format in docs/blocklist.md): one entry a line, aliases
after ``|``, ``#`` for comments. Off unless the settings name at least one list; Sfumato ships no
names. Matching survives what people do to slip a name past a filter: case and diacritics, other
scripts (transliterated by anyascii on both sides), spacing and punctuation between letters
(``j.e.n.n.i.f.e.r``), A1111 syntax around or inside the name (``(name:1.3)``, ``[jen:nifer:0.5]``,
``[jen|nifer]``), and LoRA / embedding file names (``<lora:JenniferExample_v2:0.8>``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from sfumato.core.errors import BlockedPrompt, InvalidSettings
from sfumato.core.request import GenerationRequest

MAX_LINE = 1000
MIN_LETTERS = 3  # a shorter alias would refuse any prompt that holds those letters as a word
_LONGEST_JOIN = 6  # words of a prompt joined to compare with a name written as one word

# Spellings that different transliterations give the same sound (Дж → "Dzh", Τζ → "Tz", J; ου → "oy", "ou"):
# folded on both sides so that a name listed in one script matches it written in another.
_FOLDS = (("dzh", "j"), ("tsh", "ch"), ("tz", "j"), ("dj", "j"), ("ph", "f"), ("ck", "k"), ("oy", "ou"))
_WEIGHT = re.compile(r":\s*-?\d*\.?\d+\s*(?=[)\]>])")  # ":1.3)" ":0.5]" ":0.8>"
_SYNTAX = re.compile(r"[()\[\]{}<>:|]")
_CAMEL = re.compile(r"(?<=[a-z])(?=[A-Z])")
_SPACED_LETTERS = re.compile(r"(?<![a-z0-9])(?:[a-z][^a-z0-9]{1,3}){2,}[a-z](?![a-z0-9])")


@dataclass(frozen=True)
class Entry:
    name: str  # as written first on its line
    list_name: str  # the file's name
    line: int
    aliases: tuple[tuple[str, ...], ...]  # each alias as its normalised words


@dataclass(frozen=True)
class Match:
    entry: Entry
    alias: str  # the normalised alias that matched


def _fold(word: str) -> str:
    for spelling, sound in _FOLDS:
        word = word.replace(spelling, sound)
    return re.sub(r"(.)\1+", r"\1", word)  # doubled letters: Jennifer / Dzhenifer / Jenifer


def _ascii(text: str) -> str:
    from anyascii import anyascii

    return anyascii(text)


def words(text: str) -> list[str]:
    """Normalised words: transliterated to ASCII, camelCase split, lower case, letters and digits only."""
    text = _CAMEL.sub(" ", _ascii(text)).lower()
    return [_fold(word) for word in re.findall(r"[a-z0-9]+", text)]


def _views(prompt: str) -> Iterator[list[str]]:
    """The prompt read several ways, each as a list of words."""
    plain = _WEIGHT.sub("", prompt)
    yield words(_SYNTAX.sub(" ", plain))
    # A1111 syntax inside a word ("[jen:nifer:0.5]", "[jen|nifer]"): the pieces joined.
    yield words(_SYNTAX.sub("", plain))
    # Letters spelled out one by one: "j.e.n.n.i.f.e.r", "j e n n i f e r".
    ascii_text = _ascii(plain).lower()
    yield words(_SPACED_LETTERS.sub(lambda found: re.sub(r"[^a-z]", "", found.group()), ascii_text))


def _holds(prompt_words: Sequence[str], alias: tuple[str, ...]) -> bool:
    count = len(alias)
    for start in range(len(prompt_words)):
        if tuple(prompt_words[start : start + count]) == alias:
            return True
    joined = "".join(alias)
    for start in range(len(prompt_words)):
        for stop in range(start + 1, min(start + _LONGEST_JOIN, len(prompt_words)) + 1):
            if "".join(prompt_words[start:stop]) == joined:
                return True
    return False


@dataclass(frozen=True)
class Blocklist:
    entries: tuple[Entry, ...] = ()

    def find(self, prompt: str) -> Match | None:
        """The first entry the prompt names, or None."""
        if not self.entries or not prompt:
            return None
        views = list(_views(prompt))
        for entry in self.entries:
            for alias in entry.aliases:
                if any(_holds(view, alias) for view in views):
                    return Match(entry=entry, alias=" ".join(alias))
        return None

    def check(self, prompts: Iterable[str]) -> None:
        """Raises BlockedPrompt naming the matched entry and its list."""
        for prompt in prompts:
            found = self.find(prompt)
            if found is not None:
                entry = found.entry
                raise BlockedPrompt(
                    f'The prompt names "{entry.name}" (blocklist {entry.list_name}, line {entry.line}); '
                    "it is not drawn.",
                    "Remove the name from the prompt. The blocklists in use are set in the settings (blocklists).",
                )


def _parse_error(path: Path, line: int, why: str) -> InvalidSettings:
    return InvalidSettings(
        f"The blocklist {path} cannot be read: line {line}: {why}.",
        "Fix that line (format: one name a line, aliases after '|', '#' for comments; see docs/blocklist.md).",
    )


def parse_blocklist(path: Path) -> tuple[Entry, ...]:
    try:
        data = path.read_bytes()
    except OSError as error:
        raise InvalidSettings(
            f"The blocklist {path} cannot be read: {error.strerror or error}.",
            "Check the path in the settings (blocklists).",
        ) from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise _parse_error(path, data[: error.start].count(b"\n") + 1, "it is not UTF-8 text") from None
    entries = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        if len(raw) > MAX_LINE or "\x00" in raw:
            raise _parse_error(path, number, f"longer than {MAX_LINE} characters or holds a NUL byte")
        names = [name.strip() for name in line.split("|")]
        aliases = []
        for name in names:
            if not name:
                raise _parse_error(path, number, "an empty name beside a '|'")
            alias = tuple(words(name))
            if len("".join(alias)) < MIN_LETTERS:
                raise _parse_error(
                    path, number, f"{name!r} has fewer than {MIN_LETTERS} letters to match; write it out"
                )
            aliases.append(alias)
        entries.append(Entry(name=names[0], list_name=path.name, line=number, aliases=tuple(aliases)))
    return tuple(entries)


def load_blocklists(paths: Sequence[Path]) -> Blocklist:
    """Every entry of the listed files; an empty Blocklist (refuses nothing) when there are none."""
    return Blocklist(tuple(entry for path in paths for entry in parse_blocklist(path)))


def request_prompts(request: GenerationRequest) -> list[str]:
    """The texts a request draws: its prompt, the hires pass's and the detailer's prompts (negative prompts
    are what to avoid, so a name there is allowed)."""
    texts = [request.prompt]
    if request.hires is not None:
        texts.append(request.hires.prompt)
    texts += [step.prompt for step in request.postprocess if step.kind == "detail"]
    return [text for text in texts if text]
