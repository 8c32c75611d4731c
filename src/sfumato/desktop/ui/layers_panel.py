"""The layers panel: the stack top first, with visibility, opacity, rename, order and delete."""

from __future__ import annotations

from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QIcon, QUndoStack
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QSlider,
    QVBoxLayout,
    QWidget,
)

from sfumato.desktop.model.document import Layer, LayerKind
from sfumato.desktop.model.studio import Studio
from sfumato.desktop.ui.canvas import layer_pixmap
from sfumato.desktop.ui.commands import AddLayer, MoveLayer, RemoveLayer, SetLayer

KIND_WORDS = {LayerKind.picture: "picture", LayerKind.result: "generated", LayerKind.mask: "mask"}


class LayersPanel(QWidget):
    def __init__(self, studio: Studio, undo: QUndoStack, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.studio, self.undo = studio, undo
        self.list = QListWidget()
        self.list.setIconSize(QSize(40, 40))
        self.list.itemChanged.connect(self._item_changed)
        self.list.currentItemChanged.connect(self._current_changed)
        self.opacity = QSlider(Qt.Orientation.Horizontal)
        self.opacity.setRange(0, 100)
        self.opacity.valueChanged.connect(self._opacity_changed)
        self.opacity_label = QLabel("Opacity 100%")
        buttons = QHBoxLayout()
        self.buttons: dict[str, QPushButton] = {}
        for key, text, tip in (
            ("mask", "+ Mask", "A new empty mask over the frame: paint on it where to repaint"),
            ("up", "Up", "Move the layer up"),
            ("down", "Down", "Move the layer down"),
            ("delete", "Delete", "Delete the layer"),
        ):
            button = QPushButton(text)
            button.setToolTip(tip)
            buttons.addWidget(button)
            self.buttons[key] = button
        self.buttons["mask"].clicked.connect(self.add_mask)
        self.buttons["up"].clicked.connect(lambda: self.move_active(+1))
        self.buttons["down"].clicked.connect(lambda: self.move_active(-1))
        self.buttons["delete"].clicked.connect(self.delete_active)
        layout = QVBoxLayout(self)
        layout.addWidget(self.list)
        opacity_row = QHBoxLayout()
        opacity_row.addWidget(self.opacity_label)
        opacity_row.addWidget(self.opacity)
        layout.addLayout(opacity_row)
        layout.addLayout(buttons)
        self._syncing = False
        studio.document.subscribe(self.sync)
        studio.subscribe(lambda what: self.sync() if what == "active" else None)
        self.sync()

    def sync(self) -> None:
        self._syncing = True
        try:
            self.list.clear()
            for layer in reversed(self.studio.document.layers):
                item = QListWidgetItem(QIcon(layer_pixmap(layer)), f"{layer.name}")
                item.setToolTip(f"{layer.name}: {KIND_WORDS[layer.kind]}, {layer.width}×{layer.height}")
                item.setData(Qt.ItemDataRole.UserRole, layer.id)
                item.setFlags(item.flags() | Qt.ItemFlag.ItemIsEditable | Qt.ItemFlag.ItemIsUserCheckable)
                item.setCheckState(Qt.CheckState.Checked if layer.visible else Qt.CheckState.Unchecked)
                self.list.addItem(item)
                if layer.id == self.studio.active_layer:
                    self.list.setCurrentItem(item)
            active = self.studio.active()
            self.opacity.setEnabled(active is not None)
            percent = round(active.opacity * 100) if active is not None else 100
            self.opacity.setValue(percent)
            self.opacity_label.setText(f"Opacity {percent}%")
        finally:
            self._syncing = False

    def _item_changed(self, item: QListWidgetItem) -> None:
        if self._syncing:
            return
        layer_id = int(item.data(Qt.ItemDataRole.UserRole))
        layer = self.studio.document.layer(layer_id)
        visible = item.checkState() == Qt.CheckState.Checked
        if visible != layer.visible:
            self.undo.push(SetLayer(self.studio.document, layer_id, "visible", visible))
        elif item.text().strip() and item.text() != layer.name:
            self.undo.push(SetLayer(self.studio.document, layer_id, "name", item.text().strip()))

    def _current_changed(self, item: QListWidgetItem | None) -> None:
        if not self._syncing and item is not None:
            self.studio.set_active(int(item.data(Qt.ItemDataRole.UserRole)))

    def _opacity_changed(self, value: int) -> None:
        active = self.studio.active()
        if self._syncing or active is None:
            return
        self.undo.push(SetLayer(self.studio.document, active.id, "opacity", value / 100))

    def add_mask(self) -> Layer:
        mask = Layer.empty_mask(f"Mask {self._count(LayerKind.mask) + 1}", self.studio.frame.rect)
        self.undo.push(AddLayer(self.studio.document, mask))
        self.studio.set_active(mask.id)
        return mask

    def _count(self, kind: LayerKind) -> int:
        return sum(layer.kind is kind for layer in self.studio.document.layers)

    def move_active(self, delta: int) -> None:
        active = self.studio.active()
        if active is None:
            return
        index = self.studio.document.index_of(active.id) + delta
        if 0 <= index < len(self.studio.document.layers):
            self.undo.push(MoveLayer(self.studio.document, active.id, index))

    def delete_active(self) -> None:
        active = self.studio.active()
        if active is not None:
            self.undo.push(RemoveLayer(self.studio.document, active.id))
            self.studio.set_active(
                self.studio.document.layers[-1].id if self.studio.document.layers else None
            )
