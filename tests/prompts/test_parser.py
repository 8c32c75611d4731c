"""The A1111 prompt language read into data: tables per construct, malformed input, schedules."""

from __future__ import annotations

import pytest

from sfumato.prompts.parser import ExtraNetwork, Run, parse_emphasis, parse_prompt, split_and

E = 1.1


def runs(text: str) -> list[tuple[str, float]]:
    return [(run.text, round(run.weight, 6)) for run in parse_emphasis(text)]


@pytest.mark.parametrize(
    ("prompt", "expected"),
    [
        ("a cat", [("a cat", 1.0)]),
        ("(cat)", [("cat", 1.1)]),
        ("((cat))", [("cat", round(E * E, 6))]),
        ("[cat]", [("cat", round(1 / E, 6))]),
        ("[[cat]]", [("cat", round(1 / E / E, 6))]),
        ("(cat:1.3)", [("cat", 1.3)]),
        ("(cat: 1.3 )", [("cat", 1.3)]),
        ("(cat:-0.5)", [("cat", -0.5)]),
        ("((cat:1.5))", [("cat", 1.65)]),
        ("[cat:1.5]", [("cat:1.5", round(1 / E, 6))]),  # weights only work with ()
        (
            "a (((house:1.3)) [on] a (hill:0.5)",  # the A1111 wiki's example
            [("a ", 1.0), ("house", 1.573), (" ", 1.1), ("on", 1.0), (" a ", 1.1), ("hill", 0.55)],
        ),
        (r"\(cat\) \[dog\] \\", [("(cat) [dog] \\", 1.0)]),
        (r"a \ b", [("a \\ b", 1.0)]),
        ("(unclosed", [("unclosed", 1.1)]),
        ("[unclosed", [("unclosed", round(1 / E, 6))]),
        ("(a [b", [("a ", 1.1), ("b", 1.0)]),
        ("stray ) and ] and :", [("stray ) and ] and :", 1.0)]),
        ("(a:b)", [("a:b", 1.1)]),
        ("(a:1.2.3)", [("a:1.2.3", 1.1)]),  # not a number: text, like any other
        ("", [("", 1.0)]),
    ],
)
def test_emphasis(prompt: str, expected: list[tuple[str, float]]) -> None:
    assert runs(prompt) == expected


def test_break_splits_runs_even_inside_brackets() -> None:
    parsed = parse_emphasis("a BREAK (b BREAK c)")
    assert parsed == (
        Run("a", 1.0),
        Run("BREAK", 1.0, True),
        Run("b", E),
        Run("BREAK", 1.0, True),
        Run("c", E),
    )
    assert runs("BREAKFAST") == [("BREAKFAST", 1.0)]


@pytest.mark.parametrize(
    ("prompt", "expected"),
    [
        ("a cat", [("a cat", 1.0)]),
        ("a cat :1.2 AND a dog AND a penguin :2.2", [("a cat", 1.2), (" a dog", 1.0), (" a penguin", 2.2)]),
        ("a cat:-1 AND b", [("a cat", -1.0), (" b", 1.0)]),
        ("AND a dog", [("", 1.0), (" a dog", 1.0)]),
        ("a dog AND", [("a dog", 1.0), ("", 1.0)]),
        ("ANDROID", [("ANDROID", 1.0)]),
        ("(cat:1.2)", [("(cat:1.2)", 1.0)]),
    ],
)
def test_and_parts(prompt: str, expected: list[tuple[str, float]]) -> None:
    assert split_and(prompt) == expected


def schedule(prompt: str, steps: int) -> list[tuple[int, int, str]]:
    parsed = parse_prompt(prompt, steps)
    return [
        (entry.start, entry.end, " AND ".join(part.text for part in entry.parts)) for entry in parsed.schedule
    ]


@pytest.mark.parametrize(
    ("prompt", "steps", "expected"),
    [
        ("a cat", 20, [(0, 20, "a cat")]),
        # A1111 keeps `from` while 0-based step <= when: 11 of 20 steps here.
        ("[cat:dog:10]", 20, [(0, 11, "cat"), (11, 20, "dog")]),
        ("[cat:dog:0.5]", 20, [(0, 11, "cat"), (11, 20, "dog")]),
        ("[cat:dog:0.25]", 8, [(0, 3, "cat"), (3, 8, "dog")]),
        ("a [dog:5]", 10, [(0, 6, "a "), (6, 10, "a dog")]),
        ("a [cat::5]", 10, [(0, 6, "a cat"), (6, 10, "a ")]),
        ("[cat:dog: 2 ]", 4, [(0, 3, "cat"), (3, 4, "dog")]),
        ("[cat:dog:100]", 10, [(0, 10, "cat")]),
        ("[cat:dog:0]", 10, [(0, 10, "dog")]),
        ("[cat:dog:9]", 10, [(0, 10, "cat")]),  # switches after the last step: never
        ("a[b:[c:d:2]:1]e", 5, [(0, 2, "abe"), (2, 3, "ace"), (3, 5, "ade")]),
        ("[a|b]", 4, [(0, 2, "a"), (2, 3, "b"), (3, 4, "a")]),
        ("[a|b|c]", 5, [(0, 2, "a"), (2, 3, "b"), (3, 4, "c"), (4, 5, "a")]),
        ("[a|]", 3, [(0, 2, "a"), (2, 3, "")]),
        ("([cat:dog:1]:1.5)", 3, [(0, 2, "(cat:1.5)"), (2, 3, "(dog:1.5)")]),
        ("[red:blue:1] AND x", 3, [(0, 2, "red AND  x"), (2, 3, "blue AND  x")]),
        ("[a:b:c:d]", 4, [(0, 4, "[a:b:c:d]")]),
        ("[a:b]", 4, [(0, 4, "[a:b]")]),
        ("[a:b:]", 4, [(0, 4, "[a:b:]")]),
        ("[a:b:x]", 4, [(0, 4, "[a:b:x]")]),
        ("[unclosed:b:2 x", 4, [(0, 4, "[unclosed:b:2 x")]),
        ("[unclosed:b:2", 4, [(0, 4, "[unclosed:b")]),  # ":2" at the end is an AND weight, as in A1111
        ("a | b [c:d:2]", 4, [(0, 4, "a | b [c:d:2]")]),  # A1111 gives up on scheduling here
        ("", 4, [(0, 4, "")]),
        ("x", 1, [(0, 1, "x")]),
        ("[a:b:1]", 0, [(0, 1, "a")]),
    ],
)
def test_schedules(prompt: str, steps: int, expected: list[tuple[int, int, str]]) -> None:
    assert schedule(prompt, steps) == expected


def test_a1111_test_prompt() -> None:
    """A1111's own API test prompt uses every construct at once."""
    parsed = parse_prompt("((emphasis)), (emphasis1:1.1), [to:1], [from::2], [from:to:0.3], [alt|alt1]", 10)
    texts = [entry.parts[0].text for entry in parsed.schedule]
    assert texts[0] == "((emphasis)), (emphasis1:1.1), , from, from, alt"
    assert texts[-1] == "((emphasis)), (emphasis1:1.1), to, , to, alt"
    first = parsed.schedule[0].parts[0].runs[0]
    assert (first.text, round(first.weight, 6)) == ("emphasis", 1.21)
    assert sum(entry.end - entry.start for entry in parsed.schedule) == 10


def test_pipe_outside_alternation_is_reported() -> None:
    parsed = parse_prompt("a | b [c:d:2]", 4)
    assert any("'|'" in note for note in parsed.notes)


def test_extra_networks_are_taken_out() -> None:
    parsed = parse_prompt("a <lora:film grain:0.8> cat <lyco:style:0.5:0.7> <lora:plain> <hypernet:h:1>", 4)
    assert parsed.schedule[0].parts[0].text == "a  cat"
    assert parsed.networks[0] == ExtraNetwork(
        "lora", "film grain", 0.8, 0.8, ("film grain", "0.8"), "<lora:film grain:0.8>"
    )
    assert (parsed.networks[1].text_encoder_weight, parsed.networks[1].unet_weight) == (0.5, 0.7)
    assert parsed.networks[1].kind == "lora"
    assert parsed.networks[2].unet_weight == 1.0
    assert any("hypernet" in note for note in parsed.notes)


def test_lora_named_weights_and_bad_numbers() -> None:
    parsed = parse_prompt("<lora:a:te=0.2:unet=0.9> <lora:b:x>", 4)
    assert (parsed.networks[0].text_encoder_weight, parsed.networks[0].unet_weight) == (0.2, 0.9)
    assert parsed.networks[1].unet_weight == 1.0
    assert any("not a number" in note for note in parsed.notes)


def test_long_prompt_with_many_brackets_is_linear_enough() -> None:
    prompt = ", ".join(f"(word{i}:1.{i % 9}) [a{i}|b{i}] [x{i}:y{i}:{i % 7}]" for i in range(300))
    parsed = parse_prompt(prompt, 10)
    assert len(parsed.schedule) == 9  # alternation: steps 0 and 1 share the first text, as in A1111
    assert "word299" in parsed.schedule[-1].parts[0].text


def test_deep_nesting_does_not_crash() -> None:
    parsed = parse_prompt("(" * 3000 + "x" + ")" * 3000, 2)
    assert parsed.schedule[0].parts[0].runs[0].text == "x"


@pytest.mark.parametrize("prompt", ["[[[[[[[[[[[[[[[[[[[[a:b:1]", "((((((((((a|b", "[" * 40 + "|" + "]" * 40])
def test_unbalanced_nesting_terminates(prompt: str) -> None:
    parse_prompt(prompt, 3)
