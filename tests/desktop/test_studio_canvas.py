"""The canvas document, the mask brush driven by the mouse, and undo/redo of every edit."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from PIL import Image
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtTest import QTest

from sfumato.desktop.model.brush import Brush, dab
from sfumato.desktop.model.document import Document, Layer, LayerKind, Rect
from sfumato.desktop.model.studio import Tool
from sfumato.desktop.ui.commands import AddLayer


def solid(colour: tuple[int, int, int, int], size: tuple[int, int] = (4, 4)) -> Image.Image:
    return Image.new("RGBA", size, colour)


def test_composite_blends_visible_layers_in_order_with_opacity() -> None:
    document = Document()
    document.insert(Layer.from_image("red", solid((255, 0, 0, 255))))
    blue = document.insert(Layer.from_image("blue", solid((0, 0, 255, 255)), x=2))
    document.set(blue.id, "opacity", 0.5)
    out = document.composite(Rect(0, 0, 6, 4))
    assert tuple(out[0, 0]) == (255, 0, 0, 255)  # red alone
    assert tuple(out[0, 3]) == (128, 0, 128, 255)  # half blue over red
    assert tuple(out[0, 5]) == (0, 0, 255, 128)  # half blue over nothing
    document.set(blue.id, "visible", False)
    assert tuple(document.composite(Rect(0, 0, 6, 4))[0, 5]) == (0, 0, 0, 0)


def test_a_hard_dab_fills_its_disc_and_grows_the_mask_past_its_edge() -> None:
    pixels, origin = dab(np.zeros((10, 10), np.uint8), (0, 0), Brush(size=8, hardness=1.0), 9.0, 5.0)
    assert origin == (0, 0) and pixels.shape[1] > 10  # the dab reached past the right edge
    ys, xs = np.mgrid[0 : pixels.shape[0], 0 : pixels.shape[1]]
    distance = np.hypot(xs + 0.5 - 9, ys + 0.5 - 5)
    assert (pixels[distance < 3.9] == 255).all()
    assert (pixels[distance > 4.1] == 0).all()


def test_a_soft_dab_fades_out_towards_its_edge() -> None:
    pixels, _ = dab(np.zeros((21, 21), np.uint8), (0, 0), Brush(size=20, hardness=0.0), 10.5, 10.5)
    row = pixels[10, 10:]
    assert row[0] > 240 and row[5] < row[0] and 100 < row[5] < 160 and row[-1] == 0
    assert (np.diff(row.astype(int)) <= 0).all()


def _drag(view: Any, points: list[tuple[float, float]]) -> None:
    """Press, move and release the left button along scene points, as a user does."""
    viewport = view.viewport()
    positions = [view.mapFromScene(QPointF(x, y)) for x, y in points]
    QTest.mousePress(viewport, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, positions[0])
    for position in positions[1:]:
        QTest.mouseMove(viewport, position)
    QTest.mouseRelease(viewport, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, positions[-1])


def _segment_distance(
    shape: tuple[int, int], origin: tuple[int, int], a: tuple[float, float], b: tuple[float, float]
) -> np.ndarray:
    ys, xs = np.mgrid[0 : shape[0], 0 : shape[1]]
    px, py = xs + origin[0] + 0.5, ys + origin[1] + 0.5
    ax, ay = a
    bx, by = b
    t = np.clip(((px - ax) * (bx - ax) + (py - ay) * (by - ay)) / ((bx - ax) ** 2 + (by - ay) ** 2), 0, 1)
    return np.hypot(px - (ax + t * (bx - ax)), py - (ay + t * (by - ay)))


def _scene_point(view: Any, x: float, y: float) -> tuple[float, float]:
    """Where a click at the view pixel nearest to scene (x, y) lands in the scene."""
    point = view.mapToScene(view.mapFromScene(QPointF(x, y)))
    return point.x(), point.y()


def test_a_mask_drawn_with_the_mouse_has_the_expected_pixels(window: Any, qtbot: Any) -> None:
    view, studio = window.canvas, window.studio
    view.resetTransform()
    view.centerOn(48, 48)
    studio.set_tool(Tool.brush)
    studio.set_brush(size=20, hardness=1.0)
    start, end = _scene_point(view, 20, 30), _scene_point(view, 70, 30)
    _drag(view, [start, (45, 30), end])
    masks = [layer for layer in studio.document.layers if layer.kind is LayerKind.mask]
    assert len(masks) == 1  # painting with no mask made one over the frame
    mask = masks[0]
    distance = _segment_distance(mask.pixels.shape, (mask.x, mask.y), start, end)
    assert (mask.pixels[distance < 9] == 255).all()
    assert (mask.pixels[distance > 11] == 0).all()
    assert (mask.pixels == 255).sum() > 900  # a 50 x 20 stroke with round ends

    # the eraser takes out a round hole in the middle
    studio.set_tool(Tool.eraser)
    studio.set_brush(size=8)
    middle = _scene_point(view, 45, 30)
    _drag(view, [middle])
    hole = _segment_distance(mask.pixels.shape, (mask.x, mask.y), middle, (middle[0] + 1e-3, middle[1]))
    assert (mask.pixels[hole < 3] == 0).all()
    assert (mask.pixels[(hole > 5) & (distance < 9)] == 255).all()

    # each stroke is one undo step
    window.undo.undo()
    assert (mask.pixels[distance < 9] == 255).all()
    window.undo.undo()
    assert not mask.pixels.any()


def test_painting_past_the_mask_grows_it(window: Any) -> None:
    view, studio = window.canvas, window.studio
    view.resetTransform()
    view.centerOn(100, 48)
    studio.set_tool(Tool.brush)
    studio.set_brush(size=10, hardness=1.0)
    _drag(view, [_scene_point(view, 150, 40)])
    mask = studio.active_mask()
    assert mask is not None
    assert mask.rect.right >= 155 and mask.pixels[40 - mask.y, 150 - mask.x] == 255


def _state(document: Document) -> list[tuple[str, str, bool, float, int, int, bytes]]:
    return [
        (layer.name, layer.kind.value, layer.visible, layer.opacity, layer.x, layer.y, layer.pixels.tobytes())
        for layer in document.layers
    ]


def test_undo_and_redo_restore_the_layers_after_every_kind_of_edit(window: Any) -> None:
    studio, undo, panel = window.studio, window.undo, window.layers
    document = studio.document
    states = [_state(document)]

    def done() -> None:
        states.append(_state(document))

    picture = Layer.from_image("Sky", solid((10, 20, 200, 255), (32, 32)))
    undo.push(AddLayer(document, picture))
    studio.set_active(picture.id)
    done()
    panel.add_mask()
    done()
    studio.set_active(picture.id)
    panel.move_active(+1)  # the picture above the mask
    done()
    panel.opacity.setValue(40)
    panel.opacity.setValue(30)  # one slider drag: merged into one step
    done()
    item = next(panel.list.item(i) for i in range(panel.list.count()) if panel.list.item(i).text() == "Sky")
    item.setText("Sea")
    done()
    item = next(panel.list.item(i) for i in range(panel.list.count()) if panel.list.item(i).text() == "Sea")
    item.setCheckState(Qt.CheckState.Unchecked)
    done()
    window.canvas.move_layer(picture.id, 12, -7)
    done()
    studio.set_active(picture.id)
    panel.delete_active()
    done()
    assert states[-2][-1][:6] == ("Sea", "picture", False, 0.3, 12, -7)
    assert undo.count() == len(states) - 1
    for expected in reversed(states[:-1]):
        undo.undo()
        assert _state(document) == expected
    for expected in states[1:]:
        undo.redo()
        assert _state(document) == expected


def test_masking_a_selection_and_framing_it(window: Any) -> None:
    studio = window.studio
    view = window.canvas
    view.resetTransform()
    view.centerOn(48, 48)
    studio.set_tool(Tool.select)
    a, b = _scene_point(view, 10, 12), _scene_point(view, 40, 30)
    _drag(view, [a, b])
    selection = studio.selection
    assert selection is not None
    assert (selection.x, selection.y) == (int(a[0]), int(a[1]))
    assert (selection.right, selection.bottom) == (int(b[0]), int(b[1]))
    window.fill_mask_from_selection()
    mask = studio.active_mask()
    assert mask is not None
    assert (studio.document.mask(selection) == 255).all()
    assert studio.document.mask(Rect(0, 0, 96, 96)).sum() == 255 * selection.width * selection.height
    window.frame_selection()
    frame = studio.frame
    assert abs(frame.x + frame.width / 2 - (selection.x + selection.width / 2)) <= 1


@pytest.mark.parametrize("zoom_in", [True, False])
def test_the_wheel_zooms_the_view(window: Any, zoom_in: bool) -> None:
    view = window.canvas
    before = view.transform().m11()
    view.zoom(1.25 if zoom_in else 0.8)
    assert (view.transform().m11() > before) is zoom_in


def test_the_middle_button_pans(window: Any) -> None:
    view = window.canvas
    view.resetTransform()
    view.centerOn(0, 0)
    before = view.mapToScene(QPoint(100, 100))
    viewport = view.viewport()
    QTest.mousePress(viewport, Qt.MouseButton.MiddleButton, Qt.KeyboardModifier.NoModifier, QPoint(100, 100))
    QTest.mouseMove(viewport, QPoint(140, 120))
    QTest.mouseRelease(
        viewport, Qt.MouseButton.MiddleButton, Qt.KeyboardModifier.NoModifier, QPoint(140, 120)
    )
    after = view.mapToScene(QPoint(100, 100))
    assert (before.x() - after.x(), before.y() - after.y()) == (40, 20)


def test_a_lasso_outline_masks_inside_it_and_alt_unmasks(window: Any) -> None:
    view, studio = window.canvas, window.studio
    view.resetTransform()
    view.centerOn(48, 48)
    studio.set_tool(Tool.lasso)
    corners = [_scene_point(view, x, y) for x, y in ((10, 10), (80, 10), (80, 80), (10, 80))]
    _drag(view, [*corners, corners[0]])
    mask = studio.active_mask()
    assert mask is not None
    inside = studio.document.mask(Rect(12, 12, 66, 66))
    assert (inside == 255).all()
    assert studio.document.mask(Rect(0, 0, 96, 96)).sum() <= 255 * 72 * 72
    assert studio.document.mask(Rect(82, 0, 14, 96)).sum() == 0
    # Alt + outline: a hole
    viewport = view.viewport()
    alt = Qt.KeyboardModifier.AltModifier
    hole = [
        view.mapFromScene(QPointF(*_scene_point(view, x, y)))
        for x, y in ((30, 30), (50, 30), (50, 50), (30, 50))
    ]
    QTest.mousePress(viewport, Qt.MouseButton.LeftButton, alt, hole[0])
    for position in hole[1:]:
        QTest.mouseMove(viewport, position)
    QTest.mouseRelease(viewport, Qt.MouseButton.LeftButton, alt, hole[-1])
    assert studio.document.mask(Rect(32, 32, 16, 16)).sum() == 0
    assert (studio.document.mask(Rect(12, 12, 14, 14)) == 255).all()
    window.undo.undo()
    assert (studio.document.mask(Rect(32, 32, 16, 16)) == 255).all()


def test_a_layer_is_scaled_and_fitted_into_the_frame(window: Any) -> None:
    studio = window.studio
    photo = Layer.from_image("Photo", solid((200, 10, 10, 255), (300, 150)), x=-40, y=7)
    window.undo.push(AddLayer(studio.document, photo))
    studio.set_active(photo.id)
    window.fit_active_to_frame()  # 96x96 frame at 0,0: 96x48, centred
    assert (photo.x, photo.y, photo.width, photo.height) == (0, 24, 96, 48)
    assert tuple(photo.pixels[20, 50]) == (200, 10, 10, 255)
    window.scale_active(2.0)
    assert (photo.x, photo.y, photo.width, photo.height) == (0, 24, 192, 96)
    window.undo.undo()
    window.undo.undo()
    assert (photo.x, photo.y, photo.width, photo.height) == (-40, 7, 300, 150)
