"""The prompt panel: the per-word weight editor, highlighting and the presets."""

from __future__ import annotations

from typing import Any

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QTextCursor
from PySide6.QtTest import QTest

from sfumato.core.request import GenerationRequest
from sfumato.desktop.model.highlight import highlight_spans
from sfumato.desktop.model.prompt import IMAGINATION, QUALITY, PromptState
from sfumato.desktop.model.weights import nudge_weight, set_weight, weighted_phrase
from sfumato.desktop.ui.prompt_panel import PromptPanel
from sfumato.prompts.parser import parse_emphasis


def select(text: str, phrase: str) -> tuple[int, int]:
    start = text.index(phrase)
    return start, start + len(phrase)


@pytest.mark.parametrize(
    ("text", "phrase", "weight", "expected"),
    [
        ("a red circle", "red", 1.3, "a (red:1.3) circle"),
        ("a red circle", "red circle", 0.7, "a (red circle:0.7)"),
        ("a (red:1.3) circle", "red", 1.0, "a red circle"),
        ("a (red:1.3) circle", "(red:1.3)", 1.5, "a (red:1.5) circle"),
        ("a ((red)) circle", "red", 1.3, "a (red:1.3) circle"),
        ("a [red] circle", "red", 1.0, "a red circle"),
        ("a red circle", "red", -0.5, "a (red:-0.5) circle"),
        ("a (red:-0.5) circle", "red", 1.2, "a (red:1.2) circle"),
        ("a (red, circle:1.2) star", "circle", 1.4, "a (red, (circle:1.4):1.2) star"),
        ("a red circle", " red ", 1.3, "a (red:1.3) circle"),
    ],
)
def test_set_weight_writes_exactly_the_a1111_syntax(
    text: str, phrase: str, weight: float, expected: str
) -> None:
    new, start, end = set_weight(text, *select(text, phrase), weight)
    assert new == expected
    assert new[start:end] == phrase.strip().strip("()").removesuffix(":1.3")


@pytest.mark.parametrize(
    ("text", "phrase", "weight"),
    [
        ("a (red:1.3) circle", "red", 1.3),
        ("a ((red)) circle", "red", 1.21),
        ("a [red] circle", "red", 0.9091),
        ("a (red:-0.5) x", "red", -0.5),
        ("a red circle", "red", 1.0),
    ],
)
def test_the_weight_shown_is_what_the_parser_reads(text: str, phrase: str, weight: float) -> None:
    assert weighted_phrase(text, *select(text, phrase)).weight == pytest.approx(weight, abs=1e-4)


def test_the_word_at_the_cursor_is_weighted_when_nothing_is_selected() -> None:
    text = "a red circle"
    assert nudge_weight(text, 3, 3, 0.1) == ("a (red:1.1) circle", 3, 6)


def test_weights_round_trip_through_the_parser() -> None:
    text, _, _ = set_weight("a red circle", 2, 5, 1.3)
    runs = {run.text.strip(): run.weight for run in parse_emphasis(text) if run.text.strip()}
    assert runs == {"a": 1.0, "red": 1.3, "circle": 1.0}


def _panel(qtbot: Any) -> PromptPanel:
    panel = PromptPanel(PromptState())
    qtbot.addWidget(panel)
    panel.show()
    return panel


def _select_in(panel: PromptPanel, phrase: str) -> None:
    text = panel.prompt.toPlainText()
    start, end = select(text, phrase)
    cursor = panel.prompt.textCursor()
    cursor.setPosition(start)
    cursor.setPosition(end, QTextCursor.MoveMode.KeepAnchor)
    panel.prompt.setTextCursor(cursor)


def test_a_selection_and_the_slider_give_exactly_the_weight_and_back(qtbot: Any) -> None:
    panel = _panel(qtbot)
    panel.prompt.setPlainText("a red circle on a blue background")
    _select_in(panel, "red circle")
    assert panel.weight.value() == 100
    panel.weight.setValue(130)
    assert panel.prompt.toPlainText() == "a (red circle:1.3) on a blue background"
    assert panel.state.prompt == "a (red circle:1.3) on a blue background"
    assert panel.prompt.textCursor().selectedText() == "red circle"
    assert "1.30" in panel.weight_label.text()
    panel.weight.setValue(100)
    assert panel.prompt.toPlainText() == "a red circle on a blue background"
    panel.weight.setValue(-50)
    assert panel.prompt.toPlainText() == "a (red circle:-0.5) on a blue background"


def test_ctrl_up_and_down_change_the_weight_of_the_selection(qtbot: Any) -> None:
    panel = _panel(qtbot)
    panel.prompt.setPlainText("a blue square")
    _select_in(panel, "blue")
    for _ in range(3):
        QTest.keyClick(panel.prompt, Qt.Key.Key_Up, Qt.KeyboardModifier.ControlModifier)
    assert panel.prompt.toPlainText() == "a (blue:1.3) square"
    assert panel.weight.value() == 130
    for _ in range(3):
        QTest.keyClick(panel.prompt, Qt.Key.Key_Down, Qt.KeyboardModifier.ControlModifier)
    assert panel.prompt.toPlainText() == "a blue square"
    panel.prompt.undo()  # each change is one undo step of the text
    assert panel.prompt.toPlainText() == "a (blue:1.1) square"


def test_highlighting_marks_weights_networks_and_keywords() -> None:
    text = "a (red:1.3) [blue] (x:-1) <lora:ink:0.5> AND [cat:dog:5]"
    kinds = {(text[s.start : s.start + s.length], s.kind) for s in highlight_spans(text)}
    assert {("red", "stronger"), ("blue", "weaker"), ("x", "negative")} <= kinds
    assert {("<lora:ink:0.5>", "network"), ("AND", "keyword"), (":1.3)", "syntax")} <= kinds
    assert ("[", "schedule") in kinds and ("cat:dog:5", "stronger") not in kinds


def test_presets_set_the_real_numbers_and_the_panel_shows_them(qtbot: Any) -> None:
    panel = _panel(qtbot)
    panel.imagination.setCurrentIndex(0)
    panel.imagination.activated.emit(0)
    assert (panel.state.cfg_scale, panel.state.denoising_strength) == (
        IMAGINATION[0].cfg_scale,
        IMAGINATION[0].denoising_strength,
    )
    assert panel.cfg.value() == IMAGINATION[0].cfg_scale
    panel.quality.activated.emit(0)
    assert (panel.steps.value(), panel.sampler.currentText()) == (QUALITY[0].steps, QUALITY[0].sampler)
    panel.steps.setValue(13)
    assert panel.quality.currentText() == "Custom" and panel.state.steps == 13


def test_a_recipe_fills_the_panel(qtbot: Any) -> None:
    panel = _panel(qtbot)
    recipe = GenerationRequest(
        prompt="a (green:1.2) star", negative_prompt="blurry", steps=17, cfg_scale=5.5, seed=42
    )
    panel.state.use_recipe(recipe)
    assert panel.prompt.toPlainText() == "a (green:1.2) star"
    assert (panel.negative.toPlainText(), panel.steps.value(), panel.cfg.value(), panel.seed.value()) == (
        "blurry",
        17,
        5.5,
        42,
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a red <lora:in", ("lora", "in", 12)),
        ("a red <lora:", ("lora", "", 12)),
        ("a photo in ink-st", ("embedding", "ink-st", 11)),
        ("a (red:1.", None),
        ("a", None),
    ],
)
def test_what_the_prompt_offers_to_complete(text: str, expected: tuple[str, str, int] | None) -> None:
    from sfumato.desktop.model.completion import completion_at

    found = completion_at(text, len(text))
    assert (None if found is None else (found.kind, found.prefix, found.start)) == expected


def test_typing_offers_lora_and_embedding_names_from_the_library(qtbot: Any) -> None:
    names = {"lora": ["inkwash", "detail-tweaker"], "embedding": ["easynegative"]}
    panel = PromptPanel(PromptState(), lambda kind: names.get(kind, []))
    qtbot.addWidget(panel)
    panel.show()
    panel.prompt.setFocus()
    QTest.keyClicks(panel.prompt, "a red circle <lora:in")
    completer = panel.prompt.completer
    assert panel.prompt.popup().isVisible() and completer.currentCompletion() == "inkwash"
    panel.prompt.insert_completion("inkwash")
    assert panel.prompt.toPlainText() == "a red circle <lora:inkwash:1>"
    assert panel.state.prompt == "a red circle <lora:inkwash:1>"
    QTest.keyClicks(panel.negative, "eas")
    assert panel.negative.popup().isVisible()
    panel.negative.insert_completion("easynegative")
    assert panel.negative.toPlainText() == "easynegative"
