"""A real uvicorn server on a free loopback port, and a run function on tiny random models."""

from __future__ import annotations

import dataclasses
import socket
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from sfumato.core.events import CancelToken, ProgressCallback, StepProgress
from sfumato.core.request import GenerationRequest
from sfumato.core.result import ModelInfo
from sfumato.core.settings import Settings
from sfumato.jobs.model import SavedImage
from sfumato.server.catalog import ModelEntry, StaticCatalog

TINY_CATALOG = StaticCatalog(
    [
        ModelEntry(
            name="tiny", filename="tiny.safetensors", hash="0123456789", sha256="0123456789" + "0" * 54
        ),
        ModelEntry(
            name="tiny-b", filename="tiny-b.safetensors", hash="abcdef0123", sha256="abcdef0123" + "0" * 54
        ),
    ]
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class TinyRun:
    """engine.generate on tiny random components (one per catalog name), saved by the archive.

    ``step_delay`` slows every step so that tests can watch progress, interrupt or kill mid-job."""

    def __init__(self, settings: Settings, step_delay: float = 0.0) -> None:
        from tiny import tiny_components

        base = tiny_components(seed=0)
        other = tiny_components(seed=1)
        self.models: dict[str, Any] = {
            "tiny": base,
            "tiny-b": dataclasses.replace(other, info=ModelInfo(name="tiny-b", hash="abcdef0123")),
        }
        self.settings = settings
        self.step_delay = step_delay

    def __call__(
        self, request: GenerationRequest, *, on_progress: ProgressCallback, cancel: CancelToken
    ) -> Sequence[SavedImage]:
        from sfumato.archive.index import ArchiveIndex
        from sfumato.engine.generate import generate

        components = self.models[request.model or "tiny"]

        def progress(step: StepProgress) -> None:
            on_progress(step)
            if self.step_delay:
                time.sleep(self.step_delay)

        result = generate(components, request, on_progress=progress, cancel=cancel, preview_every=1)
        archive = ArchiveIndex.from_settings(self.settings)
        saved = []
        for item in result.images:
            record = archive.save(item)
            saved.append(
                SavedImage(
                    path=str(archive.path_of(record)),
                    infotext=record.parameters,
                    recipe=item.recipe,
                    model_name=item.model.name,
                    model_hash=item.model.hash,
                )
            )
        return saved


@contextmanager
def live_server(app: Any) -> Iterator[str]:
    import uvicorn

    port = free_port()
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


def finished_job(client: Any, job_id: str, timeout: float = 120) -> dict[str, Any]:
    """The job as ``GET /api/jobs/{id}`` shows it once it has ended (finished, failed or cancelled)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = client.get(f"/api/jobs/{job_id}").json()
        if job["state"] in ("finished", "failed", "cancelled"):
            return job
        time.sleep(0.05)
    raise AssertionError("the job did not finish")
