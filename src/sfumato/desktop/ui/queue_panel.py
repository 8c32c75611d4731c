"""The queue panel: each job with its progress and live preview; cancel and skip."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtGui import QPixmap
from PySide6.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QVBoxLayout,
    QWidget,
)

from sfumato.desktop.model.jobs import JobsModel, JobView
from sfumato.desktop.ui.images import pixmap_from_pil

PREVIEW_SIDE = 64


class JobRow(QFrame):
    def __init__(self, view: JobView, cancel: Callable[[str], None], skip: Callable[[], None]) -> None:
        super().__init__()
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.job_id = view.id
        self.preview = QLabel()
        self.preview.setFixedSize(PREVIEW_SIDE, PREVIEW_SIDE)
        self.preview.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.preview.setStyleSheet("background: #333;")
        self.title = QLabel()
        self.title.setWordWrap(True)
        self.status = QLabel()
        self.progress = QProgressBar()
        self.progress.setRange(0, 1000)
        self.cancel = QPushButton("Cancel")
        self.cancel.clicked.connect(lambda: cancel(self.job_id))
        self.skip = QPushButton("Skip")
        self.skip.setToolTip("Finish this batch with what is drawn so far")
        self.skip.clicked.connect(skip)
        text = QVBoxLayout()
        text.addWidget(self.title)
        text.addWidget(self.progress)
        text.addWidget(self.status)
        buttons = QVBoxLayout()
        buttons.addWidget(self.cancel)
        buttons.addWidget(self.skip)
        layout = QHBoxLayout(self)
        layout.addWidget(self.preview)
        layout.addLayout(text, 1)
        layout.addLayout(buttons)
        self.show_view(view)

    def show_view(self, view: JobView) -> None:
        self.title.setText(view.title)
        self.progress.setValue(round(view.fraction * 1000))
        status = view.state
        if view.state == "running" and view.eta_seconds is not None:
            status += f", {view.eta_seconds:.0f} s left"
        if view.loss is not None and view.state == "running":
            status += f", loss {view.loss:.4f}"
        if view.variants:
            status += f", {len(view.variants)} picture(s)"
        if view.output:
            status += f", wrote {Path(view.output).name}"
        if view.message:
            status += f": {view.message}"
        self.status.setText(status)
        if view.preview is not None:
            pixmap = pixmap_from_pil(view.preview).scaled(
                PREVIEW_SIDE, PREVIEW_SIDE, Qt.AspectRatioMode.KeepAspectRatio
            )
            self.preview.setPixmap(pixmap)
        done = view.state in ("finished", "failed", "cancelled")
        self.cancel.setEnabled(not done)
        self.skip.setEnabled(view.state == "running")

    def preview_pixmap(self) -> QPixmap:
        return self.preview.pixmap()


class QueuePanel(QWidget):
    def __init__(
        self,
        model: JobsModel,
        cancel: Callable[[str], None],
        skip: Callable[[], None],
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.model, self._cancel, self._skip = model, cancel, skip
        self.rows: dict[str, JobRow] = {}
        inner = QWidget()
        self.rows_layout = QVBoxLayout(inner)
        self.rows_layout.addStretch(1)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(inner)
        self.empty = QLabel("No jobs yet. Place the frame and press Generate.")
        self.empty.setWordWrap(True)
        layout = QVBoxLayout(self)
        layout.addWidget(self.empty)
        layout.addWidget(scroll)
        model.subscribe(self.show_job)

    def show_job(self, job_id: str) -> None:
        view = self.model.jobs[job_id]
        row = self.rows.get(job_id)
        if row is None:
            row = self.rows[job_id] = JobRow(view, self._cancel, self._skip)
            self.rows_layout.insertWidget(0, row)  # newest on top
            self.empty.hide()
        row.show_view(view)
