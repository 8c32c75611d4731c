"""A run function that hands each request to another machine's `sfumato serve` (its `/api`), so a
face's queue works the same with the engine in-process or remote.

The job is submitted to the server, its events are read from the server's Server-Sent Events
stream (progress with previews, then the pictures), and each picture is downloaded into this
machine's outputs folder and archive, recipe included. Cancel and skip are passed on. A training is
sent the same way, its pictures in the body; its file stays in the server's library.
"""

from __future__ import annotations

import base64
import io
import json
import threading
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from PIL import Image
from pydantic import TypeAdapter, ValidationError

from sfumato.archive.index import ArchiveIndex
from sfumato.core.errors import Cancelled, SfumatoError
from sfumato.core.events import CancelToken, ProgressCallback, StepProgress
from sfumato.core.request import GenerationRequest
from sfumato.core.training_request import TrainingOutcome, TrainingRequest
from sfumato.jobs.events import JobCancelled, JobEvent, JobFailed, JobFinished, JobProgress
from sfumato.jobs.model import SavedImage, SavedImageInfo
from sfumato.jobs.run_job import TrainFunction
from sfumato.jobs.worker import RunFunction

_EVENTS: TypeAdapter[JobEvent] = TypeAdapter(JobEvent)
REMOTE_FOLDER = "remote"  # downloaded pictures go into this sub-folder of the outputs
_STREAM_TIMEOUT = 120.0  # the server pings an open event stream far more often than this


class RemoteError(SfumatoError):
    """The remote server cannot be reached or refused the request."""


class RemoteServer:
    def __init__(self, url: str, token: str | None = None, timeout: float = 30.0) -> None:
        parsed = urllib.parse.urlparse(url.strip())
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise RemoteError(
                f"{url!r} is not a server address.",
                "Give it as http://host:7860 (what `sfumato serve` prints).",
            )
        self.url = url.strip().rstrip("/")
        self.token = token or None
        self.timeout = timeout

    def _open(
        self, method: str, path: str, body: dict[str, Any] | None = None, timeout: float | None = None
    ) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.url + path, data=data, method=method)
        if data is not None:
            request.add_header("Content-Type", "application/json")
        if self.token:
            request.add_header("Authorization", f"Bearer {self.token}")
        try:
            return urllib.request.urlopen(request, timeout=timeout or self.timeout)
        except urllib.error.HTTPError as error:
            raise RemoteError(f"The server {self.url} refused {method} {path}: {_detail(error)}.") from None
        except (urllib.error.URLError, OSError) as error:
            reason = getattr(error, "reason", error)
            raise RemoteError(
                f"The server {self.url} cannot be reached ({reason}).",
                "Is `sfumato serve` running there, and is the address right?",
            ) from None

    def json(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        with self._open(method, path, body) as response:
            return json.loads(response.read())

    def bytes(self, path: str) -> bytes:
        with self._open("GET", path) as response:
            return response.read()

    def events(self) -> Any:
        """The open event stream (the server starts sending once it has answered)."""
        return self._open("GET", "/api/events", timeout=_STREAM_TIMEOUT)


def _detail(error: urllib.error.HTTPError) -> str:
    try:
        body = json.loads(error.read())
    except (ValueError, OSError):
        return f"HTTP {error.code}"
    detail = body.get("detail") if isinstance(body, dict) else None
    return f"HTTP {error.code}, {detail}" if isinstance(detail, str) else f"HTTP {error.code}"


def read_events(stream: Any) -> Iterator[JobEvent]:
    """Job events from a Server-Sent Events stream (comments and unknown data skipped)."""
    data: list[str] = []
    for raw in stream:
        line = raw.decode("utf-8", "replace").rstrip("\r\n")
        if line.startswith("data:"):
            data.append(line[5:].strip())
        elif not line and data:
            text, data = "\n".join(data), []
            try:
                event = _EVENTS.validate_json(text)
            except ValidationError:
                continue
            yield event


def _preview(uri: str | None) -> Image.Image | None:
    if not uri:
        return None
    with Image.open(io.BytesIO(base64.b64decode(uri.partition(",")[2]))) as image:
        return image.convert("RGB")


def remote_run_function(server: RemoteServer, archive: ArchiveIndex) -> RunFunction:
    def run(
        request: GenerationRequest, *, on_progress: ProgressCallback, cancel: CancelToken
    ) -> Sequence[SavedImage]:
        stream = server.events()  # listening before the job exists, so no event is missed
        try:
            body = {"request": request.model_dump(mode="json", exclude_none=True)}
            job_id = str(server.json("POST", "/api/jobs", body)["id"])
            done = threading.Event()
            watcher = threading.Thread(target=_pass_on, args=(server, job_id, cancel, done), daemon=True)
            watcher.start()
            try:
                images = _follow(stream, job_id, on_progress).images
            finally:
                done.set()
        finally:
            stream.close()
        return [_download(server, archive, job_id, index, image) for index, image in enumerate(images)]

    return run


def remote_train_function(server: RemoteServer) -> TrainFunction:
    """Trainings sent to the server (`POST /api/train`, the folder's pictures and captions in the body):
    the file lands in the server's library, where the server's renders use it."""

    def train(
        request: TrainingRequest, *, on_progress: ProgressCallback, cancel: CancelToken
    ) -> TrainingOutcome:
        pictures = _training_pictures(Path(request.images).expanduser())
        stream = server.events()
        try:
            fields = request.model_dump(mode="json", exclude={"images"}, exclude_none=True)
            job_id = str(server.json("POST", "/api/train", {"training": fields, "pictures": pictures})["id"])
            done = threading.Event()
            watcher = threading.Thread(target=_pass_on, args=(server, job_id, cancel, done), daemon=True)
            watcher.start()
            losses: list[float] = []

            def progress(step: StepProgress) -> None:
                if step.loss is not None:
                    losses.append(step.loss)
                on_progress(step)

            try:
                finished = _follow(stream, job_id, progress)
            finally:
                done.set()
        finally:
            stream.close()
        if finished.output is None:
            raise RemoteError(
                "The server finished the training but named no file.", "Look at the server's log."
            )
        return TrainingOutcome(
            path=Path(finished.output),
            steps=request.steps,
            last_loss=losses[-1] if losses else float("nan"),
            resumed_from=0,
            notes=(f"Trained on {server.url}; the file is in that server's library.",),
        )

    return train


def _training_pictures(folder: Path) -> list[dict[str, str]]:
    """The folder's pictures as data: URIs with their .txt captions, as `POST /api/train` takes them."""
    from sfumato.training.dataset import picture_files

    pictures = []
    for path in picture_files(folder):
        kind = "jpeg" if path.suffix.lower() in (".jpg", ".jpeg") else path.suffix.lower().lstrip(".")
        item = {"image": f"data:image/{kind};base64,{base64.b64encode(path.read_bytes()).decode()}"}
        caption = path.with_suffix(".txt")
        if caption.is_file():
            item["caption"] = " ".join(caption.read_text("utf-8", errors="replace").split())[:1000]
        pictures.append(item)
    return pictures


def _pass_on(server: RemoteServer, job_id: str, cancel: CancelToken, done: threading.Event) -> None:
    """Cancel and skip asked for here, sent to the server."""
    cancelled = False
    while not done.wait(0.1):
        try:
            if cancel.cancelled and not cancelled:
                cancelled = True
                server.json("POST", f"/api/jobs/{job_id}/cancel")
            if cancel.take_skip():
                server.json("POST", f"/api/jobs/{job_id}/skip")
        except RemoteError:
            pass  # the job's own events say how it ended


def _follow(stream: Any, job_id: str, on_progress: ProgressCallback) -> JobFinished:
    for event in read_events(stream):
        if event.job_id != job_id:
            continue
        if isinstance(event, JobProgress):
            preview = _preview(event.preview)
            on_progress(
                StepProgress(event.step, event.steps, event.batch, event.batches, preview, event.loss)
            )
        elif isinstance(event, JobFinished):
            return event
        elif isinstance(event, JobFailed):
            raise RemoteError(f"The server's job failed: {event.reason}")
        elif isinstance(event, JobCancelled):
            raise Cancelled(event.reason)
    raise RemoteError("The server closed the event stream before the job ended.", "Look at the server's log.")


def _download(
    server: RemoteServer, archive: ArchiveIndex, job_id: str, index: int, image: SavedImageInfo
) -> SavedImage:
    # the outputs route takes the path relative to the server's outputs, as runners record it
    relative = not Path(image.path).is_absolute()
    route = (
        f"/api/files/{urllib.parse.quote(image.path)}" if relative else f"/api/jobs/{job_id}/images/{index}"
    )
    data = server.bytes(route)
    folder = archive.outputs / REMOTE_FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{job_id[:12]}-{index}-{Path(image.path).name}"
    temporary = path.with_name("." + path.name + ".part")
    temporary.write_bytes(data)
    temporary.replace(path)
    record = archive.add(path)
    return SavedImage(
        path=record.path,
        infotext=image.infotext,
        recipe=image.recipe,
        model_name=image.model_name,
        model_hash=image.model_hash,
    )
