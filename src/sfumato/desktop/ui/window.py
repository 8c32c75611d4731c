"""The studio window: the canvas in the middle, panels docked around it, every command an action."""

from __future__ import annotations

from pathlib import Path

from PIL import Image
from pydantic import ValidationError
from PySide6.QtCore import QFileSystemWatcher, Qt, QTimer, QUrl
from PySide6.QtGui import (
    QAction,
    QActionGroup,
    QCloseEvent,
    QDesktopServices,
    QGuiApplication,
    QKeySequence,
    QShowEvent,
    QUndoStack,
)
from PySide6.QtWidgets import (
    QComboBox,
    QDockWidget,
    QDoubleSpinBox,
    QFileDialog,
    QLabel,
    QMainWindow,
    QMessageBox,
    QSpinBox,
    QTabWidget,
    QToolBar,
    QWidget,
)

from sfumato.archive.index import ArchiveIndex
from sfumato.core.errors import SfumatoError
from sfumato.core.postprocess import DetailStep, PostprocessStep, RestoreFacesStep, UpscaleStep
from sfumato.core.request import GenerationRequest, describe_validation_error
from sfumato.core.settings import Settings
from sfumato.core.training_request import TrainingRequest
from sfumato.desktop.model.brush import fill_rect
from sfumato.desktop.model.document import Document, Layer, LayerKind
from sfumato.desktop.model.files import load_ora, load_psd, save_ora, save_psd
from sfumato.desktop.model.frame import FramePlan
from sfumato.desktop.model.library_view import LibraryItem, read_library
from sfumato.desktop.model.studio import Studio, Tool
from sfumato.desktop.ui.canvas import CanvasView
from sfumato.desktop.ui.commands import AddLayer, SetPixels
from sfumato.desktop.ui.gallery_panel import GalleryPanel
from sfumato.desktop.ui.images import pil_from_qimage, qimage_from_pil
from sfumato.desktop.ui.jobs_bridge import JobsBridge
from sfumato.desktop.ui.layer_steps import LayerSteps, StepsResult
from sfumato.desktop.ui.layers_panel import LayersPanel
from sfumato.desktop.ui.models_panel import ModelsPanel
from sfumato.desktop.ui.prompt_panel import PromptPanel
from sfumato.desktop.ui.queue_panel import QueuePanel
from sfumato.jobs.worker import RunFunction

TOOLS = (
    (Tool.frame, "Frame", "F", "Place the generation frame: what lies under it decides what Generate does"),
    (Tool.brush, "Mask brush", "B", "Paint where the picture should be repainted"),
    (Tool.eraser, "Eraser", "E", "Erase the mask"),
    (Tool.select, "Select", "M", "Drag a rectangle selection"),
    (Tool.lasso, "Lasso mask", "L", "Draw an outline to mask inside it; hold Alt to unmask"),
    (Tool.move, "Move layer", "V", "Drag the active layer"),
    (Tool.pan, "Pan", "H", "Drag the view (or drag with the middle button, any time)"),
)
FRAME_SIDES = (64, 96, 128, 192, 256, 384, 512, 640, 768, 1024)
PICTURE_FILES = "Pictures (*.png *.jpg *.jpeg *.webp)"
CANVAS_FILES = "Canvas (*.ora *.psd);;OpenRaster (*.ora);;Photoshop (*.psd);;" + PICTURE_FILES


class StudioWindow(QMainWindow):
    def __init__(self, settings: Settings, bridge: JobsBridge, studio: Studio) -> None:
        super().__init__()
        self.settings, self.bridge, self.studio = settings, bridge, studio
        self.engine: RunFunction | None = None  # the run function of the queue, when build_window made it
        self.setWindowTitle("Sfumato Studio")
        self.undo = QUndoStack(self)
        self.canvas = CanvasView(studio, self.undo)
        self.setCentralWidget(self.canvas)
        self.layers = LayersPanel(studio, self.undo)
        self.prompt = PromptPanel(studio.prompt, self.library_names)
        self._names: dict[str, list[str]] | None = None
        self.prompt.generate_requested.connect(self.generate)
        self.queue = QueuePanel(studio.jobs, bridge.cancel, bridge.skip)
        self.gallery = GalleryPanel(
            ArchiveIndex.from_settings(settings), studio.prompt.use_recipe, self.add_picture_file
        )
        self._dock("Prompt", self.prompt, Qt.DockWidgetArea.RightDockWidgetArea)
        tabs = QTabWidget()
        tabs.addTab(self.layers, "Layers")
        tabs.addTab(self.queue, "Queue")
        tabs.addTab(self.gallery, "Gallery")
        self.models = ModelsPanel(studio, self._read_library, self.prompt.insert, self._remember_checkpoint)
        tabs.addTab(self.models, "Models")
        tabs.currentChanged.connect(self._tab_shown)
        self.tabs = tabs
        self._dock("Panels", tabs, Qt.DockWidgetArea.LeftDockWidgetArea)
        self.variant_label = QLabel()
        self.statusBar().addPermanentWidget(self.variant_label)
        self.actions_by_name: dict[str, QAction] = {}
        self._build_actions()
        self._build_toolbars()
        self.watcher = QFileSystemWatcher(self)
        self.watcher.fileChanged.connect(self._external_file_changed)
        self._edited: dict[str, int] = {}  # file being edited outside -> layer id
        self._reload = QTimer(self, singleShot=True, interval=300)
        self._reload.timeout.connect(self._reload_external)
        self._pending: set[str] = set()
        self.layer_steps = LayerSteps(lambda: self.settings, self)
        self.layer_steps.finished.connect(self._layer_steps_done)
        studio.subscribe(self._on_studio)
        studio.jobs.subscribe(self._on_job)
        self._shown = False
        self.resize(1400, 900)

    def _dock(self, title: str, widget: QWidget, area: Qt.DockWidgetArea) -> QDockWidget:
        dock = QDockWidget(title, self)
        dock.setObjectName(title)
        dock.setWidget(widget)
        dock.setFeatures(
            QDockWidget.DockWidgetFeature.DockWidgetMovable
            | QDockWidget.DockWidgetFeature.DockWidgetFloatable
        )
        self.addDockWidget(area, dock)
        return dock

    # actions -----------------------------------------------------------------------------------

    def _action(
        self,
        name: str,
        text: str,
        slot: object,
        shortcut: str | QKeySequence.StandardKey | None = None,
        tip: str = "",
    ) -> QAction:
        action = QAction(text, self)
        if shortcut is not None:
            action.setShortcut(QKeySequence(shortcut))
        if tip:
            action.setToolTip(tip)
            action.setStatusTip(tip)
        action.triggered.connect(slot)  # type: ignore[arg-type]
        self.addAction(action)
        self.actions_by_name[name] = action
        return action

    def _build_actions(self) -> None:
        menus = self.menuBar()
        file = menus.addMenu("&File")
        file.addAction(self._action("new", "New canvas", self.new_canvas, QKeySequence.StandardKey.New))
        file.addAction(self._action("open", "Open…", self.open_dialog, QKeySequence.StandardKey.Open))
        file.addAction(self._action("import", "Add picture as layer…", self.import_dialog, "Ctrl+I"))
        file.addAction(self._action("save", "Save (.ora)", self.save, QKeySequence.StandardKey.Save))
        file.addAction(
            self._action("save_as", "Save as…", self.save_as_dialog, QKeySequence.StandardKey.SaveAs)
        )
        file.addAction(self._action("export_psd", "Export PSD…", self.export_psd_dialog, "Ctrl+Shift+E"))
        file.addAction(self._action("export_png", "Export picture (PNG)…", self.export_png_dialog, "Ctrl+E"))
        edit = menus.addMenu("&Edit")
        undo = self.undo.createUndoAction(self, "Undo")
        undo.setShortcut(QKeySequence.StandardKey.Undo)
        redo = self.undo.createRedoAction(self, "Redo")
        redo.setShortcut(QKeySequence.StandardKey.Redo)
        self.actions_by_name |= {"undo": undo, "redo": redo}
        edit.addActions([undo, redo])
        edit.addSeparator()
        edit.addAction(self._action("copy", "Copy layer", self.copy, QKeySequence.StandardKey.Copy))
        edit.addAction(self._action("paste", "Paste as layer", self.paste, QKeySequence.StandardKey.Paste))
        edit.addAction(
            self._action("fill_mask", "Mask the selection", self.fill_mask_from_selection, "Ctrl+Shift+M")
        )
        edit.addAction(
            self._action("clear_mask", "Unmask the selection", self.clear_mask_in_selection, "Ctrl+Shift+U")
        )
        edit.addAction(
            self._action("frame_selection", "Frame the selection", self.frame_selection, "Ctrl+Shift+F")
        )
        edit.addAction(
            self._action("deselect", "Deselect", lambda: self.studio.set_selection(None), "Ctrl+D")
        )
        layer = menus.addMenu("&Layer")
        layer.addAction(self._action("new_mask", "New mask", self.layers.add_mask, "Ctrl+Shift+N"))
        layer.addAction(
            self._action("edit_outside", "Edit in external editor", self.edit_outside, "Ctrl+Shift+X")
        )
        layer.addAction(
            self._action("scale_up", "Scale layer ×2", lambda: self.scale_active(2.0), "Ctrl+Shift+Up")
        )
        layer.addAction(
            self._action("scale_down", "Scale layer ×½", lambda: self.scale_active(0.5), "Ctrl+Shift+Down")
        )
        layer.addAction(
            self._action("fit_frame", "Fit layer into the frame", self.fit_active_to_frame, "Ctrl+Shift+T")
        )
        layer.addAction(
            self._action("delete_layer", "Delete layer", self.layers.delete_active, "Ctrl+Delete")
        )
        layer.addSeparator()
        layer.addAction(
            self._action(
                "upscale_layer",
                "Upscale layer ×2",
                self.upscale_layer,
                tip="Enlarge the layer with the upscaler chosen in the Models tab",
            )
        )
        layer.addAction(
            self._action(
                "restore_faces_layer",
                "Restore faces in layer",
                self.restore_faces_in_layer,
                tip="Find faces and restore them with a face-restorer model (GFPGAN, CodeFormer…)",
            )
        )
        layer.addAction(
            self._action(
                "detail_layer",
                "Detail faces in layer",
                self.detail_layer,
                tip="Re-render each face at the model's full size and blend it back",
            )
        )
        generate = menus.addMenu("&Generate")
        generate.addAction(
            self._action(
                "generate", "Generate in frame", self.generate, "Ctrl+Return", "Make pictures for the frame"
            )
        )
        generate.addAction(
            self._action("previous", "Previous variant", lambda: self.studio.step_variant(-1), "Ctrl+Left")
        )
        generate.addAction(
            self._action("next", "Next variant", lambda: self.studio.step_variant(1), "Ctrl+Right")
        )
        generate.addAction(
            self._action("apply", "Apply variant as layer", self.apply_variant, "Ctrl+Shift+Return")
        )
        generate.addAction(
            self._action("discard", "Discard variants", self.studio.discard_variants, "Escape")
        )
        generate.addSeparator()
        generate.addAction(
            self._action(
                "train",
                "Train embedding or LoRA…",
                self.training_dialog,
                tip="Teach the model a concept from a folder of pictures (a job in the queue)",
            )
        )
        view = menus.addMenu("&View")
        view.addAction(
            self._action(
                "zoom_in", "Zoom in", lambda: self.canvas.zoom(1.25), QKeySequence.StandardKey.ZoomIn
            )
        )
        view.addAction(
            self._action(
                "zoom_out", "Zoom out", lambda: self.canvas.zoom(0.8), QKeySequence.StandardKey.ZoomOut
            )
        )
        view.addAction(self._action("fit", "Fit to window", self.canvas.zoom_to_fit, "Ctrl+0"))
        settings = menus.addMenu("&Settings")
        settings.addAction(self._action("settings", "Settings…", self.settings_dialog))

    def _build_toolbars(self) -> None:
        tools = QToolBar("Tools", self)
        tools.setObjectName("Tools")
        group = QActionGroup(self)
        group.setExclusive(True)
        for tool, text, key, tip in TOOLS:
            action = QAction(text, self, checkable=True)
            action.setShortcut(QKeySequence(key))
            action.setToolTip(f"{tip} ({key})")
            action.setChecked(tool is self.studio.tool)
            action.triggered.connect(lambda _=False, t=tool: self.studio.set_tool(t))
            group.addAction(action)
            tools.addAction(action)
            self.actions_by_name[f"tool_{tool.value}"] = action
        tools.addSeparator()
        tools.addWidget(QLabel(" Brush "))
        self.brush_size = QSpinBox(minimum=1, maximum=512, value=round(self.studio.brush.size), suffix=" px")
        self.brush_size.setToolTip("Brush size")
        self.brush_size.valueChanged.connect(lambda value: self.studio.set_brush(size=value))
        tools.addWidget(self.brush_size)
        tools.addWidget(QLabel(" hardness "))
        self.brush_hardness = QDoubleSpinBox(
            minimum=0, maximum=1, singleStep=0.1, value=self.studio.brush.hardness
        )
        self.brush_hardness.valueChanged.connect(lambda value: self.studio.set_brush(hardness=value))
        tools.addWidget(self.brush_hardness)
        tools.addSeparator()
        tools.addWidget(QLabel(" Frame "))
        self.frame_size = QComboBox()
        self.frame_size.setToolTip("The frame's size: the model's own size draws best")
        self.frame_size.addItems([f"{side}×{side}" for side in FRAME_SIDES])
        self.frame_size.setCurrentText(f"{self.studio.frame.width}×{self.studio.frame.height}")
        self.frame_size.currentTextChanged.connect(self._frame_size_chosen)
        tools.addWidget(self.frame_size)
        self.addToolBar(Qt.ToolBarArea.TopToolBarArea, tools)
        generating = QToolBar("Generate", self)
        generating.setObjectName("Generate")
        for name in ("generate", "previous", "next", "apply", "discard"):
            generating.addAction(self.actions_by_name[name])
        self.addToolBarBreak(Qt.ToolBarArea.TopToolBarArea)
        self.addToolBar(Qt.ToolBarArea.TopToolBarArea, generating)

    def _frame_size_chosen(self, text: str) -> None:
        width, _, height = text.partition("×")
        self.studio.resize_frame(int(width), int(height))

    def _tab_shown(self, index: int) -> None:
        shown = self.tabs.widget(index)
        if shown is self.gallery:
            self.gallery.refresh()
        elif shown is self.models:
            self.models.ensure_loaded()

    def _read_library(self) -> list[LibraryItem]:
        items = read_library(self.settings)
        self._names = {}
        for item in items:
            self._names.setdefault(item.kind, []).append(item.name)
        return items

    def _remember_checkpoint(self, name: str | None) -> None:
        from sfumato.desktop.model.preferences import load_preferences, save_preferences

        preferences = load_preferences(self.settings)
        preferences.model, preferences.frame_side = name, self.studio.frame.width
        save_preferences(self.settings, preferences)

    def library_names(self, kind: str) -> list[str]:
        """LoRA and embedding names for the prompt's completion, read from the library once."""
        if self._names is None:
            from sfumato.models.library import ModelLibrary

            self._names = {}
            try:
                for entry in ModelLibrary(self.settings).entries():
                    self._names.setdefault(entry.kind, []).append(entry.name)
            except (OSError, SfumatoError):
                pass
        return self._names.get(kind, [])

    def showEvent(self, event: QShowEvent) -> None:  # noqa: N802
        super().showEvent(event)
        if not self._shown:
            self._shown = True
            self.canvas.zoom_to_fit()  # a 96 px frame would be a speck at 100%

    # generating --------------------------------------------------------------------------------

    def generate(self) -> str | None:
        """Queue a job for the frame; returns its id (None when the request cannot be made)."""
        try:
            request, plan = self.studio.request()
        except ValidationError as error:
            self.tell(f"Cannot generate: {describe_validation_error(error)}.")
            return None
        except SfumatoError as error:
            self.tell(f"Cannot generate: {error}")
            return None
        job = self.bridge.submit(request, self._title(plan, request), plan.frame)
        self.tell(" ".join([f"Queued: {plan.mode.value}.", *plan.notes]))
        self.tabs.setCurrentWidget(self.queue)
        return job.id

    @staticmethod
    def _title(plan: FramePlan, request: GenerationRequest) -> str:
        prompt = request.prompt.strip() or "(no prompt)"
        return f"{plan.mode.value}: {prompt[:60]}"

    def apply_variant(self) -> Layer | None:
        variants = self.studio.jobs.variants
        if variants is None:
            return None
        variant = variants.current
        with Image.open(variant.path) as picture:
            layer = Layer.from_image(
                f"Result {self._count(LayerKind.result) + 1}",
                picture,
                LayerKind.result,
                variants.frame.x,
                variants.frame.y,
            )
        layer.recipe = variant.recipe
        self.undo.push(AddLayer(self.studio.document, layer, text="Apply variant"))
        self.studio.set_active(layer.id)
        self.studio.discard_variants()
        self.tell(f"Kept the variant as the layer {layer.name}.")
        return layer

    def _count(self, kind: LayerKind) -> int:
        return sum(layer.kind is kind for layer in self.studio.document.layers)

    def _on_studio(self, what: str) -> None:
        if what == "tool":
            self.actions_by_name[f"tool_{self.studio.tool.value}"].setChecked(True)
        elif what == "frame":
            text = f"{self.studio.frame.width}×{self.studio.frame.height}"
            if self.frame_size.findText(text) < 0:
                self.frame_size.addItem(text)
            self.frame_size.blockSignals(True)
            self.frame_size.setCurrentText(text)
            self.frame_size.blockSignals(False)
        elif what == "variants":
            variants = self.studio.jobs.variants
            self.variant_label.setText(
                f"Variant {variants.index + 1} of {len(variants.pictures)} — Ctrl+←/→ to step, Ctrl+Shift+Enter to apply"
                if variants
                else ""
            )

    def _on_job(self, job_id: str) -> None:
        view = self.studio.jobs.jobs[job_id]
        variants = self.studio.jobs.variants
        if view.state == "finished" and variants is not None and variants.job_id == job_id:
            self.studio.changed("variants")
            self.tell(
                f"Done: {len(variants.pictures)} variant(s) in the frame. Step through them with Ctrl+← / "
                "Ctrl+→, keep one with Ctrl+Shift+Enter (Apply), or press Escape."
            )
        elif view.state == "finished" and view.output:
            self._names = None  # the prompt's completion and the Models tab learn the new name
            self.models.refresh()
            self.tell(f"Trained {Path(view.output).stem}: use it in a prompt now ({view.output}).")
        elif view.state == "failed":
            self.tell(f"The job failed: {view.message}")

    def tell(self, message: str) -> None:
        self.statusBar().showMessage(message, 15_000)

    # scaling -----------------------------------------------------------------------------------

    def scale_active(self, factor: float) -> None:
        layer = self.studio.active()
        if layer is not None:
            self._resize(layer, round(layer.width * factor), round(layer.height * factor), layer.x, layer.y)

    def fit_active_to_frame(self) -> None:
        """The active layer scaled to fit inside the frame, centred in it."""
        layer, frame = self.studio.active(), self.studio.frame
        if layer is None:
            return
        factor = min(frame.width / layer.width, frame.height / layer.height)
        width, height = max(1, round(layer.width * factor)), max(1, round(layer.height * factor))
        self._resize(
            layer, width, height, frame.x + (frame.width - width) // 2, frame.y + (frame.height - height) // 2
        )

    def _resize(self, layer: Layer, width: int, height: int, x: int, y: int) -> None:
        if width < 1 or height < 1 or max(width, height) > 16384:
            self.tell("That would make the layer too small or too large.")
            return
        resized = layer.image().resize((width, height), Image.Resampling.LANCZOS)
        after = Layer.from_image(layer.name, resized, layer.kind).pixels
        before = (layer.pixels.copy(), layer.x, layer.y)
        self.undo.push(
            SetPixels(self.studio.document, layer.id, before, (after, x, y), f"Scale {layer.name}")
        )

    # post-processing a layer -------------------------------------------------------------------

    def upscale_layer(self) -> bool:
        return self.run_layer_steps([UpscaleStep(upscaler=self.studio.upscaler, scale=2.0)], "Upscale")

    def restore_faces_in_layer(self) -> bool:
        return self.run_layer_steps([RestoreFacesStep()], "Restore faces")

    def detail_layer(self) -> bool:
        # how much a face may change is the prompt panel's "change the picture" (denoise)
        step = DetailStep(denoising_strength=self.studio.prompt.denoising_strength)
        return self.run_layer_steps([step], "Detail")

    def run_layer_steps(self, steps: list[PostprocessStep], what: str) -> bool:
        """The steps on the active picture layer, off the UI thread; False when they cannot start."""
        layer = self.studio.active()
        if layer is None or layer.is_mask:
            self.tell(f"{what}: choose a picture layer first.")
            return False
        try:
            recipe = self._layer_recipe(layer)
            self.studio.check_blocklists(recipe)  # the detailer draws with the recipe's prompt
        except ValidationError as error:
            self.tell(f"{what}: {describe_validation_error(error)}.")
            return False
        except SfumatoError as error:
            self.tell(f"{what}: {error}")
            return False
        if not self.layer_steps.run(layer, steps, recipe, what):
            self.tell(f"{what}: wait until the layer's last step is done.")
            return False
        self.tell(f"{what}: working on {layer.name}…")
        return True

    def _layer_recipe(self, layer: Layer) -> GenerationRequest:
        """A result's own recipe; for another picture, the prompt panel's prompt and model."""
        if layer.recipe:
            return GenerationRequest.model_validate(layer.recipe)
        return GenerationRequest(**self.studio.prompt.request_fields())

    def _layer_steps_done(self, result: StepsResult) -> None:
        if result.pixels is None:
            self.tell(f"{result.what} failed: {result.error}")
            return
        try:
            layer = self.studio.document.layer(result.layer_id)
        except KeyError:
            return  # deleted meanwhile
        after = (result.pixels, result.before[1], result.before[2])
        self.undo.push(
            SetPixels(self.studio.document, layer.id, result.before, after, f"{result.what} {layer.name}")
        )
        self.tell(" ".join([f"{result.what}: done ({layer.width}×{layer.height}).", *result.notes]))

    # selection and masks -----------------------------------------------------------------------

    def _mask_selection(self, value: int) -> None:
        selection = self.studio.selection
        if selection is None:
            self.tell("Select a rectangle first (Select tool, M).")
            return
        mask = self.canvas.target_mask()
        before = (mask.pixels.copy(), mask.x, mask.y)
        pixels, origin = fill_rect(mask.pixels.copy(), (mask.x, mask.y), selection, value)
        self.undo.push(SetPixels(self.studio.document, mask.id, before, (pixels, *origin), "Mask selection"))

    def fill_mask_from_selection(self) -> None:
        self._mask_selection(255)

    def clear_mask_in_selection(self) -> None:
        self._mask_selection(0)

    def frame_selection(self) -> None:
        selection = self.studio.selection
        if selection is not None:
            frame = self.studio.frame
            self.studio.move_frame(
                selection.x + selection.width // 2 - frame.width // 2,
                selection.y + selection.height // 2 - frame.height // 2,
            )

    # files -------------------------------------------------------------------------------------

    def new_canvas(self) -> None:
        self.undo.clear()
        self.studio.document.clear()
        self.studio.path = None
        self.studio.set_active(None)
        self.studio.move_frame(0, 0)

    def open_path(self, path: Path) -> None:
        suffix = path.suffix.lower()
        try:
            if suffix in (".ora", ".psd"):
                document = load_ora(path) if suffix == ".ora" else load_psd(path)
            else:
                self.new_canvas()
                self.add_picture_file(path)
                return
        except SfumatoError as error:
            self.tell(str(error))
            return
        self.undo.clear()
        self._replace_document(document)
        self.studio.path = path if suffix == ".ora" else None
        self.canvas.zoom_to_fit()

    def _replace_document(self, document: Document) -> None:
        self.studio.document.replace_all(document.layers)
        layers = self.studio.document.layers
        self.studio.set_active(layers[-1].id if layers else None)

    def add_picture_file(self, path: Path) -> Layer | None:
        try:
            with Image.open(path) as picture:
                picture.load()
                layer = Layer.from_image(
                    Path(path).stem, picture, LayerKind.picture, self.studio.frame.x, self.studio.frame.y
                )
        except (OSError, ValueError, Image.DecompressionBombError) as error:
            self.tell(f"{Path(path).name} cannot be opened as a picture: {error}")
            return None
        self.undo.push(AddLayer(self.studio.document, layer))
        self.studio.set_active(layer.id)
        return layer

    def save(self) -> None:
        if self.studio.path is None:
            self.save_as_dialog()
        else:
            save_ora(self.studio.document, self.studio.path)
            self.tell(f"Saved {self.studio.path}")

    def _ask_path(self, title: str, filters: str, save: bool) -> Path | None:
        if save:
            name, _ = QFileDialog.getSaveFileName(self, title, str(self.settings.outputs), filters)
        else:
            name, _ = QFileDialog.getOpenFileName(self, title, str(self.settings.outputs), filters)
        return Path(name) if name else None

    def open_dialog(self) -> None:
        if path := self._ask_path("Open", CANVAS_FILES, save=False):
            self.open_path(path)

    def import_dialog(self) -> None:
        if path := self._ask_path("Add picture as layer", PICTURE_FILES, save=False):
            self.add_picture_file(path)

    def save_as_dialog(self) -> None:
        if path := self._ask_path("Save canvas", "OpenRaster (*.ora)", save=True):
            self.studio.path = path.with_suffix(".ora")
            self.save()

    def export_psd_dialog(self) -> None:
        if path := self._ask_path("Export PSD", "Photoshop (*.psd)", save=True):
            save_psd(self.studio.document, path.with_suffix(".psd"))
            self.tell(f"Exported {path.with_suffix('.psd')}")

    def export_png_dialog(self) -> None:
        bounds = self.studio.document.bounds([LayerKind.picture, LayerKind.result])
        if bounds.empty:
            self.tell("There is no picture on the canvas to export.")
            return
        if path := self._ask_path("Export picture", "PNG (*.png)", save=True):
            Image.fromarray(self.studio.document.composite(bounds), "RGBA").save(path.with_suffix(".png"))

    # clipboard ---------------------------------------------------------------------------------

    def copy(self) -> None:
        layer = self.studio.active()
        if layer is None:
            self.tell("Choose a layer to copy.")
            return
        QGuiApplication.clipboard().setImage(qimage_from_pil(layer.image()))

    def paste(self) -> Layer | None:
        image = QGuiApplication.clipboard().image()
        if image.isNull():
            self.tell("The clipboard holds no picture.")
            return None
        frame = self.studio.frame
        layer = Layer.from_image("Pasted", pil_from_qimage(image), LayerKind.picture, frame.x, frame.y)
        self.undo.push(AddLayer(self.studio.document, layer, text="Paste"))
        self.studio.set_active(layer.id)
        return layer

    # the external editor -----------------------------------------------------------------------

    def edit_outside(self) -> Path | None:
        """Open the active layer in the system's editor for PNG files; saving it there updates
        the layer here (undoable)."""
        layer = self.studio.active()
        if layer is None:
            self.tell("Choose a layer to edit.")
            return None
        folder = self.settings.data_dir / "studio-edits"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"layer-{layer.id}.png"
        layer.image().save(path)
        self._edited[str(path)] = layer.id
        if str(path) not in self.watcher.files():
            self.watcher.addPath(str(path))
        QDesktopServices.openUrl(QUrl.fromLocalFile(str(path)))
        self.tell(f"Editing {layer.name} outside in {path}; save it there to update the layer.")
        return path

    def _external_file_changed(self, path: str) -> None:
        self._pending.add(path)
        self._reload.start()  # editors write in several steps; wait until they are done

    def _reload_external(self) -> None:
        for path in list(self._pending):
            self._pending.discard(path)
            if path not in self.watcher.files() and Path(path).exists():
                self.watcher.addPath(path)  # editors that replace the file drop the watch
            self.reload_external(Path(path))

    def reload_external(self, path: Path) -> None:
        layer_id = self._edited.get(str(path))
        if layer_id is None:
            return
        try:
            layer = self.studio.document.layer(layer_id)
            with Image.open(path) as picture:
                picture.load()
                edited = Layer.from_image(layer.name, picture, layer.kind, layer.x, layer.y)
        except (KeyError, OSError, ValueError):
            return
        before = (layer.pixels.copy(), layer.x, layer.y)
        self.undo.push(
            SetPixels(
                self.studio.document, layer_id, before, (edited.pixels, layer.x, layer.y), "Edit outside"
            )
        )
        self.tell(f"{layer.name} updated from {path.name}")

    # settings ----------------------------------------------------------------------------------

    def settings_dialog(self) -> None:
        from sfumato.desktop.ui.settings_dialog import SettingsDialog

        dialog = SettingsDialog(self.settings, self.studio, self)
        if dialog.exec():
            self.apply_safety()

    def training_dialog(self) -> None:
        from sfumato.desktop.ui.training_dialog import TrainingDialog

        dialog = TrainingDialog(self.studio.prompt.model, self)
        if dialog.exec() and dialog.request is not None:
            self.queue_training(dialog.request)

    def queue_training(self, request: TrainingRequest) -> None:
        what = "embedding" if request.kind == "embedding" else "LoRA"
        self.bridge.submit_training(request, f"train {what}: {request.name}")
        self.tabs.setCurrentWidget(self.queue)
        self.statusBar().showMessage(f"Training {request.name} is queued; its progress is in the Queue tab.")

    def apply_safety(self) -> None:
        """The blocklists chosen in the settings, for this machine's engine from its next job on (the
        NSFW filter rides in each request; the app checks the blocklists before it queues a job)."""
        from sfumato.jobs.local import RunnerRun

        self.settings = self.settings.model_copy(update={"blocklists": list(self.studio.blocklists)})
        if isinstance(self.engine, RunnerRun):
            self.engine.settings = self.engine.settings.model_copy(
                update={"blocklists": list(self.studio.blocklists)}
            )

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802
        self.bridge.stop()
        super().closeEvent(event)


def tell_error(parent: QWidget, message: str) -> None:
    QMessageBox.warning(parent, "Sfumato Studio", message)
