"""A run function without a model: flat pictures in the request's size, saved to the archive,
with progress and previews, and a gate the test opens."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from PIL import Image

from sfumato.core.events import CancelToken, ProgressCallback, StepProgress
from sfumato.core.request import GenerationRequest
from sfumato.core.result import GeneratedImage, ModelInfo
from sfumato.core.settings import Settings
from sfumato.jobs.model import SavedImage

COLOURS = [(200, 40, 40), (40, 200, 40), (40, 40, 200), (200, 200, 40)]


class StudioFakeRun:
    def __init__(self, outputs: Path, settings: Settings | None = None) -> None:
        self.outputs = outputs
        self.settings = settings  # whose archive the pictures go to; None = the environment's
        self.gate = threading.Event()
        self.gate.set()
        self.requests: list[GenerationRequest] = []
        self.hold_at: int | None = None  # the step before which the fake closes its gate and waits

    def __call__(
        self, request: GenerationRequest, *, on_progress: ProgressCallback, cancel: CancelToken
    ) -> Sequence[SavedImage]:
        from sfumato.archive.index import Archive
        from sfumato.core.images import load_image

        self.requests.append(request)
        size = (request.width or 96, request.height or 96)
        if request.outpaint is not None and request.init_image is not None:
            width, height, _, _ = request.outpaint.canvas(load_image(request.init_image, "init").size)
            size = (width, height)
        for step in range(1, request.steps + 1):
            if step == self.hold_at:
                self.gate.clear()
            while not self.gate.wait(0.02):
                cancel.raise_if_cancelled()
            cancel.raise_if_cancelled()
            preview = Image.new("RGB", (24, 24), (step * 12 % 256, 90, 30))
            on_progress(StepProgress(step, request.steps, 0, 1, preview))
        archive = Archive(self.settings or Settings())
        saved = []
        for index in range(request.batch_size):
            recipe = request.model_copy(
                update={"seed": index, "batch_size": 1, "init_image": None, "mask": None, "outpaint": None}
            )
            item = GeneratedImage(Image.new("RGB", size, COLOURS[index % 4]), recipe, ModelInfo(name="fake"))
            record = archive.save(item)
            saved.append(SavedImage(path=record.path, infotext=record.parameters, recipe=recipe))
        return saved


@contextmanager
def live_server(app: Any) -> Iterator[str]:
    """A real `sfumato serve` app on a free loopback port, in a thread."""
    import socket

    import uvicorn

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the test server did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(15)
