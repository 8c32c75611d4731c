"""Layer → Upscale / Restore faces / Detail: the post-processing steps run on a layer's picture off the
UI thread; the result replaces the layer's pixels as one undoable edit."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image
from pydantic import ValidationError
from PySide6.QtCore import QObject, Qt, Signal

from sfumato.core.errors import SfumatoError
from sfumato.core.postprocess import PostprocessStep
from sfumato.core.request import GenerationRequest, describe_validation_error
from sfumato.core.settings import Settings
from sfumato.desktop.model.document import Layer


@dataclass
class StepsResult:
    layer_id: int
    before: tuple[np.ndarray, int, int]
    pixels: np.ndarray | None  # RGBA; None when it failed
    what: str
    notes: list[str]
    error: str = ""


def with_alpha(picture: Image.Image, source_alpha: np.ndarray) -> np.ndarray:
    """The processed RGB picture with the layer's transparency carried over (resized with it)."""
    alpha = Image.fromarray(source_alpha, "L")
    if alpha.size != picture.size:
        alpha = alpha.resize(picture.size, Image.Resampling.LANCZOS)
    rgba = picture.convert("RGB").copy()
    rgba.putalpha(alpha)
    return np.array(rgba, dtype=np.uint8)


class LayerSteps(QObject):
    """One run at a time; ``finished`` (a StepsResult) arrives on the UI thread."""

    finished = Signal(object)
    _arrived = Signal(object)

    def __init__(self, settings: Callable[[], Settings], parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._settings = settings
        self.busy = False
        self._arrived.connect(self._done, Qt.ConnectionType.QueuedConnection)

    def run(
        self, layer: Layer, steps: Sequence[PostprocessStep], recipe: GenerationRequest, what: str
    ) -> bool:
        """Starts the steps on ``layer``; False when another run is still going."""
        if self.busy:
            return False
        self.busy = True
        before = (layer.pixels.copy(), layer.x, layer.y)
        picture = layer.image().convert("RGB")
        alpha, layer_id = layer.pixels[..., 3].copy(), layer.id  # the layer may change while this runs
        settings = self._settings()

        def work() -> None:
            from sfumato.jobs.picture_steps import run_picture_steps

            try:
                done = run_picture_steps(settings, picture, steps, recipe)
                pixels = with_alpha(done.picture, alpha)
                result = StepsResult(layer_id, before, pixels, what, done.notes)
            except SfumatoError as error:
                result = StepsResult(layer_id, before, None, what, [], str(error))
            except ValidationError as error:
                result = StepsResult(layer_id, before, None, what, [], describe_validation_error(error))
            except Exception as error:  # any failure must reach the window, or it waits forever
                result = StepsResult(layer_id, before, None, what, [], f"{type(error).__name__}: {error}")
            self._arrived.emit(result)

        threading.Thread(target=work, name="studio-layer-steps", daemon=True).start()
        return True

    def _done(self, result: Any) -> None:
        self.busy = False
        self.finished.emit(result)
