"""/api/workers: where `sfumato worker` processes on other machines take jobs and bring results back.

claim (a lease, for the kinds the worker runs) -> [a training job: its pictures, training-set] ->
heartbeat* (extends it; says when the job was cancelled) -> progress* -> complete (the pictures, saved
into this server's archive; a training's file, put into its library) | fail | cancelled. Every call needs the
server's token like any other route; a worker whose lease ran out gets 409 and drops the job.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Literal, TypeVar

from fastapi import APIRouter, Request
from fastapi import Path as PathParam
from fastapi.responses import FileResponse, JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from sfumato.jobs.leases import WORKER_NAME, LeaseLost, RemoteLeases
from sfumato.jobs.model import ErrorKind, Job, JobKind
from sfumato.jobs.results import JobResults
from sfumato.server.errors import error_response, error_responses

MAX_PREVIEW_CHARS = 512 * 1024
PREVIEW_PREFIXES = ("data:image/jpeg;base64,", "data:image/png;base64,", "data:image/webp;base64,")

LeaseId = Annotated[str, PathParam(min_length=16, max_length=64, description="The lease, as claim gave it.")]
T = TypeVar("T")


class ClaimJob(BaseModel):
    model_config = ConfigDict(strict=True)

    worker: str = Field(
        pattern=WORKER_NAME.pattern, description="The worker's name (letters, digits, '.', '_', '-')."
    )
    kinds: list[JobKind] = Field(
        default_factory=lambda: ["generate"],
        max_length=8,
        description="The job kinds the worker runs; only those are lent to it.",
    )


class Claim(BaseModel):
    """A job lent to the worker, or none when the queue is empty."""

    lease: str | None = Field(None, description="Send it with every later call about this job.")
    lease_seconds: float = Field(description="Heartbeat well within this, or the job goes to another worker.")
    expires_at: float | None = Field(None, description="Unix time the lease runs out without a heartbeat.")
    kind: str | None = Field(None, description="What the job asks for; a worker runs only kinds it knows.")
    job: Job | None = None


class Heartbeat(BaseModel):
    cancel: bool = Field(description="The user cancelled the job: stop and report `cancelled`.")
    expires_at: float


class Progress(BaseModel):
    step: int = Field(ge=0, le=100_000)
    steps: int = Field(ge=1, le=100_000)
    batch: int = Field(0, ge=0, le=100_000)
    batches: int = Field(1, ge=1, le=100_000)
    preview: str | None = Field(None, max_length=MAX_PREVIEW_CHARS, description="A small JPEG data: URI.")
    loss: float | None = Field(None, ge=0, le=1e12, description="A training's loss at this step.")


class Failure(BaseModel):
    model_config = ConfigDict(strict=True)

    reason: str = Field(min_length=1, max_length=4000, description="Why, in words the user can act on.")
    kind: Literal["request", "internal"] = "internal"


class Stopped(BaseModel):
    model_config = ConfigDict(strict=True)

    reason: str = Field("Cancelled.", max_length=4000)


class Accepted(BaseModel):
    ok: bool = True


class TrainingSetFile(BaseModel):
    name: str
    bytes: int


class TrainingSet(BaseModel):
    """A training job's pictures and caption files; each is fetched by its name."""

    files: list[TrainingSetFile]


def _leases(request: Request) -> RemoteLeases:
    return request.app.state.leases


def _held(request: Request, call: Callable[[], T]) -> T | JSONResponse:
    try:
        return call()
    except LeaseLost as lost:
        return error_response(request, 409, "LeaseLost", str(lost))


def build_router() -> APIRouter:
    router = APIRouter(prefix="/api/workers", tags=["Remote workers"])
    lost = error_responses(409, 413, 422)

    @router.post("/claim", response_model=Claim, responses=error_responses(413, 422))
    def claim(request: Request, body: ClaimJob) -> Claim:
        """The next queued job, lent to this worker; `job` is null when there is none."""
        leases = _leases(request)
        taken = leases.claim(body.worker, body.kinds)
        if taken is None:
            return Claim(lease=None, lease_seconds=leases.lease_seconds, expires_at=None, kind=None)
        lease, job = taken
        return Claim(
            lease=lease.id,
            lease_seconds=leases.lease_seconds,
            expires_at=lease.expires_at,
            kind=job.kind,
            job=job,
        )

    @router.post("/leases/{lease}/heartbeat", response_model=Heartbeat, responses=lost)
    def heartbeat(request: Request, lease: LeaseId) -> Heartbeat | JSONResponse:
        def beat() -> Heartbeat:
            held, cancel = _leases(request).heartbeat(lease)
            return Heartbeat(cancel=cancel, expires_at=held.expires_at)

        return _held(request, beat)

    @router.post("/leases/{lease}/progress", response_model=Accepted, responses=lost)
    def progress(request: Request, lease: LeaseId, body: Progress) -> Accepted | JSONResponse:
        """Relayed to the job's event stream, as a local worker's progress is."""
        preview = body.preview if body.preview and body.preview.startswith(PREVIEW_PREFIXES) else None

        def relay() -> Accepted:
            _leases(request).progress(
                lease, body.step, body.steps, body.batch, body.batches, preview, body.loss
            )
            return Accepted()

        return _held(request, relay)

    @router.get("/leases/{lease}/training-set", response_model=TrainingSet, responses=lost)
    def training_set(request: Request, lease: LeaseId) -> TrainingSet | JSONResponse:
        """A leased training job's pictures and captions, listed; the worker fetches each by name."""

        def listing() -> TrainingSet:
            files = _leases(request).training_files(lease)
            return TrainingSet(
                files=[TrainingSetFile(name=name, bytes=path.stat().st_size) for name, path in files.items()]
            )

        return _held(request, listing)

    @router.get(
        "/leases/{lease}/training-set/{name}",
        response_class=FileResponse,
        responses={**error_responses(404, 409, 422), 200: {"content": {"application/octet-stream": {}}}},
    )
    def training_file(
        request: Request, lease: LeaseId, name: Annotated[str, PathParam(max_length=255)]
    ) -> Response:
        """One file of the set, as it lies on the server; only names the listing gives."""
        files = _held(request, lambda: _leases(request).training_files(lease))
        if isinstance(files, JSONResponse):
            return files
        if name not in files:
            return error_response(request, 404, "NotFound", f"The training set has no file {name[:80]!r}.")
        return FileResponse(files[name], media_type="application/octet-stream")

    @router.post("/leases/{lease}/complete", response_model=Job, responses=lost)
    def complete(request: Request, lease: LeaseId, body: JobResults) -> Job | JSONResponse:
        """The job's pictures (PNG, with their recipes): checked, then saved into this server's archive."""
        return _held(request, lambda: _leases(request).complete(lease, body))

    @router.post("/leases/{lease}/fail", response_model=Job, responses=lost)
    def fail(request: Request, lease: LeaseId, body: Failure) -> Job | JSONResponse:
        kind: ErrorKind = body.kind
        return _held(request, lambda: _leases(request).fail(lease, body.reason, kind))

    @router.post("/leases/{lease}/cancelled", response_model=Job, responses=lost)
    def cancelled(request: Request, lease: LeaseId, body: Stopped) -> Job | JSONResponse:
        return _held(request, lambda: _leases(request).cancelled(lease, body.reason))

    return router
