"""Printer round trips and the compel / ComfyUI converters."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from sfumato.cli.prompt import prompt_app
from sfumato.prompts.convert import from_comfy, from_compel, to_comfy, to_compel
from sfumato.prompts.parser import parse_emphasis, parse_prompt
from sfumato.prompts.printer import print_prompt, print_runs


def weights(prompt: str) -> list[tuple[str, float]]:
    return [(run.text, round(run.weight, 4)) for run in parse_emphasis(prompt) if not run.is_break]


def schedule(prompt: str, steps: int) -> list[tuple[int, int, list[tuple[float, list[tuple[str, float]]]]]]:
    parsed = parse_prompt(prompt, steps)
    return [
        (e.start, e.end, [(p.weight, [(t.strip(), w) for t, w in weights(p.text)]) for p in e.parts])
        for e in parsed.schedule
    ]


@pytest.mark.parametrize(
    "prompt",
    [
        "a (red:1.5) circle",
        "a (((house:1.3)) [on] a (hill:0.5)",
        r"literal \(brackets\) and \[these\] and \\",
        "(text:-0.5), [[faint]]",
        "a BREAK b",
        "(unclosed",
        "stray ) ] : here",
    ],
)
def test_runs_round_trip(prompt: str) -> None:
    printed = print_runs(parse_emphasis(prompt))
    assert weights(printed) == weights(prompt)


@pytest.mark.parametrize(
    "prompt",
    [
        "a [red:blue:0.5] circle",
        "[a|b] and [c:d:2]",
        "a cat :1.2 AND a (dog:1.3) AND [x:y:3] :0.5",
        "plain <lora:film grain:0.8> <lora:b:0.3:0.9>",
    ],
)
def test_prompt_round_trip_keeps_schedule_weights_and_networks(prompt: str) -> None:
    printed = print_prompt(parse_prompt(prompt, 10))
    assert schedule(printed, 10) == schedule(prompt, 10)
    assert [(n.name, n.text_encoder_weight, n.unet_weight) for n in parse_prompt(printed, 10).networks] == [
        (n.name, n.text_encoder_weight, n.unet_weight) for n in parse_prompt(prompt, 10).networks
    ]


@pytest.mark.parametrize(
    ("a1111", "comfy"),
    [
        ("a (red:1.5) circle", "a (red:1.5) circle"),
        ("((red))", "(red:1.21)"),
        ("[red]", "(red:0.9091)"),
        (r"\(x\) [y]", r"\(x\) (y:0.9091)"),
    ],
)
def test_to_comfy(a1111: str, comfy: str) -> None:
    assert to_comfy(a1111).text == comfy


def test_to_comfy_notes_what_it_cannot_say() -> None:
    converted = to_comfy("a [red:blue:5] cat <lora:x:1> AND dog", embeddings=["cat"])
    assert converted.text == "a red embedding:cat, dog"
    assert len(converted.notes) == 3


@pytest.mark.parametrize(
    ("comfy", "a1111_weights"),
    [
        ("((a:1.5))", [("a", 1.5)]),  # ComfyUI: an explicit weight replaces the outer ones
        ("((a))", [("a", 1.21)]),
        ("x [y] embedding:style.pt z", [("x [y] style z", 1.0)]),
        (r"\(x\)", [("(x)", 1.0)]),
        ("(a:-0.5) b", [("a", -0.5), (" b", 1.0)]),
    ],
)
def test_from_comfy(comfy: str, a1111_weights: list[tuple[str, float]]) -> None:
    assert weights(from_comfy(comfy).text) == a1111_weights


@pytest.mark.parametrize(
    ("compel", "a1111_weights"),
    [
        ("a (red)1.5 circle", [("a ", 1.0), ("red", 1.5), (" circle", 1.0)]),
        ("a red+ circle", [("a ", 1.0), ("red", 1.1), (" circle", 1.0)]),
        ("a red-- circle", [("a ", 1.0), ("red", 0.81), (" circle", 1.0)]),
        ("(a (red)++ circle)0.5", [("a ", 0.5), ("red", 0.605), (" circle", 0.5)]),
        ("(grouped only) here", [("grouped only here", 1.0)]),
        (r"\(literal\)", [("(literal)", 1.0)]),
    ],
)
def test_from_compel(compel: str, a1111_weights: list[tuple[str, float]]) -> None:
    assert weights(from_compel(compel).text) == a1111_weights


def test_compel_conjunction_and_back() -> None:
    converted = from_compel('("a cat", "a (dog)1.3").and(1, 0.5)')
    assert converted.text == "a cat AND a (dog:1.3) :0.5"
    assert to_compel(converted.text).text == '("a cat", "a (dog)1.3").and(1, 0.5)'
    assert from_compel('("a", "b").blend(0.5, 0.5)').notes


def words(prompt: str) -> list[tuple[str, float]]:
    """Each word with its weight: what reaches the tokenizer."""
    return [(word, round(run.weight, 4)) for run in parse_emphasis(prompt) for word in run.text.split()]


def test_to_compel_round_trips_weights() -> None:
    prompt = "a (((house:1.3)) [on] a (hill:0.5)"
    assert words(from_compel(to_compel(prompt).text).text) == words(prompt)
    assert to_compel("(x:-1)").notes


def test_explain_json_for_scripts() -> None:
    result = CliRunner().invoke(
        prompt_app,
        ["explain", "a (red:1.5) [cat:dog:0.5] <lora:nowhere:0.7> BREAK x", "--steps", "10", "--json"],
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert [(e["start"], e["end"]) for e in report["schedule"]] == [(0, 6), (6, 10)]
    part = report["schedule"][0]["parts"][0]
    assert {"text": "red", "weight": 1.5} in part["runs"]
    assert part["chunk_tokens"] == [3, 1]
    assert report["loras"] == [
        {"name": "nowhere", "text_encoder_weight": 0.7, "unet_weight": 0.7, "found": False, "path": None}
    ]


def test_explain_for_people() -> None:
    result = CliRunner().invoke(prompt_app, ["explain", "(red:1.5) cat <lora:gone:1>", "--steps", "4"])
    assert result.exit_code == 0
    assert "red×1.5" in result.output and "not found" in result.output
