"""Settings: the model (names with AutoV2 hashes), the output folder, the device and how the model
runs on it (precision, low-VRAM mode, compiled UNet), a remote server, the NSFW filter and the name
blocklists."""

from __future__ import annotations

import threading
from pathlib import Path

from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QPushButton,
    QWidget,
)

from sfumato.core.settings import Settings
from sfumato.desktop.model.preferences import Preferences, load_preferences, save_preferences
from sfumato.desktop.model.studio import Studio

BUILT_IN = "Built-in demo model (96×96 shapes)"
BUILTIN_NAME = "sfumato-demo"  # models/loading.py's BUILTIN_MODEL, without importing the loader
DEVICES = ("auto", "cpu", "cuda", "mps")
PRECISIONS = (
    ("auto", "Automatic: fp16 on a GPU, fp32 on the CPU"),
    ("fp32", "fp32: the reference pictures"),
    ("bf16", "bf16: faster on CPUs with AVX-512-BF16 or AMX, pictures within a few levels"),
    ("fp16", "fp16 (GPUs)"),
)
VRAM_MODES = (
    ("normal", "Normal: the whole model on the GPU"),
    ("medvram", "medvram: each part moves to the GPU while it runs"),
    ("lowvram", "lowvram: layer by layer (least VRAM, much slower)"),
)
NSFW_CHOICES = (
    ("off", "Off: keep every picture"),
    ("blur", "Blur pictures the NSFW check flags"),
    ("withhold", "Withhold pictures the NSFW check flags"),
)


class _Hashed(QObject):
    done = Signal(list)


class SettingsDialog(QDialog):
    def __init__(self, settings: Settings, studio: Studio, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Sfumato Studio settings")
        self.settings, self.studio = settings, studio
        self.preferences = load_preferences(settings)
        self.model = QComboBox()
        self.model.setMinimumWidth(360)
        self.hash_button = QPushButton("Compute hashes")
        self.hash_button.setToolTip("AutoV2 hashes (the first 10 hex digits of SHA-256), as A1111 shows them")
        self.hash_button.clicked.connect(self._hash)
        self.add_folder = QPushButton("Add model folder…")
        self.add_folder.setToolTip(
            "A folder of checkpoints, or an A1111 or ComfyUI install (its models are found)"
        )
        self.add_folder.clicked.connect(self._add_folder)
        self.output = QLineEdit(str(settings.outputs))
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._browse)
        self.device = QComboBox()
        self.device.addItems(list(DEVICES))
        self.device.setCurrentText(settings.device if settings.device in DEVICES else "auto")
        self.precision = _choices(PRECISIONS, settings.precision)
        self.vram_mode = _choices(VRAM_MODES, settings.vram_mode)
        self.vram_mode.setToolTip(
            "For GPUs with little VRAM (A1111's --medvram / --lowvram); pictures stay the same"
        )
        self.compile_unet = QCheckBox("Compile the UNet (about a minute per picture size, then faster steps)")
        self.compile_unet.setChecked(settings.compile_unet)
        self.compile_unet.setToolTip(
            "torch.compile with frozen weights: bf16 CPU steps about 1.18x faster (docs/performance.md)"
        )
        self.remote_url = QLineEdit(self.preferences.remote_url or "")
        self.remote_url.setPlaceholderText("empty: this computer; else e.g. http://gpu-box:7860")
        self.remote_token = QLineEdit(self.preferences.remote_token or "")
        self.remote_token.setEchoMode(QLineEdit.EchoMode.Password)
        self.remote_token.setPlaceholderText("the token `sfumato serve --new-token` printed")
        self.nsfw = QComboBox()
        for value, words in NSFW_CHOICES:
            self.nsfw.addItem(words, value)
        self.nsfw.setCurrentIndex(
            [value for value, _ in NSFW_CHOICES].index(studio.nsfw_filter or settings.nsfw_filter)
        )
        self.nsfw.setToolTip("The check runs on each finished picture, with the CLIP in the settings")
        lists = self.preferences.blocklists
        self.blocklist_on = QCheckBox("Refuse prompts that name an entry of these blocklists")
        self.blocklist_on.setChecked(self.preferences.blocklist_on and bool(studio.blocklists or lists))
        self.blocklist_on.setToolTip("docs/blocklist.md: one name a line, aliases after |")
        self.blocklist_files = QListWidget()
        self.blocklist_files.setMaximumHeight(80)
        self.blocklist_files.addItems(
            [str(path) for path in (lists if lists is not None else studio.blocklists)]
        )
        self.add_blocklist = QPushButton("Add list…")
        self.add_blocklist.clicked.connect(self._add_blocklist)
        self.remove_blocklist = QPushButton("Remove")
        self.remove_blocklist.clicked.connect(self._remove_blocklist)
        self.note = QLabel(
            "The output folder, device, precision, VRAM mode, compiling and server take effect at the next start; the model, the NSFW "
            "filter and the blocklists at once."
        )
        self.note.setWordWrap(True)
        model_row = QHBoxLayout()
        model_row.addWidget(self.model, 1)
        model_row.addWidget(self.hash_button)
        model_row.addWidget(self.add_folder)
        output_row = QHBoxLayout()
        output_row.addWidget(self.output, 1)
        output_row.addWidget(browse)
        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        form = QFormLayout(self)
        form.addRow("Model", model_row)
        form.addRow("Output folder", output_row)
        form.addRow("Device", self.device)
        form.addRow("Precision", self.precision)
        form.addRow("VRAM mode", self.vram_mode)
        form.addRow("", self.compile_unet)
        form.addRow("Remote server", self.remote_url)
        form.addRow("Server token", self.remote_token)
        form.addRow("NSFW filter", self.nsfw)
        blocklist_buttons = QHBoxLayout()
        blocklist_buttons.addWidget(self.add_blocklist)
        blocklist_buttons.addWidget(self.remove_blocklist)
        blocklist_buttons.addStretch(1)
        form.addRow("Name blocklist", self.blocklist_on)
        form.addRow("", self.blocklist_files)
        form.addRow("", blocklist_buttons)
        form.addRow(self.note)
        form.addRow(buttons)
        self._hashed = _Hashed(self)
        self._hashed.done.connect(self._fill_models)
        self._fill_models(self._entries(hash=False))

    def _entries(self, hash: bool) -> list[tuple[str, str, str | None]]:
        from sfumato.models.library import ModelLibrary

        entries = ModelLibrary(self.settings).entries(identify=hash, hash=hash)
        return [(e.name, e.title, e.architecture) for e in entries if e.kind == "checkpoint"]

    def _fill_models(self, entries: list[tuple[str, str, str | None]]) -> None:
        self.model.clear()
        self.model.addItem(BUILT_IN, (None, None))
        for name, title, architecture in entries:
            if name != BUILTIN_NAME:  # listed first, in words
                self.model.addItem(title, (name, architecture))
        current = self.studio.prompt.model
        for index in range(self.model.count()):
            if self.model.itemData(index)[0] == current:
                self.model.setCurrentIndex(index)

    def _hash(self) -> None:
        self.hash_button.setEnabled(False)
        self.hash_button.setText("Hashing…")
        threading.Thread(target=lambda: self._hashed.done.emit(self._entries(hash=True)), daemon=True).start()

    def _add_folder(self) -> None:
        from sfumato.core.errors import SfumatoError
        from sfumato.models.library import ModelLibrary

        folder = QFileDialog.getExistingDirectory(self, "Model folder", str(Path.home()))
        if not folder:
            return
        try:
            ModelLibrary(self.settings).add_folder(Path(folder))
        except SfumatoError as error:
            self.note.setText(str(error))
            return
        self._fill_models(self._entries(hash=False))

    def _add_blocklist(self) -> None:
        from sfumato.analysis.blocklist import load_blocklists
        from sfumato.core.errors import SfumatoError

        name, _ = QFileDialog.getOpenFileName(
            self, "Name blocklist", str(Path.home()), "Text (*.txt);;Any (*)"
        )
        if not name:
            return
        try:
            found = load_blocklists([Path(name)])
        except SfumatoError as error:
            self.note.setText(str(error))
            return
        self.blocklist_files.addItem(name)
        self.blocklist_on.setChecked(True)
        self.note.setText(f"{Path(name).name}: {len(found.entries)} entries.")

    def _remove_blocklist(self) -> None:
        row = self.blocklist_files.currentRow()
        if row >= 0:
            self.blocklist_files.takeItem(row)

    def blocklists(self) -> list[Path]:
        return [Path(self.blocklist_files.item(i).text()) for i in range(self.blocklist_files.count())]

    def _browse(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Output folder", self.output.text())
        if folder:
            self.output.setText(folder)

    def accept(self) -> None:
        name, architecture = self.model.currentData() or (None, None)
        self.studio.choose_checkpoint(name, architecture)
        side = self.studio.frame.width
        nsfw = self.nsfw.currentData()
        lists, on = self.blocklists(), self.blocklist_on.isChecked()
        self.studio.nsfw_filter = nsfw
        self.studio.blocklists = lists if on else []
        output = Path(self.output.text()).expanduser()
        preferences = Preferences(
            model=name,
            output_dir=output,
            device=self.device.currentText(),
            precision=self.precision.currentData(),
            vram_mode=self.vram_mode.currentData(),
            compile_unet=self.compile_unet.isChecked(),
            frame_side=side,
            remote_url=self.remote_url.text().strip() or None,
            remote_token=self.remote_token.text().strip() or None,
            nsfw_filter=nsfw,
            blocklists=lists,
            blocklist_on=on,
        )
        save_preferences(self.settings, preferences)
        super().accept()


def _choices(choices: tuple[tuple[str, str], ...], current: str) -> QComboBox:
    box = QComboBox()
    for value, words in choices:
        box.addItem(words, value)
    box.setCurrentIndex([value for value, _ in choices].index(current))
    return box
