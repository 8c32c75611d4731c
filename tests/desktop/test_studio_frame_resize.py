"""The generation frame resized by dragging its handles: snapped to multiples of 8, undoable."""

from __future__ import annotations

from typing import Any

import pytest
from PySide6.QtCore import QPointF, Qt
from PySide6.QtTest import QTest

from sfumato.desktop.model.document import Rect
from sfumato.desktop.model.frame import handle_at, resized_frame
from sfumato.desktop.model.studio import Tool

START = Rect(0, 0, 96, 96)


@pytest.mark.parametrize(
    ("handle", "point", "expected"),
    [
        ("se", (200.3, 141), Rect(0, 0, 200, 144)),  # 141 → 144: the nearest multiple of 8
        ("e", (163, 500), Rect(0, 0, 160, 96)),  # an edge moves one side only
        ("s", (-300, 131), Rect(0, 0, 96, 128)),
        ("nw", (-37, 10), Rect(-40, 8, 136, 88)),  # the bottom-right corner stays put
        ("n", (0, -1003), Rect(0, -1000, 96, 1096)),
        ("w", (90, 0), Rect(32, 0, 64, 96)),  # never below 64
        ("e", (9000, 0), Rect(0, 0, 4096, 96)),  # nor above 4096
    ],
)
def test_a_handle_dragged_to_a_point_gives_the_frame_sides_in_multiples_of_8(
    handle: str, point: tuple[float, float], expected: Rect
) -> None:
    assert resized_frame(START, handle, *point) == expected


@pytest.mark.parametrize(
    ("point", "expected"),
    [((95, 97), "se"), ((1, 2), "nw"), ((48, -3), "n"), ((20, 95), "s"), ((98, 60), "e"), ((48, 48), None)],
)
def test_the_handle_under_the_pointer_corners_first(point: tuple[float, float], expected: str | None) -> None:
    assert handle_at(START, *point, reach=4) == expected


def _drag(view: Any, start: tuple[float, float], end: tuple[float, float]) -> None:
    viewport = view.viewport()
    a, b = view.mapFromScene(QPointF(*start)), view.mapFromScene(QPointF(*end))
    QTest.mousePress(viewport, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, a)
    middle = view.mapFromScene(QPointF((start[0] + end[0]) / 2, (start[1] + end[1]) / 2))
    QTest.mouseMove(viewport, middle)
    QTest.mouseMove(viewport, b)
    QTest.mouseRelease(viewport, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, b)


@pytest.fixture()
def view(window: Any) -> Any:
    canvas = window.canvas
    window.studio.set_tool(Tool.frame)
    canvas.resetTransform()
    canvas.zoom(2.0)
    canvas.centerOn(80, 80)
    return canvas


def test_dragging_the_frames_corner_resizes_it_and_undo_puts_it_back(window: Any, view: Any) -> None:
    studio = window.studio
    assert all(handle.isVisible() for handle in view._handles.values())
    _drag(view, (96, 96), (163, 131))
    assert studio.frame.rect == Rect(0, 0, 160, 128)
    assert view._frame.rect().width() == 160 and view._handles["se"].pos() == QPointF(160, 128)
    assert view._label.text() == "txt2img: new picture from the prompt  (160×128)"
    assert window.frame_size.currentText() == "160×128"
    request, _ = studio.request()
    assert (request.width, request.height) == (160, 128)
    assert window.undo.undoText() == "Resize the frame"
    window.undo.undo()
    assert studio.frame.rect == START and window.frame_size.currentText() == "96×96"
    window.undo.redo()
    assert studio.frame.rect == Rect(0, 0, 160, 128)


def test_dragging_the_top_left_corner_keeps_the_opposite_corner(window: Any, view: Any) -> None:
    _drag(view, (0, 0), (-37, 10))
    assert window.studio.frame.rect == Rect(-40, 8, 136, 88)


def test_moving_the_frame_by_dragging_is_one_undo_step(window: Any, view: Any) -> None:
    _drag(view, (40, 40), (70, 52))
    assert window.studio.frame.rect == Rect(30, 12, 96, 96)
    assert window.undo.count() == 1 and window.undo.undoText() == "Move the frame"
    window.undo.undo()
    assert window.studio.frame.rect == START


def test_the_handles_show_only_with_the_frame_tool(window: Any, view: Any) -> None:
    window.studio.set_tool(Tool.brush)
    assert not any(handle.isVisible() for handle in view._handles.values())
