"""Running a claimed job on a worker that is not the server (a remote `sfumato worker`, a Ray actor).

``JobExecutor.run`` is the one call that runs a claimed job: it takes the Job and returns its results,
which the server then saves. A job is run by its kind, and only the kinds of ``run_job.KNOWN_KINDS``:
nothing else a server (or anyone on the network) sends is ever executed.
"""

from __future__ import annotations

import shutil
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from sfumato.core.errors import InvalidRequest
from sfumato.core.events import CancelToken, ProgressCallback
from sfumato.core.settings import Settings
from sfumato.jobs.model import Job
from sfumato.jobs.results import JobResults, picture_result, trained_file
from sfumato.jobs.run_job import UnknownJobKind

if TYPE_CHECKING:
    from sfumato.core.request import GenerationRequest
    from sfumato.jobs.runner import SavedPicture


class JobExecutor:
    """One per device: keeps models loaded between jobs and runs one job at a time."""

    def __init__(self, settings: Settings) -> None:
        from sfumato.models.cache import ModelCache

        self.settings = settings
        self.cache = ModelCache(settings.model_cache_bytes)
        self._running = threading.Lock()
        self._kinds: dict[str, Callable[[Job, ProgressCallback, CancelToken], JobResults]] = {
            "generate": lambda job, progress, cancel: self.generate(job.request, progress, cancel),
            "train": lambda job, progress, cancel: self.train(job, progress, cancel),
        }

    def run(self, job: Job, *, on_progress: ProgressCallback, cancel: CancelToken) -> JobResults:
        kind = job.kind
        if kind not in self._kinds:
            raise UnknownJobKind.of_kind(kind)
        with self._running:
            return self._kinds[kind](job, on_progress, cancel)

    def generate(
        self, request: GenerationRequest, on_progress: ProgressCallback, cancel: CancelToken
    ) -> JobResults:
        """The runner, writing into a scratch folder: the pictures go to the server, not this machine's
        archive (the server applies its own concept-search embedding when it saves them)."""
        from sfumato.archive.index import Archive
        from sfumato.jobs.runner import run_request

        scratch = Path(tempfile.mkdtemp(prefix="sfumato-worker-"))
        settings = self.settings.model_copy(update={"output_dir": scratch, "embed_on_save": False})
        saved: list[SavedPicture] = []
        try:
            output = run_request(
                settings,
                request,
                on_progress=on_progress,
                cancel=cancel,
                cache=self.cache,
                on_saved=saved.append,
            )
            return JobResults(
                pictures=[picture_result(picture.item) for picture in output.pictures], notes=output.notes
            )
        finally:
            archive = Archive(settings)
            for picture in saved:  # this machine's index forgets the scratch files
                archive.remove(picture.file)
            shutil.rmtree(scratch, ignore_errors=True)

    def train(self, job: Job, on_progress: ProgressCallback, cancel: CancelToken) -> JobResults:
        """The training, its file written into a scratch folder and sent back: the server puts it into
        its own library (this machine's library is not asked whether the name is free)."""
        from sfumato.jobs.training import run_folder, run_training

        if job.training is None:
            raise InvalidRequest("This training job carries no training request.", "Submit it again.")
        scratch = Path(tempfile.mkdtemp(prefix="sfumato-worker-"))
        try:
            outcome = run_training(
                self.settings,
                job.training,
                on_progress=on_progress,
                cancel=cancel,
                target=scratch / f"{job.training.name}.safetensors",
            )
            results = JobResults(trained=trained_file(outcome.path), notes=list(outcome.notes))
            # finished: its checkpoints and samples (sent as previews) are of no use on this machine
            shutil.rmtree(run_folder(self.settings, job.training), ignore_errors=True)
            return results
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
