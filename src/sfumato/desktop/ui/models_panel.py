"""The model library browser: checkpoints, VAEs, LoRAs, embeddings and upscalers from the model
folders, with what each was made for and whether it fits the frame's checkpoint; pick the
checkpoint or VAE the frame draws with, put a LoRA or an embedding into the prompt, choose the
upscaler of Layer → Upscale."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import Qt
from PySide6.QtGui import QBrush, QColor, QFont
from PySide6.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QStackedWidget,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from sfumato.core.errors import SfumatoError
from sfumato.core.postprocess import BUILTIN_UPSCALERS
from sfumato.desktop.model.library_view import (
    BUILTIN_MODEL,
    KINDS,
    LibraryItem,
    human_size,
    prompt_tag,
)
from sfumato.desktop.model.studio import Studio

COLUMNS = ("Name", "Fits", "Made for", "Size")
_FITS, _MISFITS = QColor(90, 200, 110), QColor(230, 110, 90)
Reader = Callable[[], list[LibraryItem]]


class ModelsPanel(QWidget):
    def __init__(
        self,
        studio: Studio,
        read: Reader,
        insert: Callable[[str, bool], None],
        on_checkpoint: Callable[[str | None], None] | None = None,
        parent: QWidget | None = None,
    ) -> None:
        """``read`` lists the library; ``insert(text, negative)`` writes into the prompt;
        ``on_checkpoint`` is told the checkpoint chosen (to remember it)."""
        super().__init__(parent)
        self.studio, self._read, self._insert = studio, read, insert
        self._on_checkpoint = on_checkpoint or (lambda name: None)
        self.items: list[LibraryItem] = []
        self.current_label = QLabel()
        self.current_label.setWordWrap(True)
        self.search = QLineEdit()
        self.search.setPlaceholderText("Filter by name")
        self.search.textChanged.connect(lambda _text: self.show_items())
        self.refresh_button = QPushButton("Refresh")
        self.refresh_button.setToolTip("Read the model folders again (Settings → Add model folder adds one)")
        self.refresh_button.clicked.connect(self.refresh)
        self.kinds = QComboBox()
        self.kinds.setToolTip("Which kind of model file to list")
        self.stack = QStackedWidget()
        self.trees: dict[str, QTreeWidget] = {}
        for kind, title in KINDS:
            tree = QTreeWidget()
            tree.setHeaderLabels(list(COLUMNS))
            tree.setRootIsDecorated(False)
            tree.setSortingEnabled(False)
            tree.itemDoubleClicked.connect(lambda _item, _column: self.use_selected())
            tree.currentItemChanged.connect(lambda *_: self._enable_buttons())
            tree.setColumnHidden(1, kind not in ("lora", "embedding"))  # only networks fit or not
            self.trees[kind] = tree
            self.kinds.addItem(title, kind)
            self.stack.addWidget(tree)
        self.kinds.currentIndexChanged.connect(self._kind_chosen)
        self.use = QPushButton()
        self.use.clicked.connect(self.use_selected)
        self.negative = QPushButton("Add to negative prompt")
        self.negative.setToolTip("Embeddings such as easynegative belong in the negative prompt")
        self.negative.clicked.connect(lambda: self.insert_selected(negative=True))
        self.reset = QPushButton()
        self.reset.clicked.connect(self.use_default)
        self.status = QLabel()
        self.status.setWordWrap(True)
        top = QHBoxLayout()
        top.addWidget(self.kinds)
        top.addWidget(self.search, 1)
        top.addWidget(self.refresh_button)
        buttons = QHBoxLayout()
        for button in (self.use, self.negative, self.reset):
            buttons.addWidget(button)
        layout = QVBoxLayout(self)
        layout.addWidget(self.current_label)
        layout.addLayout(top)
        layout.addWidget(self.stack, 1)
        layout.addLayout(buttons)
        layout.addWidget(self.status)
        studio.prompt.subscribe(self._prompt_changed)
        self._shown_choice: tuple[str | None, str | None] = (studio.prompt.model, studio.prompt.vae)
        self._loaded = False
        self.show_items()

    # reading -----------------------------------------------------------------------------------

    def refresh(self) -> None:
        try:
            self.items = self._read()
        except (OSError, SfumatoError) as error:
            self.status.setText(f"The model folders cannot be read: {error}")
            self.items = []
        else:
            self.status.setText("")
        self._loaded = True
        self.show_items()

    def ensure_loaded(self) -> None:
        if not self._loaded:
            self.refresh()

    def kind(self) -> str:
        return KINDS[self.kinds.currentIndex()][0]

    def select_kind(self, kind: str) -> None:
        self.kinds.setCurrentIndex([k for k, _ in KINDS].index(kind))

    def _kind_chosen(self, index: int) -> None:
        self.stack.setCurrentIndex(index)
        self._enable_buttons()

    # showing -----------------------------------------------------------------------------------

    def show_items(self) -> None:
        model, vae = self.studio.prompt.model, self.studio.prompt.vae
        chosen = {
            "checkpoint": model or BUILTIN_MODEL,
            "vae": vae,
            "upscaler": self.studio.upscaler,
        }
        words = self.search.text().strip().lower()
        for kind, title in KINDS:
            tree = self.trees[kind]
            current = tree.currentItem()
            selected = current.data(0, Qt.ItemDataRole.UserRole).name if current is not None else None
            tree.clear()
            names = [i for i in self.items if i.kind == kind and words in i.name.lower()]
            if kind == "upscaler":
                names = [
                    LibraryItem(name, kind, "built in, no model", 0) for name in BUILTIN_UPSCALERS
                ] + names
            for item in names:
                fit = item.fits_model(model)
                row = QTreeWidgetItem(
                    [
                        item.name,
                        "" if fit is None else ("✓ yes" if fit else "✗ no"),
                        item.made_for,
                        human_size(item.size) if item.size else "",
                    ]
                )
                row.setToolTip(1, item.fit_words(model))
                row.setData(0, Qt.ItemDataRole.UserRole, item)
                row.setToolTip(0, f"{item.name} [{item.hash}]" if item.hash else item.name)
                if fit is not None:
                    row.setForeground(1, QBrush(_FITS if fit else _MISFITS))
                if item.name == chosen.get(kind):
                    font = QFont()
                    font.setBold(True)
                    for column in range(len(COLUMNS)):
                        row.setFont(column, font)
                    row.setText(0, f"{item.name}  ✓")
                tree.addTopLevelItem(row)
                if item.name == selected:
                    tree.setCurrentItem(row)
            for column in range(len(COLUMNS)):
                tree.resizeColumnToContents(column)
            count = tree.topLevelItemCount()
            self.kinds.setItemText([k for k, _ in KINDS].index(kind), f"{title} ({count})")
            header = tree.headerItem()
            if header is not None:
                header.setText(1, f"Fits {model or BUILTIN_MODEL}")
        self.current_label.setText(
            f"The frame draws with <b>{model or BUILTIN_MODEL + ' (built in)'}</b>, "
            f"VAE: <b>{vae or 'its own'}</b>; Layer → Upscale uses <b>{self.studio.upscaler}</b>."
        )
        self._enable_buttons()

    def _prompt_changed(self) -> None:
        choice = (self.studio.prompt.model, self.studio.prompt.vae)
        if choice != self._shown_choice:  # the prompt's text changes often; the fits only with these
            self._shown_choice = choice
            self.show_items()

    def selected(self) -> LibraryItem | None:
        row = self.trees[self.kind()].currentItem()
        return row.data(0, Qt.ItemDataRole.UserRole) if row is not None else None

    def _enable_buttons(self) -> None:
        kind, item = self.kind(), self.selected()
        self.use.setText(
            {
                "checkpoint": "Draw with this model",
                "vae": "Use this VAE",
                "lora": "Add to prompt",
                "embedding": "Add to prompt",
                "upscaler": "Use for Upscale",
            }[kind]
        )
        self.use.setEnabled(item is not None)
        self.negative.setVisible(kind == "embedding")
        self.negative.setEnabled(item is not None)
        self.reset.setVisible(kind in ("checkpoint", "vae"))
        self.reset.setText("Built-in model" if kind == "checkpoint" else "The model's own VAE")

    # acting ------------------------------------------------------------------------------------

    def use_selected(self) -> None:
        item = self.selected()
        if item is None:
            return
        if item.kind == "checkpoint":
            builtin = item.name == BUILTIN_MODEL
            name = None if builtin else item.name
            self.studio.choose_checkpoint(name, None if builtin else item.made_for)
            self._on_checkpoint(name)
            frame = self.studio.frame
            self.status.setText(f"The frame draws with {item.name} now, at {frame.width}×{frame.height}.")
        elif item.kind == "vae":
            self.studio.prompt.update(vae=item.name)
            self.status.setText(f"Pictures are decoded with the VAE {item.name}.")
        elif item.kind == "upscaler":
            self.studio.upscaler = item.name
            self.status.setText(f"Layer → Upscale uses {item.name}.")
            self.show_items()
        else:
            self.insert_selected(negative=False)

    def insert_selected(self, negative: bool) -> None:
        item = self.selected()
        if item is None or item.kind not in ("lora", "embedding"):
            return
        tag = prompt_tag(item)
        self._insert(tag, negative)
        where = "negative prompt" if negative else "prompt"
        warning = (
            ""
            if item.fits_model(self.studio.prompt.model) is not False
            else f" ({item.fit_words(self.studio.prompt.model)})"
        )
        self.status.setText(f"Added {tag} to the {where}{warning}.")

    def use_default(self) -> None:
        if self.kind() == "checkpoint":
            self.studio.choose_checkpoint(None, None)
            self._on_checkpoint(None)
            self.status.setText("The frame draws with the built-in model.")
        else:
            self.studio.prompt.update(vae=None)
            self.status.setText("Pictures are decoded with the checkpoint's own VAE.")
