"""The AUTOMATIC1111 prompt language, read the way A1111 reads it, into plain data.

A prompt is read in four stages, as in A1111:

1. extra-network tags (``<lora:name:0.8>``) are taken out of the text;
2. the text is split into ``AND`` parts, each with an optional ``:weight`` at its end;
3. each part's scheduling (``[from:to:when]``, ``[to:when]``, ``[from::when]``, ``[a|b|c]``) is
   resolved into the text in force at each step;
4. each step's text is read for emphasis (``(a)``, ``[a]``, ``(a:1.3)``, escapes, ``BREAK``) into
   runs of (text, weight).

Written from A1111's documented behaviour; no A1111 code is used.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

EMPHASIS = 1.1
_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
_WHEN = re.compile(r"\s*(" + _NUMBER.pattern + r")\s*\]")
_WEIGHT_CLOSE = re.compile(r":\s*([+-]?[.\d]+)\s*\)")
_BREAK = re.compile(r"\s*\bBREAK\b\s*")
_AND = re.compile(r"\bAND\b")
_PART_WEIGHT = re.compile(r"^(.*?)(?:\s*:\s*([+-]?(?:\d+\.?|\d*\.\d+)))?\s*$", re.DOTALL)
_EXTRA_NETWORK = re.compile(r"<(\w+):([^>]+)>")


# ----------------------------------------------------------------------------------------------
# Result data


@dataclass(frozen=True)
class Run:
    """Text with one weight; ``is_break`` marks a ``BREAK`` (start a new 75-token chunk)."""

    text: str
    weight: float = 1.0
    is_break: bool = False


@dataclass(frozen=True)
class Part:
    """One ``AND`` sub-prompt as in force during a step range."""

    text: str  # the part's text at these steps (scheduling resolved, emphasis still written)
    runs: tuple[Run, ...]
    weight: float = 1.0


@dataclass(frozen=True)
class StepRange:
    """The parts in force from ``start`` (0-based step) up to, not including, ``end``."""

    start: int
    end: int
    parts: tuple[Part, ...]


@dataclass(frozen=True)
class ExtraNetwork:
    """A ``<kind:name:...>`` tag: ``<lora:name:te_weight:unet_weight>`` (``lyco`` is ``lora``)."""

    kind: str
    name: str
    text_encoder_weight: float = 1.0
    unet_weight: float = 1.0
    args: tuple[str, ...] = ()
    tag: str = ""

    @property
    def weight(self) -> float:
        return self.unet_weight


@dataclass(frozen=True)
class ParsedPrompt:
    source: str
    steps: int
    schedule: tuple[StepRange, ...]
    networks: tuple[ExtraNetwork, ...] = ()
    notes: tuple[str, ...] = field(default=())

    def at(self, step: int) -> tuple[Part, ...]:
        for entry in self.schedule:
            if entry.start <= step < entry.end:
                return entry.parts
        return self.schedule[-1].parts


# ----------------------------------------------------------------------------------------------
# Stage 1: extra networks


def extract_networks(prompt: str) -> tuple[str, tuple[ExtraNetwork, ...], tuple[str, ...]]:
    """Remove every ``<kind:args>`` tag from ``prompt``; return the text, the networks and notes."""
    networks: list[ExtraNetwork] = []
    notes: list[str] = []

    def take(match: re.Match[str]) -> str:
        kind = match.group(1).lower()
        items = match.group(2).split(":")
        if kind == "lyco":
            kind = "lora"
        positional = [item for item in items if "=" not in item]
        named = dict(item.split("=", 1) for item in items if "=" in item)
        name = positional[0].strip() if positional else ""
        try:
            te = float(positional[1]) if len(positional) > 1 else 1.0
            te = float(named.get("te", te))
            unet = float(positional[2]) if len(positional) > 2 else te
            unet = float(named.get("unet", unet))
        except ValueError:
            notes.append(f"{match.group(0)}: the weight is not a number; using 1.")
            te = unet = 1.0
        networks.append(ExtraNetwork(kind, name, te, unet, tuple(items), match.group(0)))
        return ""

    return _EXTRA_NETWORK.sub(take, prompt), tuple(networks), tuple(notes)


# ----------------------------------------------------------------------------------------------
# Stage 2: AND parts


def split_and(prompt: str) -> list[tuple[str, float]]:
    """``a cat :1.2 AND a dog`` -> [("a cat", 1.2), ("a dog", 1.0)]."""
    parts: list[tuple[str, float]] = []
    for piece in _AND.split(prompt):
        match = _PART_WEIGHT.match(piece)
        assert match is not None  # the pattern matches any string
        text, weight = match.group(1), match.group(2)
        parts.append((text, float(weight) if weight is not None else 1.0))
    return parts


# ----------------------------------------------------------------------------------------------
# Stage 3: scheduling and alternation


@dataclass(frozen=True)
class Text:
    text: str


@dataclass(frozen=True)
class Scheduled:
    """``[before:after:when]``; ``before`` is empty for ``[after:when]``."""

    before: tuple[Node, ...]
    after: tuple[Node, ...]
    when: float
    when_text: str


@dataclass(frozen=True)
class Alternate:
    options: tuple[tuple[Node, ...], ...]


@dataclass(frozen=True)
class Group:
    """Emphasis brackets; kept as written (emphasis is read later), with their content parsed."""

    open: str
    inner: tuple[Node, ...]
    weight: tuple[Node, ...] | None  # ``(inner:weight)``
    close: str


Node = Text | Scheduled | Alternate | Group


class _NoMatch(Exception):
    pass


class _Scanner:
    """Recursive descent over the scheduling syntax with backtracking.

    Inside brackets everything must parse; at the top level a bracket or ``:`` that does not
    parse is literal text. A ``|`` outside alternation makes A1111 give up on scheduling for the
    whole prompt, and so do we.
    """

    def __init__(self, text: str) -> None:
        self.text = text
        self.memo: dict[tuple[str, int], tuple[Node, int] | None] = {}

    def _memo(self, kind: str, pos: int, parse: Callable[[int], tuple[Node, int]]) -> tuple[Node, int]:
        # Backtracking over nested brackets would be exponential without remembering answers.
        key = (kind, pos)
        if key not in self.memo:
            try:
                self.memo[key] = parse(pos)
            except _NoMatch:
                self.memo[key] = None
        found = self.memo[key]
        if found is None:
            raise _NoMatch
        return found

    def top(self) -> tuple[Node, ...]:
        nodes: list[Node] = []
        pos = 0
        text = self.text
        while pos < len(text):
            char = text[pos]
            if char in "[(":
                try:
                    node, pos = self.square(pos) if char == "[" else self.round(pos)
                    nodes.append(node)
                    continue
                except _NoMatch:
                    pass
            if char == "|":
                raise _NoMatch
            if char == "\\" and pos + 1 < len(text):
                nodes.append(Text(text[pos : pos + 2]))
                pos += 2
                continue
            nodes.append(Text(char))
            pos += 1
        return tuple(_merge_text(nodes))

    def sequence(self, pos: int) -> tuple[tuple[Node, ...], int]:
        """Plain text, groups, schedules and alternations up to a ``: | ] )`` or the end."""
        nodes: list[Node] = []
        text = self.text
        while pos < len(text):
            char = text[pos]
            if char == "\\" and pos + 1 < len(text):
                nodes.append(Text(text[pos : pos + 2]))
                pos += 2
            elif char == "[":
                node, pos = self.square(pos)
                nodes.append(node)
            elif char == "(":
                node, pos = self.round(pos)
                nodes.append(node)
            elif char in ":|])":
                break
            else:
                nodes.append(Text(char))
                pos += 1
        return tuple(_merge_text(nodes)), pos

    def square(self, pos: int) -> tuple[Node, int]:
        return self._memo("[", pos, self._square)

    def _square(self, pos: int) -> tuple[Node, int]:
        for attempt in (self.scheduled, self.alternate, self.square_group):
            try:
                return attempt(pos + 1)
            except _NoMatch:
                continue
        raise _NoMatch

    def scheduled(self, pos: int) -> tuple[Node, int]:
        first, pos = self.sequence(pos)
        pos = self.expect(pos, ":")
        when = self.when(pos)
        if when is not None:
            value, text, end = when
            return Scheduled((), first, value, text), end
        second, pos = self.sequence(pos)
        pos = self.expect(pos, ":")
        when = self.when(pos)
        if when is None:
            raise _NoMatch
        value, text, end = when
        return Scheduled(first, second, value, text), end

    def when(self, pos: int) -> tuple[float, str, int] | None:
        match = _WHEN.match(self.text, pos)
        if match is None:
            return None
        return float(match.group(1)), match.group(1), match.end()

    def alternate(self, pos: int) -> tuple[Node, int]:
        options: list[tuple[Node, ...]] = []
        option, pos = self.sequence(pos)
        options.append(option)
        while pos < len(self.text) and self.text[pos] == "|":
            option, pos = self.sequence(pos + 1)
            options.append(option)
        if len(options) < 2:
            raise _NoMatch
        return Alternate(tuple(options)), self.expect(pos, "]")

    def square_group(self, pos: int) -> tuple[Node, int]:
        inner, pos = self.sequence(pos)
        return Group("[", inner, None, "]"), self.expect(pos, "]")

    def round(self, pos: int) -> tuple[Node, int]:
        return self._memo("(", pos, self._round)

    def _round(self, pos: int) -> tuple[Node, int]:
        inner, pos = self.sequence(pos + 1)
        weight: tuple[Node, ...] | None = None
        if pos < len(self.text) and self.text[pos] == ":":
            weight, pos = self.sequence(pos + 1)
        return Group("(", inner, weight, ")"), self.expect(pos, ")")

    def expect(self, pos: int, char: str) -> int:
        if pos < len(self.text) and self.text[pos] == char:
            return pos + 1
        raise _NoMatch


def _merge_text(nodes: list[Node]) -> list[Node]:
    merged: list[Node] = []
    for node in nodes:
        if isinstance(node, Text) and merged and isinstance(merged[-1], Text):
            merged[-1] = Text(merged[-1].text + node.text)
        else:
            merged.append(node)
    return merged


def parse_schedule_tree(text: str) -> tuple[tuple[Node, ...], bool]:
    """The scheduling tree of one ``AND`` part; False when A1111 would read it all as plain text."""
    try:
        return _Scanner(text).top(), True
    except (_NoMatch, RecursionError):
        return (Text(text),), False


def _when_step(node: Scheduled, steps: int) -> int:
    value = node.when * steps if node.when < 1 else node.when
    return min(steps, int(value))


def _boundaries(nodes: tuple[Node, ...], steps: int, found: set[int]) -> bool:
    """Add the (1-based, A1111) steps where text changes to ``found``; True if there is alternation."""
    alternates = False
    for node in nodes:
        if isinstance(node, Scheduled):
            step = _when_step(node, steps)
            if step >= 1:
                found.add(step)
            alternates |= _boundaries(node.before, steps, found)
            alternates |= _boundaries(node.after, steps, found)
        elif isinstance(node, Alternate):
            alternates = True
            for option in node.options:
                _boundaries(option, steps, found)
        elif isinstance(node, Group):
            alternates |= _boundaries(node.inner, steps, found)
            if node.weight is not None:
                alternates |= _boundaries(node.weight, steps, found)
    return alternates


def text_at(nodes: tuple[Node, ...], step: int, steps: int) -> str:
    """The text of ``nodes`` at A1111's 1-based ``step``."""
    out: list[str] = []
    for node in nodes:
        if isinstance(node, Text):
            out.append(node.text)
        elif isinstance(node, Scheduled):
            branch = node.before if step <= _when_step(node, steps) else node.after
            out.append(text_at(branch, step, steps))
        elif isinstance(node, Alternate):
            out.append(text_at(node.options[(step - 1) % len(node.options)], step, steps))
        else:
            out.append(node.open + text_at(node.inner, step, steps))
            if node.weight is not None:
                out.append(":" + text_at(node.weight, step, steps))
            out.append(node.close)
    return "".join(out)


def part_schedule(text: str, steps: int) -> tuple[list[tuple[int, int, str]], bool]:
    """[(start, end, text)] with 0-based, end-exclusive steps; False if scheduling was ignored.

    A1111 looks up the text for 0-based sampling step ``i`` as the first entry whose 1-based
    boundary ``b`` has ``i <= b``, so ``[a:b:10]`` of 20 steps shows ``a`` for 11 steps. We keep
    that, so prompts written for A1111 give the same pictures.
    """
    nodes, scheduled = parse_schedule_tree(text)
    found = {steps}
    if _boundaries(nodes, steps, found):
        found.update(range(1, steps + 1))
    entries: list[tuple[int, int, str]] = []
    start = 0
    for boundary in sorted(found):
        end = min(boundary + 1, steps)
        if end <= start:
            continue
        resolved = text_at(nodes, boundary, steps)
        if entries and entries[-1][2] == resolved:
            entries[-1] = (entries[-1][0], end, resolved)
        else:
            entries.append((start, end, resolved))
        start = end
    return entries, scheduled


# ----------------------------------------------------------------------------------------------
# Stage 4: emphasis


def parse_emphasis(text: str) -> tuple[Run, ...]:
    """Runs of (text, weight) of one step's text: ``a (b:1.5) [c]`` -> a 1, b 1.5, c 1/1.1."""
    pieces: list[list[str | float]] = []  # [text, weight], one per literal stretch
    literal: list[str] = []
    rounds: list[int] = []
    squares: list[int] = []

    def flush() -> None:
        if literal:
            pieces.append(["".join(literal), 1.0])
            literal.clear()

    def multiply(start: int, factor: float) -> None:
        flush()
        for piece in pieces[start:]:
            piece[1] = float(piece[1]) * factor

    pos = 0
    while pos < len(text):
        char = text[pos]
        if char == "\\" and pos + 1 < len(text) and text[pos + 1] in "()[]\\":
            literal.append(text[pos + 1])
            pos += 2
            continue
        if char == "(":
            flush()
            rounds.append(len(pieces))
        elif char == "[":
            flush()
            squares.append(len(pieces))
        elif char == ":" and rounds:
            match = _WEIGHT_CLOSE.match(text, pos)
            weight = _float(match.group(1)) if match else None
            if match is not None and weight is not None:
                multiply(rounds.pop(), weight)
                pos = match.end()
                continue
            literal.append(char)
        elif char == ")" and rounds:
            multiply(rounds.pop(), EMPHASIS)
        elif char == "]" and squares:
            multiply(squares.pop(), 1 / EMPHASIS)
        else:
            literal.append(char)
        pos += 1
    flush()
    for start in reversed(rounds):
        multiply(start, EMPHASIS)
    for start in reversed(squares):
        multiply(start, 1 / EMPHASIS)
    return _merge_runs(_split_breaks(pieces))


def _float(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def _split_breaks(pieces: list[list[str | float]]) -> list[Run]:
    runs: list[Run] = []
    for text, weight in pieces:
        for index, chunk in enumerate(_BREAK.split(str(text))):
            if index:
                runs.append(Run("BREAK", 1.0, is_break=True))
            if chunk:
                runs.append(Run(chunk, float(weight)))
    return runs


def _merge_runs(runs: list[Run]) -> tuple[Run, ...]:
    merged: list[Run] = []
    for run in runs:
        last = merged[-1] if merged else None
        if last and not last.is_break and not run.is_break and last.weight == run.weight:
            merged[-1] = Run(last.text + run.text, last.weight)
        else:
            merged.append(run)
    return tuple(merged) or (Run("", 1.0),)


# ----------------------------------------------------------------------------------------------
# Everything together


def parse_prompt(prompt: str, steps: int = 20) -> ParsedPrompt:
    """Read ``prompt`` for a run of ``steps`` steps."""
    steps = max(int(steps), 1)
    text, networks, notes_found = extract_networks(prompt)
    notes = list(notes_found)
    parts = split_and(text)
    schedules: list[list[tuple[int, int, str]]] = []
    for part_text, _ in parts:
        entries, scheduled = part_schedule(part_text, steps)
        if not scheduled:
            notes.append(
                f"A '|' outside [a|b] alternation: scheduling is off in {part_text.strip()!r} (as in A1111)."
            )
        schedules.append(entries)
    starts = sorted({start for entries in schedules for start, _, _ in entries})
    schedule: list[StepRange] = []
    for index, start in enumerate(starts):
        end = starts[index + 1] if index + 1 < len(starts) else steps
        step_parts = tuple(
            Part(part_text, parse_emphasis(part_text), weight)
            for part_text, weight in (
                (_text_for(entries, start), weight)
                for entries, (_, weight) in zip(schedules, parts, strict=True)
            )
        )
        schedule.append(StepRange(start, end, step_parts))
    for network in networks:
        if network.kind != "lora":
            notes.append(f"{network.tag}: '{network.kind}' networks are not supported; it was ignored.")
    return ParsedPrompt(prompt, steps, tuple(schedule), networks, tuple(notes))


def _text_for(entries: list[tuple[int, int, str]], step: int) -> str:
    for start, end, text in entries:
        if start <= step < end:
            return text
    return entries[-1][2]
