"""The jobs layer seen from Qt: a queue with an in-process worker thread, its events delivered as a
Qt signal on the UI thread, so the window never waits for the engine."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QObject, Qt, Signal

from sfumato.core.request import GenerationRequest
from sfumato.core.settings import Settings
from sfumato.core.training_request import TrainingRequest
from sfumato.desktop.model.document import Rect
from sfumato.desktop.model.jobs import JobsModel
from sfumato.jobs.events import JobEvent
from sfumato.jobs.model import Job
from sfumato.jobs.queue import JobQueue
from sfumato.jobs.run_job import TrainFunction
from sfumato.jobs.store_sqlite import SqliteJobStore
from sfumato.jobs.worker import RunFunction

STUDIO_WORKER = "studio-0"


def studio_queue(
    settings: Settings,
    run: RunFunction | None = None,
    store_path: Path | None = None,
    train: TrainFunction | None = None,
) -> JobQueue:
    """The studio's own queue (a file apart from the server's, so both can run at once)."""
    if run is None:
        from sfumato.jobs.local import runner_run_function

        run = runner_run_function(settings)
    if train is None:
        from sfumato.jobs.run_job import training_run_function

        train = training_run_function(settings)
    queue = JobQueue(SqliteJobStore(store_path or settings.data_dir / "studio-jobs.sqlite"))
    queue.add_worker(run, worker_id=STUDIO_WORKER, poll_seconds=0.5, train=train)
    return queue


class JobsBridge(QObject):
    """Forwards the queue's events (emitted on the worker thread) to ``model`` on the UI thread."""

    arrived = Signal(object)

    def __init__(self, queue: JobQueue, model: JobsModel, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.queue, self.model = queue, model
        self.arrived.connect(self._deliver, Qt.ConnectionType.QueuedConnection)
        self._unsubscribe = queue.bus.subscribe(self.arrived.emit)

    def _deliver(self, event: JobEvent) -> None:
        self.model.apply(event)

    def start(self) -> None:
        self.queue.start()

    def submit(self, request: GenerationRequest, title: str, frame: Rect | None) -> Job:
        job = self.queue.submit(request)
        # its events reach the model later, through the UI thread's event loop
        self.model.add(job.id, title, frame)
        return job

    def submit_training(self, training: TrainingRequest, title: str) -> Job:
        job = self.queue.submit_training(training)
        self.model.add(job.id, title, None)
        return job

    def cancel(self, job_id: str) -> None:
        self.queue.cancel(job_id)

    def skip(self) -> None:
        self.queue.skip()

    def stop(self) -> None:
        self._unsubscribe()
        self.queue.stop()
