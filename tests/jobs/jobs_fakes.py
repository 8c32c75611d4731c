"""Run functions without a model: solid pictures named by seed, with controllable pace."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path

from PIL import Image, PngImagePlugin

from sfumato.core.events import CancelToken, ProgressCallback, StepProgress
from sfumato.core.request import GenerationRequest
from sfumato.jobs.model import SavedImage


class FakeRun:
    """Saves one PNG per image; ``gate`` (when given) holds every step until it is set."""

    def __init__(
        self, outputs: Path, gate: threading.Event | None = None, fail_on: str | None = None
    ) -> None:
        self.outputs = outputs
        self.gate = gate
        self.fail_on = fail_on
        self.started: list[str] = []
        self.lock = threading.Lock()

    def __call__(
        self, request: GenerationRequest, *, on_progress: ProgressCallback, cancel: CancelToken
    ) -> Sequence[SavedImage]:
        with self.lock:
            self.started.append(request.prompt)
        if self.fail_on is not None and self.fail_on in request.prompt:
            raise RuntimeError("the fake engine broke")
        seed = max(0, request.seed)
        saved = []
        for index in range(request.images_total):
            for step in range(1, request.steps + 1):
                while self.gate is not None and not self.gate.wait(0.02):
                    cancel.raise_if_cancelled()
                cancel.raise_if_cancelled()
                on_progress(
                    StepProgress(
                        step,
                        request.steps,
                        index,
                        request.images_total,
                        Image.new("RGB", (8, 8), (step * 10 % 256, 0, 0)),
                    )
                )
            recipe = request.model_copy(update={"seed": seed + index, "batch_size": 1, "batch_count": 1})
            text = (
                f"{request.prompt}\nSteps: {request.steps}, Sampler: {request.sampler}, Seed: {seed + index}"
            )
            info = PngImagePlugin.PngInfo()
            info.add_text("parameters", text)
            self.outputs.mkdir(parents=True, exist_ok=True)
            path = self.outputs / f"{abs(hash(request.prompt)) % 10**8}-{seed + index}.png"
            Image.new(
                "RGB", (request.width or 64, request.height or 64), ((seed + index) % 256, 80, 160)
            ).save(path, pnginfo=info)
            saved.append(SavedImage(path=str(path), infotext=text, recipe=recipe, model_name=request.model))
        return saved
