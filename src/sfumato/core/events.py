"""What a running generation reports, and how it is asked to stop."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

from PIL import Image

from sfumato.core.errors import Cancelled


@dataclass(frozen=True)
class StepProgress:
    """One denoising step done. ``preview`` is a cheap RGB picture every N steps, else None."""

    step: int  # 1-based, within the current batch
    steps: int
    batch: int  # 0-based index of the batch (A1111's "Batch N out of M")
    batches: int
    preview: Image.Image | None = None
    loss: float | None = None  # training jobs: the step's loss

    @property
    def fraction(self) -> float:
        return (self.batch * self.steps + self.step) / max(1, self.batches * self.steps)


ProgressCallback = Callable[[StepProgress], None]


class CancelToken:
    """Set from any thread; the engine checks it between steps.

    ``skip`` ends the current batch early and moves on (A1111's Skip); ``cancel`` stops the job.
    """

    def __init__(self) -> None:
        self._cancel = threading.Event()
        self._skip = threading.Event()

    def cancel(self) -> None:
        self._cancel.set()

    def skip(self) -> None:
        self._skip.set()

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

    def take_skip(self) -> bool:
        """True once after ``skip()`` was called."""
        if self._skip.is_set():
            self._skip.clear()
            return True
        return False

    def raise_if_cancelled(self) -> None:
        if self._cancel.is_set():
            raise Cancelled()
