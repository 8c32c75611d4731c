"""`sfumato worker`: a worker on another machine that takes jobs from a server over HTTP.

It claims a job (a lease), runs it here with ``JobExecutor`` (only the job kinds it knows), reports
progress, heartbeats to keep the lease, and uploads the pictures, which the server saves in its archive.
A server that stops answering is retried with growing pauses, then the worker gives up with a message.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import re
import shutil
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
from pydantic import ValidationError

from sfumato.core.errors import Cancelled, SfumatoError
from sfumato.core.events import CancelToken, StepProgress
from sfumato.jobs.execute import JobExecutor
from sfumato.jobs.model import Job
from sfumato.jobs.results import JobResults
from sfumato.jobs.run_job import KNOWN_KINDS, UnknownJobKind
from sfumato.jobs.worker import preview_data_uri

log = logging.getLogger(__name__)

PROGRESS_SECONDS = 0.5
MAX_PAUSE_SECONDS = 15.0


class ServerRefused(SfumatoError):
    """The server refused the worker (wrong token, not a Sfumato server)."""


class ServerGone(SfumatoError):
    """The server did not answer for longer than the worker waits."""


class LeaseLost(SfumatoError):
    """The server gave the job to another worker (this one was silent too long) or it ended."""


def default_name() -> str:
    name = re.sub(r"[^A-Za-z0-9._-]", "-", f"{socket.gethostname()}-{os.getpid()}").strip("-._")
    return (name or "worker")[:64]


class WorkerClient:
    """The server's /api/workers routes, with retries while the server is unreachable."""

    def __init__(
        self,
        url: str,
        token: str | None,
        retry_for: float = 120.0,
        timeout: float = 120.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        url = url.strip().rstrip("/")
        if not re.match(r"^https?://[^/\s]+", url):
            raise SfumatoError(
                f"{url!r} is not a server address.",
                "Give it as http://HOST:7860 (what `sfumato serve` prints).",
            )
        self.url = url
        self.retry_for = retry_for
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.http = httpx.Client(base_url=url, headers=headers, timeout=timeout, transport=transport)

    def close(self) -> None:
        self.http.close()

    def post(self, path: str, body: Any = None, *, retry: bool = True) -> Any:
        return self._answer(path, self._call("POST", path, body if body is not None else {}, retry))

    def get(self, path: str) -> Any:
        return self._answer(path, self._call("GET", path, None, True))

    def download(self, path: str, to: Path) -> None:
        answer = self._call("GET", path, None, True)
        if answer.status_code != 200:
            self._answer(path, answer)  # raises with the server's reason
        to.write_bytes(answer.content)

    def _call(self, method: str, path: str, body: Any, retry: bool) -> httpx.Response:
        first_failure: float | None = None
        pause = 0.5
        while True:
            try:
                answer = self.http.request(method, path, json=body)
            except httpx.TransportError as error:
                problem = f"{type(error).__name__}: {error}"
            else:
                if answer.status_code not in (502, 503, 504):
                    return answer
                problem = f"HTTP {answer.status_code}"
            if not retry:
                raise ServerGone(f"The server at {self.url} did not answer ({problem}).")
            now = time.monotonic()
            first_failure = now if first_failure is None else first_failure
            if now - first_failure >= self.retry_for:
                raise ServerGone(
                    f"The server at {self.url} has not answered for {self.retry_for:.0f} s ({problem}); giving up.",
                    "Check that `sfumato serve` runs there, then start the worker again.",
                )
            log.warning("The server does not answer (%s); trying again in %.1f s", problem, pause)
            time.sleep(pause)
            pause = min(MAX_PAUSE_SECONDS, pause * 2)

    def _answer(self, path: str, answer: httpx.Response) -> Any:
        if answer.status_code in (401, 403):
            raise ServerRefused(
                f"The server at {self.url} refused this worker (HTTP {answer.status_code}): {_detail(answer)}",
                "Give the token `sfumato serve` was started with (--token or SFUMATO_TOKEN).",
            )
        if answer.status_code == 409:
            raise LeaseLost(_detail(answer))
        if answer.status_code == 404 and path.endswith("/claim"):
            raise ServerRefused(
                f"{self.url} does not take remote workers (no /api/workers/claim).",
                "Point --server at a Sfumato server of the same version.",
            )
        if answer.status_code >= 400:
            raise SfumatoError(f"The server refused {path} (HTTP {answer.status_code}): {_detail(answer)}")
        return answer.json()


def _detail(answer: httpx.Response) -> str:
    try:
        body = answer.json()
    except ValueError:
        return answer.text[:200] or answer.reason_phrase
    detail = body.get("detail") if isinstance(body, dict) else None
    return detail if isinstance(detail, str) else str(body)[:200]


class _Reporter:
    """Heartbeats and the latest progress, from a thread of their own so the job never waits on them."""

    def __init__(self, client: WorkerClient, lease: str, every: float, token: CancelToken) -> None:
        self.client = client
        self.lease = lease
        self.every = every
        self.token = token
        self.problem: SfumatoError | None = None  # LeaseLost or ServerGone: the job is stopped
        self._latest: dict[str, Any] | None = None
        self._lock = threading.Lock()
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="sfumato-heartbeat", daemon=True)

    def __enter__(self) -> _Reporter:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._done.set()
        self._thread.join(5)

    def progress(self, progress: StepProgress) -> None:
        body: dict[str, Any] = {
            "step": progress.step,
            "steps": progress.steps,
            "batch": progress.batch,
            "batches": progress.batches,
        }
        if progress.loss is not None and math.isfinite(progress.loss):
            body["loss"] = progress.loss
        if progress.preview is not None:
            body["preview"] = preview_data_uri(progress.preview)
        with self._lock:
            if "preview" not in body and self._latest and "preview" in self._latest:
                body["preview"] = self._latest["preview"]  # a preview (a training's sample) is not lost
            self._latest = body

    def _loop(self) -> None:
        last_beat = time.monotonic()
        path = f"/api/workers/leases/{self.lease}"
        while not self._done.wait(PROGRESS_SECONDS):
            try:
                with self._lock:
                    latest, self._latest = self._latest, None
                if latest is not None:
                    with contextlib.suppress(ServerGone):  # progress is best effort; heartbeats decide
                        self.client.post(f"{path}/progress", latest, retry=False)
                if time.monotonic() - last_beat >= self.every:
                    if self.client.post(f"{path}/heartbeat")["cancel"]:
                        self.token.cancel()
                    last_beat = time.monotonic()
            except (LeaseLost, ServerGone, ServerRefused) as problem:
                self.problem = problem
                self.token.cancel()
                return
            except SfumatoError as error:
                log.warning("The server refused a report: %s", error)


class RemoteWorker:
    def __init__(
        self,
        client: WorkerClient,
        executor: JobExecutor,
        name: str,
        poll_seconds: float = 2.0,
        say: Callable[[str], None] = print,
    ) -> None:
        self.client = client
        self.executor = executor
        self.name = name
        self.poll_seconds = poll_seconds
        self.say = say

    def run(self, max_jobs: int | None = None, stop_when_idle: bool = False) -> int:
        """Takes and runs jobs until ``max_jobs`` ran (or the queue is empty, with ``stop_when_idle``);
        returns how many ran. Raises ServerRefused or ServerGone."""
        done = 0
        while max_jobs is None or done < max_jobs:
            claim = self.client.post("/api/workers/claim", {"worker": self.name, "kinds": list(KNOWN_KINDS)})
            if claim.get("lease") is None:
                if stop_when_idle:
                    break
                time.sleep(self.poll_seconds)
                continue
            self.run_claimed(claim)
            done += 1
        return done

    def run_claimed(self, claim: dict[str, Any]) -> None:
        lease = str(claim["lease"])
        path = f"/api/workers/leases/{lease}"
        kind = str(claim.get("kind"))
        if kind not in KNOWN_KINDS:  # nothing but the kinds this worker defines ever runs
            self.say(f"Refusing a job of kind {kind[:64]!r}: this worker does not run it.")
            self._report(f"{path}/fail", {"reason": UnknownJobKind.of_kind(kind).message, "kind": "request"})
            return
        try:
            job = Job.model_validate(claim.get("job"))
        except ValidationError as error:
            reason = f"This worker could not read the job ({error.error_count()} problems); is it the same version?"
            self._report(f"{path}/fail", {"reason": reason, "kind": "internal"})
            return
        every = max(0.5, float(claim.get("lease_seconds") or 30.0) / 3)
        if job.training is not None:
            try:
                job = self._fetch_training_set(job, path, every)
            except LeaseLost as lost:
                self.say(f"Job {job.id} was given to another worker ({lost.message}); dropped here.")
                return
            except SfumatoError as error:
                self._report(f"{path}/fail", {"reason": str(error)[:4000], "kind": "request"})
                return
        self.say(f"Running job {job.id} ({kind}, attempt {job.attempts}).")
        token = CancelToken()
        with _Reporter(self.client, lease, every, token) as reporter:
            outcome: tuple[str, Any]
            try:
                outcome = ("complete", self.executor.run(job, on_progress=reporter.progress, cancel=token))
            except Cancelled as stop:
                outcome = ("cancelled", {"reason": stop.message})
            except SfumatoError as error:
                outcome = ("fail", {"reason": str(error)[:4000], "kind": "request"})
            except Exception as error:  # a broken job must not take the worker down
                log.exception("Job %s failed", job.id)
                outcome = (
                    "fail",
                    {
                        "reason": f"The job failed on worker {self.name}: {type(error).__name__}: {error}"[
                            :4000
                        ],
                        "kind": "internal",
                    },
                )
        if job.training is not None:  # the job ended here; its checkpoints stay for a rerun
            shutil.rmtree(job.training.images, ignore_errors=True)
        if reporter.problem is not None:
            if isinstance(reporter.problem, LeaseLost):
                self.say(
                    f"Job {job.id} was given to another worker ({reporter.problem.message}); dropped here."
                )
                return
            raise reporter.problem
        what, body = outcome
        if isinstance(body, JobResults):
            body = body.model_dump(mode="json")
        if self._report(f"{path}/{what}", body):
            self.say(f"Job {job.id}: {what}.")

    def _fetch_training_set(self, job: Job, lease_path: str, beat_every: float) -> Job:
        """The training pictures, from the server into this machine's data folder (one folder a job,
        so a worker that runs the same job again resumes from its own checkpoints)."""
        assert job.training is not None
        folder = self.executor.settings.data_dir / "training-sets" / f"remote-{job.id}"
        listing = self.client.get(f"{lease_path}/training-set")
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        last_beat = time.monotonic()
        for item in listing["files"]:
            if time.monotonic() - last_beat >= beat_every:  # a large set on a slow link keeps its lease
                self.client.post(f"{lease_path}/heartbeat")
                last_beat = time.monotonic()
            name = str(item["name"])
            if Path(name).name != name or name.startswith("."):
                raise SfumatoError(
                    f"The server listed a training file with a path in its name: {name[:80]!r}."
                )
            self.client.download(f"{lease_path}/training-set/{quote(name)}", folder / name)
        self.say(f"Fetched {len(listing['files'])} training files for job {job.id}.")
        training = job.training.model_copy(update={"images": str(folder)})
        return job.model_copy(update={"training": training})

    def _report(self, path: str, body: Any) -> bool:
        try:
            self.client.post(path, body)
        except LeaseLost as lost:
            self.say(f"The server no longer wants this job's result: {lost.message}")
            return False
        return True
