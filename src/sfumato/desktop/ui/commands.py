"""Every edit of the document as an undoable command (QUndoStack)."""

from __future__ import annotations

from typing import Any

import numpy as np
from PySide6.QtGui import QUndoCommand

from sfumato.desktop.model.document import Document, Layer, Rect
from sfumato.desktop.model.studio import Studio

_MERGE_SET = 1


class AddLayer(QUndoCommand):
    def __init__(self, document: Document, layer: Layer, index: int | None = None, text: str = "") -> None:
        super().__init__(text or f"Add {layer.name}")
        self.document, self.layer, self.index = document, layer, index

    def redo(self) -> None:
        self.document.insert(self.layer, self.index)

    def undo(self) -> None:
        self.index = self.document.remove(self.layer.id)[1]


class RemoveLayer(QUndoCommand):
    def __init__(self, document: Document, layer_id: int) -> None:
        self.layer = document.layer(layer_id)
        super().__init__(f"Delete {self.layer.name}")
        self.document, self.index = document, document.index_of(layer_id)

    def redo(self) -> None:
        self.layer, self.index = self.document.remove(self.layer.id)

    def undo(self) -> None:
        self.document.insert(self.layer, self.index)


class MoveLayer(QUndoCommand):
    """Change a layer's place in the stack (0 = bottom)."""

    def __init__(self, document: Document, layer_id: int, index: int) -> None:
        super().__init__(f"Reorder {document.layer(layer_id).name}")
        self.document, self.layer_id = document, layer_id
        self.before, self.after = document.index_of(layer_id), index

    def redo(self) -> None:
        self.document.move(self.layer_id, self.after)

    def undo(self) -> None:
        self.document.move(self.layer_id, self.before)


class SetLayer(QUndoCommand):
    """Rename, show/hide, opacity, position: one property. Successive changes of the same
    property of the same layer (an opacity slider dragged) merge into one undo step."""

    def __init__(self, document: Document, layer_id: int, name: str, value: Any) -> None:
        super().__init__(f"Change {name} of {document.layer(layer_id).name}")
        self.document, self.layer_id, self.name = document, layer_id, name
        self.before, self.after = getattr(document.layer(layer_id), name), value

    def id(self) -> int:
        return _MERGE_SET

    def mergeWith(self, other: QUndoCommand) -> bool:  # noqa: N802  (Qt's name)
        if not isinstance(other, SetLayer) or (other.layer_id, other.name) != (self.layer_id, self.name):
            return False
        if self.name not in ("opacity", "x", "y"):
            return False
        self.after = other.after
        return True

    def redo(self) -> None:
        self.document.set(self.layer_id, self.name, self.after)

    def undo(self) -> None:
        self.document.set(self.layer_id, self.name, self.before)


class SetPixels(QUndoCommand):
    """New pixels (and position, since a mask grows as it is painted) for one layer: a brush
    stroke, a filled selection, a picture edited outside."""

    def __init__(
        self,
        document: Document,
        layer_id: int,
        before: tuple[np.ndarray, int, int],
        after: tuple[np.ndarray, int, int],
        text: str = "Paint",
    ) -> None:
        super().__init__(text)
        self.document, self.layer_id, self.before, self.after = document, layer_id, before, after

    def redo(self) -> None:
        self.document.set_pixels(self.layer_id, self.after[0].copy(), self.after[1], self.after[2])

    def undo(self) -> None:
        self.document.set_pixels(self.layer_id, self.before[0].copy(), self.before[1], self.before[2])


class SetFrame(QUndoCommand):
    """The generation frame moved or resized by a drag: one undo step per drag."""

    def __init__(self, studio: Studio, before: Rect, after: Rect, text: str) -> None:
        super().__init__(text)
        self.studio, self.before, self.after = studio, before, after

    def redo(self) -> None:
        self.studio.set_frame(self.after)

    def undo(self) -> None:
        self.studio.set_frame(self.before)
