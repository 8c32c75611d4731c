"""Generate → Train: a textual inversion or a LoRA from a folder of pictures, queued as a job (progress,
loss and sample pictures in the queue panel; the file goes into the library, where prompts find it)."""

from __future__ import annotations

from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QWidget,
)

from sfumato.core.errors import InvalidRequest
from sfumato.core.training_request import DEFAULT_LEARNING_RATE, TrainingRequest, parse_training_request

KINDS = (
    ("embedding", "Embedding (textual inversion): a new word, small file"),
    ("lora", "LoRA: changes the model, learns more"),
)


class TrainingDialog(QDialog):
    """Builds a checked TrainingRequest; ``request`` holds it once the dialog is accepted."""

    def __init__(self, model: str | None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Train an embedding or LoRA")
        self.model = model
        self.request: TrainingRequest | None = None
        self.kind = QComboBox()
        for value, words in KINDS:
            self.kind.addItem(words, value)
        self.folder = QLineEdit()
        self.folder.setPlaceholderText("5 to 30 pictures; captions in .txt files beside them")
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._browse)
        self.name = QLineEdit()
        self.name.setPlaceholderText("the prompt word and file name, e.g. mycat")
        self.start_words = QLineEdit()
        self.start_words.setToolTip(
            "Embedding: the words its vectors start from (e.g. 'cat'). LoRA: a trigger word put in every caption."
        )
        self.steps = QSpinBox()
        self.steps.setRange(1, 100_000)
        self.steps.setValue(500)
        self.learning_rate = QDoubleSpinBox()
        self.learning_rate.setDecimals(5)
        self.learning_rate.setRange(0.00001, 1.0)
        self.learning_rate.setSingleStep(0.001)
        self.sample_every = QSpinBox()
        self.sample_every.setRange(0, 100_000)
        self.sample_every.setValue(100)
        self.sample_every.setToolTip("A sample picture every N steps, shown in the queue; 0 = none")
        self.problem = QLabel()
        self.problem.setWordWrap(True)
        self.problem.setStyleSheet("color: #c0392b")
        self.start_label = QLabel()

        folder_row = QHBoxLayout()
        folder_row.addWidget(self.folder)
        folder_row.addWidget(browse)
        form = QFormLayout(self)
        form.addRow("What to train", self.kind)
        form.addRow("Pictures folder", folder_row)
        form.addRow("Name", self.name)
        form.addRow(self.start_label, self.start_words)
        form.addRow("Steps", self.steps)
        form.addRow("Learning rate", self.learning_rate)
        form.addRow("Sample every", self.sample_every)
        form.addRow(self.problem)
        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        ok = buttons.button(QDialogButtonBox.StandardButton.Ok)
        ok.setText("Queue training")
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        form.addRow(buttons)
        self.kind.currentIndexChanged.connect(self._kind_changed)
        self._kind_changed()

    def _kind_changed(self) -> None:
        kind = self.kind.currentData()
        self.start_label.setText("Start from words" if kind == "embedding" else "Trigger word")
        self.learning_rate.setValue(DEFAULT_LEARNING_RATE[kind])

    def _browse(self) -> None:
        chosen = QFileDialog.getExistingDirectory(self, "Folder of training pictures", self.folder.text())
        if chosen:
            self.folder.setText(chosen)

    def build(self) -> TrainingRequest:
        """The request the fields describe; InvalidRequest says what to fix."""
        if not self.folder.text().strip():
            raise InvalidRequest("Choose the folder of training pictures.")
        words = self.start_words.text().strip() or None
        fields: dict[str, object] = {
            "kind": self.kind.currentData(),
            "images": self.folder.text().strip(),
            "name": self.name.text().strip(),
            "steps": self.steps.value(),
            "learning_rate": self.learning_rate.value(),
            "sample_every": self.sample_every.value(),
        }
        if self.model:
            fields["model"] = self.model
        if words is not None:
            fields["init_text" if fields["kind"] == "embedding" else "trigger"] = words
        return parse_training_request(fields)

    def accept(self) -> None:
        try:
            self.request = self.build()
        except InvalidRequest as error:
            self.problem.setText(str(error))
            return
        super().accept()
