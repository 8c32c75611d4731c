"""The prompt panel: the prompt with A1111 syntax highlighted and a per-word weight editor, the
negative prompt, "imagination" and "time vs quality" presets over the real numbers."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QStringListModel, Qt, Signal
from PySide6.QtGui import (
    QColor,
    QFont,
    QKeyEvent,
    QSyntaxHighlighter,
    QTextCharFormat,
    QTextCursor,
    QTextDocument,
)
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QCompleter,
    QDoubleSpinBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QSlider,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from sfumato.core.request import SAMPLERS, SCHEDULE_TYPES
from sfumato.desktop.model.completion import Completion, complete, completion_at
from sfumato.desktop.model.highlight import highlight_spans
from sfumato.desktop.model.library_view import insert_tag
from sfumato.desktop.model.prompt import IMAGINATION, QUALITY, PromptState, matching_preset
from sfumato.desktop.model.weights import (
    MAX_WEIGHT,
    MIN_WEIGHT,
    STEP,
    nudge_weight,
    set_weight,
    weighted_phrase,
)

_COLOURS = {
    "stronger": QColor(255, 160, 60),
    "weaker": QColor(120, 170, 255),
    "negative": QColor(255, 80, 80),
    "syntax": QColor(140, 140, 140),
    "network": QColor(190, 120, 255),
    "keyword": QColor(90, 210, 120),
    "schedule": QColor(240, 200, 60),
}
SLIDER_SCALE = 100  # the weight slider works in hundredths


class PromptHighlighter(QSyntaxHighlighter):
    def __init__(self, document: QTextDocument) -> None:
        super().__init__(document)
        self.formats: dict[str, QTextCharFormat] = {}
        for kind, colour in _COLOURS.items():
            char_format = QTextCharFormat()
            char_format.setForeground(colour)
            if kind in ("stronger", "negative", "keyword"):
                char_format.setFontWeight(QFont.Weight.Bold)
            self.formats[kind] = char_format

    def highlightBlock(self, text: str) -> None:  # noqa: N802
        for span in highlight_spans(text):
            self.setFormat(span.start, span.length, self.formats[span.kind])


class PromptEdit(QPlainTextEdit):
    """Ctrl+Up / Ctrl+Down change the weight of the selected words (or the word at the cursor);
    LoRA and embedding names from the model library are offered as they are typed."""

    def __init__(
        self, placeholder: str, names: Callable[[str], list[str]] | None = None, parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self.setPlaceholderText(placeholder)
        self.highlighter = PromptHighlighter(self.document())
        self.setTabChangesFocus(True)
        self.names = names or (lambda kind: [])
        self.completer = QCompleter([], self)
        self.completer.setWidget(self)
        self.completer.setCaseSensitivity(Qt.CaseSensitivity.CaseInsensitive)
        self.completer.activated.connect(self.insert_completion)
        self._completing: Completion | None = None

    def popup(self) -> QAbstractItemView:
        popup = self.completer.popup()
        assert popup is not None  # a completer always has its list
        return popup

    def offer_completions(self) -> None:
        cursor = self.textCursor().position()
        found = completion_at(self.toPlainText(), cursor)
        names = self.names(found.kind) if found is not None else []
        matching = [n for n in names if found is not None and n.lower().startswith(found.prefix.lower())]
        if found is None or not matching or (found.kind == "embedding" and matching == [found.prefix]):
            self._completing = None
            self.popup().hide()
            return
        self._completing = found
        self.completer.setModel(QStringListModel(names, self.completer))
        self.completer.setCompletionPrefix(found.prefix)
        rect = self.cursorRect()
        rect.setWidth(240)
        self.completer.complete(rect)

    def insert_completion(self, name: str) -> None:
        found = self._completing
        if found is None:
            return
        text, position = complete(self.toPlainText(), self.textCursor().position(), found, name)
        self._completing = None
        cursor = self.textCursor()
        cursor.beginEditBlock()
        cursor.select(QTextCursor.SelectionType.Document)
        cursor.insertText(text)
        cursor.endEditBlock()
        cursor.setPosition(position)
        self.setTextCursor(cursor)

    def selection(self) -> tuple[int, int]:
        cursor = self.textCursor()
        return cursor.selectionStart(), cursor.selectionEnd()

    def replace_all(self, text: str, start: int, end: int) -> None:
        """New text as one undoable edit, with the phrase selected again."""
        cursor = self.textCursor()
        cursor.beginEditBlock()
        cursor.select(QTextCursor.SelectionType.Document)
        cursor.insertText(text)
        cursor.endEditBlock()
        cursor.setPosition(start)
        cursor.setPosition(end, QTextCursor.MoveMode.KeepAnchor)
        self.setTextCursor(cursor)

    def set_weight(self, weight: float) -> None:
        self.replace_all(*set_weight(self.toPlainText(), *self.selection(), weight))

    def keyPressEvent(self, event: QKeyEvent) -> None:  # noqa: N802
        control = event.modifiers() & Qt.KeyboardModifier.ControlModifier
        if self.popup().isVisible() and event.key() in (
            Qt.Key.Key_Return,
            Qt.Key.Key_Enter,
            Qt.Key.Key_Tab,
            Qt.Key.Key_Escape,
        ):
            event.ignore()  # the completer's popup takes these
            return
        if control and event.key() in (Qt.Key.Key_Up, Qt.Key.Key_Down):
            delta = STEP if event.key() == Qt.Key.Key_Up else -STEP
            self.replace_all(*nudge_weight(self.toPlainText(), *self.selection(), delta))
            return
        super().keyPressEvent(event)
        if event.text() and not control:
            self.offer_completions()


class PromptPanel(QWidget):
    generate_requested = Signal()

    def __init__(
        self,
        state: PromptState,
        names: Callable[[str], list[str]] | None = None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.state = state
        self._syncing = False
        self.prompt = PromptEdit(
            "What to paint, e.g. a red circle at the top left on a blue background", names
        )
        self.negative = PromptEdit("What to keep out, e.g. blurry", names)
        self.negative.setMaximumHeight(60)
        self.prompt.textChanged.connect(lambda: self._set(prompt=self.prompt.toPlainText()))
        self.negative.textChanged.connect(lambda: self._set(negative_prompt=self.negative.toPlainText()))

        # the weight editor
        self.weight_label = QLabel("Weight: select words, then drag or press Ctrl+↑/↓")
        self.weight_label.setWordWrap(True)
        self.weight = QSlider(Qt.Orientation.Horizontal)
        self.weight.setRange(round(MIN_WEIGHT * SLIDER_SCALE), round(MAX_WEIGHT * SLIDER_SCALE))
        self.weight.setSingleStep(5)
        self.weight.setPageStep(10)
        self.weight.setValue(SLIDER_SCALE)
        self.weight.setToolTip(
            "Select words in the prompt, then drag (or press Ctrl+Up / Ctrl+Down in the prompt)"
        )
        self.weight.valueChanged.connect(self._weight_moved)
        self.prompt.cursorPositionChanged.connect(self._show_weight)
        self.prompt.selectionChanged.connect(self._show_weight)

        # imagination and quality
        self.imagination = QComboBox()
        self.imagination.addItems([p.name for p in IMAGINATION] + ["Custom"])
        self.imagination.activated.connect(self._imagination_chosen)
        self.cfg = QDoubleSpinBox()
        self.cfg.setRange(0, 30)
        self.cfg.setSingleStep(0.5)
        self.cfg.setToolTip("CFG scale: how closely the picture follows the prompt")
        self.cfg.valueChanged.connect(lambda value: self._set(cfg_scale=round(value, 2)))
        self.denoise = QDoubleSpinBox()
        self.denoise.setRange(0, 1)
        self.denoise.setSingleStep(0.05)
        self.denoise.setToolTip("Denoising strength: how much a picture under the frame may change")
        self.denoise.valueChanged.connect(lambda value: self._set(denoising_strength=round(value, 2)))
        self.quality = QComboBox()
        self.quality.addItems([p.name for p in QUALITY] + ["Custom"])
        self.quality.activated.connect(self._quality_chosen)
        self.steps = QSpinBox()
        self.steps.setRange(1, 150)
        self.steps.valueChanged.connect(lambda value: self._set(steps=value))
        self.sampler = QComboBox()
        self.sampler.addItems(list(SAMPLERS))
        self.sampler.currentTextChanged.connect(lambda text: self._set(sampler=text))
        self.schedule = QComboBox()
        self.schedule.addItems(list(SCHEDULE_TYPES))
        self.schedule.currentTextChanged.connect(lambda text: self._set(schedule_type=text))
        self.variants = QSpinBox()
        self.variants.setRange(1, 16)
        self.variants.setToolTip("How many variants to make at once")
        self.variants.valueChanged.connect(lambda value: self._set(batch_size=value))
        self.seed = QSpinBox()
        self.seed.setRange(-1, 2**31 - 1)
        self.seed.setSpecialValueText("random")
        self.seed.valueChanged.connect(lambda value: self._set(seed=value))
        self.generate = QPushButton("Generate in frame")
        self.generate.setToolTip("Ctrl+Enter")
        self.generate.clicked.connect(self.generate_requested.emit)

        imagination_box = QGroupBox("Imagination")
        form = QFormLayout(imagination_box)
        form.addRow("Preset", self.imagination)
        form.addRow("Follow the prompt (CFG)", self.cfg)
        form.addRow("Change the picture (denoise)", self.denoise)
        quality_box = QGroupBox("Time vs quality")
        form = QFormLayout(quality_box)
        form.addRow("Preset", self.quality)
        form.addRow("Steps", self.steps)
        form.addRow("Sampler", self.sampler)
        form.addRow("Schedule", self.schedule)
        more = QFormLayout()
        more.addRow("Variants", self.variants)
        more.addRow("Seed", self.seed)

        layout = QVBoxLayout(self)
        layout.addWidget(QLabel("Prompt"))
        layout.addWidget(self.prompt, 2)
        weight_row = QHBoxLayout()
        weight_row.addWidget(self.weight_label)
        layout.addLayout(weight_row)
        layout.addWidget(self.weight)
        layout.addWidget(QLabel("Negative prompt"))
        layout.addWidget(self.negative)
        layout.addWidget(imagination_box)
        layout.addWidget(quality_box)
        layout.addLayout(more)
        layout.addWidget(self.generate)
        state.subscribe(self.sync)
        self.sync()

    # state -> widgets ------------------------------------------------------------------------

    def sync(self) -> None:
        self._syncing = True
        try:
            state = self.state
            if self.prompt.toPlainText() != state.prompt:
                self.prompt.setPlainText(state.prompt)
            if self.negative.toPlainText() != state.negative_prompt:
                self.negative.setPlainText(state.negative_prompt)
            self.cfg.setValue(state.cfg_scale)
            self.denoise.setValue(state.denoising_strength)
            self.steps.setValue(state.steps)
            self.sampler.setCurrentText(state.sampler)
            self.schedule.setCurrentText(state.schedule_type)
            self.variants.setValue(state.batch_size)
            self.seed.setValue(state.seed)
            imagination = matching_preset(IMAGINATION, state)
            self.imagination.setCurrentText(imagination.name if imagination else "Custom")
            quality = matching_preset(QUALITY, state)
            self.quality.setCurrentText(quality.name if quality else "Custom")
        finally:
            self._syncing = False

    def _set(self, **values: object) -> None:
        if not self._syncing:
            self.state.update(**values)

    def _imagination_chosen(self, index: int) -> None:
        if index < len(IMAGINATION):
            self.state.apply_imagination(IMAGINATION[index])

    def _quality_chosen(self, index: int) -> None:
        if index < len(QUALITY):
            self.state.apply_quality(QUALITY[index])

    def insert(self, tag: str, negative: bool = False) -> None:
        """A LoRA tag or an embedding's name written at the cursor, as one undoable edit."""
        edit = self.negative if negative else self.prompt
        text, position = insert_tag(edit.toPlainText(), edit.textCursor().position(), tag)
        edit.replace_all(text, position, position)

    # the weight editor -------------------------------------------------------------------------

    def _show_weight(self) -> None:
        found = weighted_phrase(self.prompt.toPlainText(), *self.prompt.selection())
        phrase = found.phrase(self.prompt.toPlainText())
        self._syncing = True
        try:
            self.weight.setValue(round(found.weight * SLIDER_SCALE))
        finally:
            self._syncing = False
        start, end = self.prompt.selection()
        if start == end and found.weight == 1:
            self.weight_label.setText("Weight: select words, then drag or press Ctrl+↑/↓")
        else:
            self.weight_label.setText(f"Weight of “{phrase[:40]}”: {found.weight:.2f}")

    def _weight_moved(self, value: int) -> None:
        if self._syncing:
            return
        self.prompt.set_weight(value / SLIDER_SCALE)
