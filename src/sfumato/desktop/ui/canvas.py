"""The canvas: the document's layers in a zoomable, pannable QGraphicsView, the generation frame,
the selection, the mask brush, live previews and the result variants."""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import numpy as np
from PIL import Image
from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import (
    QBrush,
    QColor,
    QFont,
    QMouseEvent,
    QPainter,
    QPainterPath,
    QPen,
    QPixmap,
    QPolygonF,
    QUndoStack,
    QWheelEvent,
)
from PySide6.QtWidgets import (
    QGraphicsEllipseItem,
    QGraphicsItem,
    QGraphicsPathItem,
    QGraphicsPixmapItem,
    QGraphicsRectItem,
    QGraphicsScene,
    QGraphicsSimpleTextItem,
    QGraphicsView,
    QWidget,
)

from sfumato.core.request import Mode
from sfumato.desktop.model.brush import Brush, dab, fill_polygon, stroke_points
from sfumato.desktop.model.document import Layer, Rect
from sfumato.desktop.model.frame import HANDLES, handle_at, handle_points, resized_frame
from sfumato.desktop.model.studio import Studio, Tool
from sfumato.desktop.ui.commands import AddLayer, SetFrame, SetLayer, SetPixels
from sfumato.desktop.ui.images import mask_overlay, pixmap_from_pil, qimage_from_rgba

FRAME_COLOUR = QColor(80, 200, 255)
MODE_WORDS = {
    Mode.txt2img: "new picture from the prompt",
    Mode.img2img: "repaint the picture under the frame",
    Mode.inpaint: "repaint the masked part",
    Mode.outpaint: "extend the picture into the empty part",
}
_Z_FRAME, _Z_VARIANT, _Z_PREVIEW, _Z_CURSOR = 10_000, 9_000, 9_500, 11_000
HANDLE_PX = 8  # a handle's size on screen, whatever the zoom
HANDLE_CURSORS = {
    "nw": Qt.CursorShape.SizeFDiagCursor,
    "se": Qt.CursorShape.SizeFDiagCursor,
    "ne": Qt.CursorShape.SizeBDiagCursor,
    "sw": Qt.CursorShape.SizeBDiagCursor,
    "n": Qt.CursorShape.SizeVerCursor,
    "s": Qt.CursorShape.SizeVerCursor,
    "e": Qt.CursorShape.SizeHorCursor,
    "w": Qt.CursorShape.SizeHorCursor,
}


def layer_pixmap(layer: Layer) -> QPixmap:
    pixels = mask_overlay(layer.pixels, layer.opacity) if layer.is_mask else layer.pixels
    return QPixmap.fromImage(qimage_from_rgba(pixels))


class CanvasView(QGraphicsView):
    def __init__(self, studio: Studio, undo: QUndoStack, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.studio, self.undo = studio, undo
        self.setScene(QGraphicsScene(self))
        self.scene().setSceneRect(-100_000, -100_000, 200_000, 200_000)  # no edge to the canvas
        self.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, False)
        self.setTransformationAnchor(QGraphicsView.ViewportAnchor.AnchorUnderMouse)
        self.setBackgroundBrush(QBrush(QColor(58, 58, 62)))
        self.setMouseTracking(True)
        self._items: dict[int, QGraphicsPixmapItem] = {}
        self._frame = QGraphicsRectItem()
        self._frame.setPen(QPen(FRAME_COLOUR, 0, Qt.PenStyle.DashLine))
        self._frame.setZValue(_Z_FRAME)
        self._label = QGraphicsSimpleTextItem()
        self._label.setBrush(QBrush(FRAME_COLOUR))
        self._label.setFont(QFont("Sans", 10))
        self._label.setFlag(QGraphicsItem.GraphicsItemFlag.ItemIgnoresTransformations)
        self._label.setZValue(_Z_FRAME)
        self._selection = QGraphicsRectItem()
        self._selection.setPen(QPen(QColor(255, 255, 255), 0, Qt.PenStyle.DotLine))
        self._selection.setBrush(QBrush(QColor(255, 255, 255, 30)))
        self._selection.setZValue(_Z_FRAME)
        self._variant = QGraphicsPixmapItem()
        self._variant.setZValue(_Z_VARIANT)
        self._preview = QGraphicsPixmapItem()
        self._preview.setZValue(_Z_PREVIEW)
        self._lasso = QGraphicsPathItem()
        self._lasso.setPen(QPen(QColor(255, 255, 255), 0, Qt.PenStyle.DashLine))
        self._lasso.setZValue(_Z_FRAME)
        self._cursor = QGraphicsEllipseItem()
        self._cursor.setPen(QPen(QColor(255, 255, 255), 0))
        self._cursor.setZValue(_Z_CURSOR)
        self._handles: dict[str, QGraphicsRectItem] = {}
        for name in HANDLES:
            handle = QGraphicsRectItem(-HANDLE_PX / 2, -HANDLE_PX / 2, HANDLE_PX, HANDLE_PX)
            handle.setPen(QPen(QColor(20, 40, 60), 0))
            handle.setBrush(QBrush(FRAME_COLOUR))
            handle.setFlag(QGraphicsItem.GraphicsItemFlag.ItemIgnoresTransformations)
            handle.setZValue(_Z_FRAME + 1)
            handle.setToolTip("Drag to resize the frame (snaps to multiples of 8)")
            self._handles[name] = handle
            self.scene().addItem(handle)
        for item in (
            self._frame,
            self._label,
            self._selection,
            self._lasso,
            self._variant,
            self._preview,
            self._cursor,
        ):
            self.scene().addItem(item)
        self._drag: _Drag | None = None
        self._stroke: _Stroke | None = None
        self._panning: QPointF | None = None
        studio.document.subscribe(self.sync_layers)
        studio.subscribe(self._on_studio)
        studio.jobs.subscribe(self._on_job)
        self.sync_layers()
        self._on_studio("frame")
        self._on_studio("tool")

    # showing the state ---------------------------------------------------------------------

    def sync_layers(self) -> None:
        layers = {layer.id: layer for layer in self.studio.document.layers}
        for layer_id in list(self._items):
            if layer_id not in layers:
                self.scene().removeItem(self._items.pop(layer_id))
        for z, layer in enumerate(self.studio.document.layers):
            item = self._items.get(layer.id)
            if item is None:
                item = self._items[layer.id] = QGraphicsPixmapItem()
                self.scene().addItem(item)
            self.refresh_layer(layer, item)
            item.setZValue(z)
        self._show_plan()

    def refresh_layer(self, layer: Layer, item: QGraphicsPixmapItem | None = None) -> None:
        item = item or self._items.get(layer.id)
        if item is None:
            return
        item.setPixmap(layer_pixmap(layer))
        item.setPos(layer.x, layer.y)
        item.setVisible(layer.visible)
        item.setOpacity(1.0 if layer.is_mask else layer.opacity)

    def _on_studio(self, what: str) -> None:
        if what == "frame":
            frame = self.studio.frame
            self._frame.setRect(QRectF(frame.x, frame.y, frame.width, frame.height))
            for name, (x, y) in handle_points(frame.rect).items():
                self._handles[name].setPos(x, y)
            self._show_plan()
        elif what == "selection":
            selection = self.studio.selection
            self._selection.setVisible(selection is not None)
            if selection is not None:
                self._selection.setRect(QRectF(selection.x, selection.y, selection.width, selection.height))
        elif what == "tool":
            tool = self.studio.tool
            self.setDragMode(
                QGraphicsView.DragMode.ScrollHandDrag if tool is Tool.pan else QGraphicsView.DragMode.NoDrag
            )
            self._cursor.setVisible(tool in (Tool.brush, Tool.eraser))
            for handle in self._handles.values():
                handle.setVisible(tool is Tool.frame)
            if tool is not Tool.frame:
                self.viewport().unsetCursor()
        elif what == "variants":
            self._show_variant()

    def _show_plan(self) -> None:
        frame = self.studio.frame
        try:
            plan = self.studio.plan()
            words = f"{plan.mode.value}: {MODE_WORDS.get(plan.mode, '')}"
        except ValueError as error:
            words = str(error)
        self._label.setText(f"{words}  ({frame.width}×{frame.height})")
        self._label.setPos(frame.x, frame.y)
        self._label.setY(frame.y - 18 / max(self.transform().m11(), 1e-6))

    def _show_variant(self) -> None:
        variants = self.studio.jobs.variants
        self._variant.setVisible(variants is not None)
        if variants is None:
            return
        with Image.open(variants.current.path) as picture:
            self._variant.setPixmap(pixmap_from_pil(picture))
        self._variant.setPos(variants.frame.x, variants.frame.y)
        self._preview.setVisible(False)

    def _on_job(self, job_id: str) -> None:
        view = self.studio.jobs.jobs[job_id]
        if view.state == "running" and view.preview is not None and view.frame is not None:
            pixmap = pixmap_from_pil(view.preview)
            self._preview.setPixmap(pixmap)
            self._preview.setScale(view.frame.width / max(1, pixmap.width()))
            self._preview.setPos(view.frame.x, view.frame.y)
            self._preview.setVisible(True)
        elif view.state != "running":
            self._preview.setVisible(False)

    # zoom and pan --------------------------------------------------------------------------

    def zoom(self, factor: float) -> None:
        scale = self.transform().m11() * factor
        if 0.05 <= scale <= 64:
            self.scale(factor, factor)
            self._show_plan()

    def zoom_to_fit(self) -> None:
        bounds = self.studio.document.bounds().union(self.studio.frame.rect)
        self.fitInView(
            QRectF(bounds.x - 16, bounds.y - 16, bounds.width + 32, bounds.height + 32),
            Qt.AspectRatioMode.KeepAspectRatio,
        )
        self._show_plan()

    def wheelEvent(self, event: QWheelEvent) -> None:  # noqa: N802
        self.zoom(1.25 if event.angleDelta().y() > 0 else 0.8)

    # tools ---------------------------------------------------------------------------------

    def mousePressEvent(self, event: QMouseEvent) -> None:  # noqa: N802
        if event.button() == Qt.MouseButton.MiddleButton:
            self._panning = event.position()
            return
        if event.button() != Qt.MouseButton.LeftButton or self.studio.tool is Tool.pan:
            super().mousePressEvent(event)
            return
        point = self.mapToScene(event.position().toPoint())
        tool = self.studio.tool
        if tool in (Tool.brush, Tool.eraser):
            self._start_stroke(point)
        elif tool is Tool.select:
            self._drag = _Drag(point)
        elif tool is Tool.lasso:
            erase = bool(event.modifiers() & Qt.KeyboardModifier.AltModifier)
            self._drag = _Drag(point, outline=[(point.x(), point.y())], erase=erase)
            self._show_outline()
        elif tool is Tool.frame:
            frame = self.studio.frame
            handle = self.frame_handle_at(point)
            if handle is not None:
                self._drag = _Drag(point, handle=handle, frame_before=frame.rect)
                return
            inside = not frame.rect.intersect(Rect(int(point.x()), int(point.y()), 1, 1)).empty
            offset = (
                point - QPointF(frame.x, frame.y) if inside else QPointF(frame.width / 2, frame.height / 2)
            )
            self._drag = _Drag(point, offset=offset, frame_before=frame.rect)
            self._move_frame(point)
        elif tool is Tool.move and (layer := self.studio.active()) is not None:
            self._drag = _Drag(point, layer_id=layer.id, origin=(layer.x, layer.y))

    def mouseMoveEvent(self, event: QMouseEvent) -> None:  # noqa: N802
        if self._panning is not None:
            delta = event.position() - self._panning
            self._panning = event.position()
            self.horizontalScrollBar().setValue(self.horizontalScrollBar().value() - int(delta.x()))
            self.verticalScrollBar().setValue(self.verticalScrollBar().value() - int(delta.y()))
            return
        point = self.mapToScene(event.position().toPoint())
        radius = self.studio.brush.radius
        self._cursor.setRect(QRectF(point.x() - radius, point.y() - radius, 2 * radius, 2 * radius))
        if self._stroke is not None:
            self._continue_stroke(point)
            return
        drag = self._drag
        if drag is None and self.studio.tool is Tool.frame:
            handle = self.frame_handle_at(point)
            if handle is None:
                self.viewport().unsetCursor()
            else:
                self.viewport().setCursor(HANDLE_CURSORS[handle])
        if drag is None:
            super().mouseMoveEvent(event)
        elif drag.handle is not None:
            assert drag.frame_before is not None
            self.studio.set_frame(resized_frame(drag.frame_before, drag.handle, point.x(), point.y()))
        elif self.studio.tool is Tool.select:
            self.studio.set_selection(_rect(drag.start, point))
        elif drag.outline is not None:
            drag.outline.append((point.x(), point.y()))
            self._show_outline()
        elif self.studio.tool is Tool.frame:
            self._move_frame(point)
        elif drag.layer_id is not None and (item := self._items.get(drag.layer_id)) is not None:
            item.setPos(
                drag.origin[0] + round(point.x() - drag.start.x()),
                drag.origin[1] + round(point.y() - drag.start.y()),
            )

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:  # noqa: N802
        if event.button() == Qt.MouseButton.MiddleButton:
            self._panning = None
            return
        if self._stroke is not None:
            self._end_stroke()
            return
        drag, self._drag = self._drag, None
        if drag is None:
            super().mouseReleaseEvent(event)
        elif drag.outline is not None:
            self._lasso.setPath(QPainterPath())
            self.mask_outline(drag.outline, erase=drag.erase)
        elif drag.layer_id is not None and (item := self._items.get(drag.layer_id)) is not None:
            self.move_layer(drag.layer_id, int(item.pos().x()), int(item.pos().y()))
        elif drag.frame_before is not None and drag.frame_before != self.studio.frame.rect:
            text = "Resize the frame" if drag.handle is not None else "Move the frame"
            self.undo.push(SetFrame(self.studio, drag.frame_before, self.studio.frame.rect, text))

    def _move_frame(self, point: QPointF) -> None:
        assert self._drag is not None
        offset = self._drag.offset
        self.studio.move_frame(round(point.x() - offset.x()), round(point.y() - offset.y()))

    def frame_handle_at(self, point: QPointF) -> str | None:
        """The frame's handle under a canvas point, within a handle's reach on screen."""
        reach = HANDLE_PX / max(self.transform().m11(), 1e-6)
        return handle_at(self.studio.frame.rect, point.x(), point.y(), reach)

    def move_layer(self, layer_id: int, x: int, y: int) -> None:
        layer = self.studio.document.layer(layer_id)
        if (x, y) == (layer.x, layer.y):
            return
        self.undo.beginMacro(f"Move {layer.name}")
        self.undo.push(SetLayer(self.studio.document, layer_id, "x", x))
        self.undo.push(SetLayer(self.studio.document, layer_id, "y", y))
        self.undo.endMacro()

    def _show_outline(self) -> None:
        assert self._drag is not None and self._drag.outline is not None
        path = QPainterPath()
        path.addPolygon(QPolygonF([QPointF(x, y) for x, y in self._drag.outline]))
        path.closeSubpath()
        self._lasso.setPath(path)

    def mask_outline(self, outline: list[tuple[float, float]], erase: bool = False) -> None:
        """Mask (or with ``erase`` unmask) inside a freehand outline, as one undo step."""
        if len(outline) < 3:
            return
        mask = self.target_mask()
        before = (mask.pixels.copy(), mask.x, mask.y)
        pixels, origin = fill_polygon(mask.pixels.copy(), (mask.x, mask.y), outline, 0 if erase else 255)
        name = "Unmask outline" if erase else "Mask outline"
        self.undo.push(SetPixels(self.studio.document, mask.id, before, (pixels, *origin), name))

    # the mask brush ------------------------------------------------------------------------

    def target_mask(self) -> Layer:
        """The mask to paint on; a new one over the frame when there is none."""
        mask = self.studio.active_mask()
        if mask is None:
            mask = Layer.empty_mask("Mask", self.studio.frame.rect)
            self.undo.push(AddLayer(self.studio.document, mask))
            self.studio.set_active(mask.id)
        return mask

    def _start_stroke(self, point: QPointF) -> None:
        mask = self.target_mask()
        brush = replace(self.studio.brush, erase=self.studio.tool is Tool.eraser)
        self._stroke = _Stroke(mask.id, (mask.pixels.copy(), mask.x, mask.y), (point.x(), point.y()), brush)
        self._paint(mask, [(point.x(), point.y())])

    def _continue_stroke(self, point: QPointF) -> None:
        stroke = self._stroke
        assert stroke is not None
        points = stroke_points(stroke.last, (point.x(), point.y()), stroke.brush)
        stroke.last = (point.x(), point.y())
        self._paint(self.studio.document.layer(stroke.layer_id), points)

    def _paint(self, mask: Layer, points: list[tuple[float, float]]) -> None:
        assert self._stroke is not None
        pixels, origin = mask.pixels, (mask.x, mask.y)
        for cx, cy in points:
            pixels, origin = dab(pixels, origin, self._stroke.brush, cx, cy)
        # painted in place while the stroke lasts; the undo command records it at the end
        mask.pixels, mask.x, mask.y = pixels, origin[0], origin[1]
        self.refresh_layer(mask)

    def _end_stroke(self) -> None:
        stroke, self._stroke = self._stroke, None
        assert stroke is not None
        mask = self.studio.document.layer(stroke.layer_id)
        after = (mask.pixels.copy(), mask.x, mask.y)
        before = stroke.before
        if after[1:] == before[1:] and np.array_equal(after[0], before[0]):
            return
        name = "Erase mask" if stroke.brush.erase else "Paint mask"
        self.undo.push(SetPixels(self.studio.document, stroke.layer_id, before, after, name))


@dataclass
class _Drag:
    start: QPointF
    offset: QPointF = field(default_factory=QPointF)  # the frame's corner from the pointer
    layer_id: int | None = None  # the layer being moved
    origin: tuple[int, int] = (0, 0)
    outline: list[tuple[float, float]] | None = None  # the lasso's points
    erase: bool = False
    handle: str | None = None  # the frame's handle being dragged
    frame_before: Rect | None = None  # the frame when a frame drag began


@dataclass
class _Stroke:
    layer_id: int
    before: tuple[np.ndarray, int, int]
    last: tuple[float, float]
    brush: Brush


def _rect(a: QPointF, b: QPointF) -> Rect:
    x0, x1 = sorted((math.floor(a.x()), math.floor(b.x())))
    y0, y1 = sorted((math.floor(a.y()), math.floor(b.y())))
    return Rect(x0, y0, x1 - x0, y1 - y0)
