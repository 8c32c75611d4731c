"""The gallery: the archive as thumbnails, search by prompt, the recipe beside the picture,
"use this recipe" back into the prompt panel, the picture onto the canvas, its folder."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from PIL import Image
from PySide6.QtCore import QSize, Qt, QUrl
from PySide6.QtGui import QDesktopServices, QIcon
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QSplitter,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

from sfumato.archive.index import ArchiveIndex, Record
from sfumato.core.errors import SfumatoError
from sfumato.core.request import GenerationRequest
from sfumato.desktop.ui.images import pixmap_from_pil

THUMBNAIL = 96
PAGE = 200


class GalleryPanel(QWidget):
    def __init__(
        self,
        archive: ArchiveIndex,
        use_recipe: Callable[[GenerationRequest], None],
        add_to_canvas: Callable[[Path], object],
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.archive, self._use_recipe, self._add_to_canvas = archive, use_recipe, add_to_canvas
        self.search = QLineEdit()
        self.search.setPlaceholderText("Search prompts, e.g. red circle")
        self.search.returnPressed.connect(self.refresh)
        self.pictures = QListWidget()
        self.pictures.setViewMode(QListWidget.ViewMode.IconMode)
        self.pictures.setIconSize(QSize(THUMBNAIL, THUMBNAIL))
        self.pictures.setResizeMode(QListWidget.ResizeMode.Adjust)
        self.pictures.setMovement(QListWidget.Movement.Static)
        self.pictures.setSpacing(4)
        self.pictures.currentItemChanged.connect(self._show_recipe)
        self.recipe = QTextBrowser()
        self.status = QLabel()
        self.use = QPushButton("Use this recipe")
        self.use.setToolTip("Put its prompt and settings into the prompt panel")
        self.use.clicked.connect(self.use_selected)
        self.add = QPushButton("Add to canvas")
        self.add.clicked.connect(self.add_selected)
        self.folder = QPushButton("Open folder")
        self.folder.clicked.connect(self.open_folder)
        refresh = QPushButton("Refresh")
        refresh.clicked.connect(self.refresh)
        top = QHBoxLayout()
        top.addWidget(self.search, 1)
        top.addWidget(refresh)
        side = QWidget()
        side_layout = QVBoxLayout(side)
        side_layout.addWidget(self.recipe, 1)
        for button in (self.use, self.add, self.folder):
            side_layout.addWidget(button)
        splitter = QSplitter(Qt.Orientation.Vertical)
        splitter.addWidget(self.pictures)
        splitter.addWidget(side)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(splitter, 1)
        layout.addWidget(self.status)
        self.records: list[Record] = []

    def refresh(self) -> None:
        text = self.search.text().strip()
        try:
            self.records = self.archive.search(text, limit=PAGE) if text else self.archive.list(limit=PAGE)
        except SfumatoError as error:
            self.status.setText(str(error))
            return
        self.pictures.clear()
        for record in self.records:
            item = QListWidgetItem(self._thumbnail(record), "")
            item.setToolTip(record.prompt)
            item.setData(Qt.ItemDataRole.UserRole, record.id)
            self.pictures.addItem(item)
        found = f"{len(self.records)} picture(s)"
        self.status.setText(f"{found} for “{text}”" if text else f"{found}, newest first")
        if self.records:
            self.pictures.setCurrentRow(0)
        else:
            self.recipe.setPlainText("")

    def _thumbnail(self, record: Record) -> QIcon:
        try:
            with Image.open(self.archive.path_of(record)) as picture:
                picture.thumbnail((THUMBNAIL, THUMBNAIL))
                return QIcon(pixmap_from_pil(picture))
        except (OSError, ValueError):
            return QIcon()

    def selected(self) -> Record | None:
        item = self.pictures.currentItem()
        if item is None:
            return None
        record_id = int(item.data(Qt.ItemDataRole.UserRole))
        return next((r for r in self.records if r.id == record_id), None)

    def _selected_path(self) -> Path | None:
        record = self.selected()
        return self.archive.path_of(record) if record is not None else None

    def _show_recipe(self) -> None:
        record = self.selected()
        if record is None:
            return
        self.recipe.setPlainText(f"{record.path}  ({record.size})\n\n{record.parameters}")

    def use_selected(self) -> None:
        path = self._selected_path()
        if path is None:
            return
        from sfumato.archive.metadata import request_from_image

        try:
            self._use_recipe(request_from_image(path))
        except SfumatoError as error:
            self.status.setText(str(error))

    def add_selected(self) -> None:
        path = self._selected_path()
        if path is not None:
            self._add_to_canvas(path)

    def open_folder(self) -> None:
        path = self._selected_path()
        folder = path.parent if path is not None else self.archive.outputs
        QDesktopServices.openUrl(QUrl.fromLocalFile(str(folder)))
