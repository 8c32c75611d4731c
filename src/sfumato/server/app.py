"""The app factory: one FastAPI app with Sfumato's API, the A1111 API, the access guard and a queue."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from starlette.middleware.cors import CORSMiddleware

from sfumato import __version__
from sfumato.core.settings import Settings
from sfumato.jobs.backends import add_workers, check_workers
from sfumato.jobs.leases import LEASE_SECONDS, RemoteLeases
from sfumato.jobs.queue import JobQueue
from sfumato.jobs.run_job import TrainFunction
from sfumato.jobs.store_sqlite import SqliteJobStore
from sfumato.jobs.worker import RunFunction
from sfumato.server import (
    analysis_routes,
    api,
    archive_routes,
    blocklist_routes,
    compatibility_routes,
    edit_routes,
    embedding_routes,
    errors,
    face_routes,
    postprocess_routes,
    training_routes,
    video_routes,
    worker_routes,
    xyz_routes,
)
from sfumato.server.a1111 import extras as a1111_extras
from sfumato.server.a1111 import interrogate as a1111_interrogate
from sfumato.server.a1111 import routes as a1111_routes
from sfumato.server.a1111 import routes_more as a1111_more
from sfumato.server.catalog import ModelCatalog
from sfumato.server.context import ServerConfig, ServerContext
from sfumato.server.security import AccessGuard, is_loopback

log = logging.getLogger(__name__)


def default_catalog(settings: Settings) -> ModelCatalog:
    from sfumato.server.library import LibraryCatalog

    return LibraryCatalog(settings)


def create_app(
    settings: Settings | None = None,
    *,
    config: ServerConfig | None = None,
    run: RunFunction | None = None,
    catalog: ModelCatalog | None = None,
    queue: JobQueue | None = None,
    workers: int | str | None = None,
    poll_seconds: float = 1.0,
    lease_seconds: float = LEASE_SECONDS,
    train: TrainFunction | None = None,
) -> FastAPI:
    """``run``, ``train`` and ``catalog`` replace the real model loading and model folders (tests use tiny models).

    ``workers``: who runs the jobs (see ``jobs/backends.py``); default: the ``workers`` setting."""
    settings = settings or Settings()
    config = config or ServerConfig(
        listen=settings.host,
        port=settings.port,
        token=settings.token,
        cors_origins=list(settings.cors_origins),
    )
    pool = None
    if queue is None:
        queue = JobQueue(SqliteJobStore(settings.data_dir / "jobs.sqlite"))
        spec = check_workers(settings.workers if workers is None else str(workers))
        if run is None and spec.isdigit() and int(spec):
            from sfumato.jobs.local import runner_run_function

            run = runner_run_function(settings)
        pool = add_workers(queue, settings, spec, run, poll_seconds, train=train)
    context = ServerContext(settings, config, queue, catalog or default_catalog(settings))
    leases = RemoteLeases(queue, settings, lease_seconds)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        for job in queue.start():
            log.warning("Job %s was unfinished when the server last stopped: now %s", job.id, job.state.value)
        leases.start()
        try:
            yield
        finally:
            leases.stop()
            queue.stop()
            if pool is not None:
                pool.close()

    app = FastAPI(
        title="Sfumato",
        version=__version__,
        description="Sfumato's API (/api) and an AUTOMATIC1111-compatible API (/sdapi/v1).",
        lifespan=lifespan,
        max_body_size=config.max_body_bytes,
    )
    app.state.context = context
    app.state.run = run  # the A1111 unload/reload routes free its loaded models
    app.state.leases = leases  # remote workers' claims
    errors.install(app)
    app.include_router(api.build_router())
    app.include_router(archive_routes.build_router())
    app.include_router(xyz_routes.build_router())
    app.include_router(face_routes.build_router())
    app.include_router(video_routes.build_router())
    app.include_router(edit_routes.build_router())
    app.include_router(compatibility_routes.build_router())
    app.include_router(embedding_routes.build_router())
    app.include_router(blocklist_routes.build_router())
    app.include_router(a1111_routes.build_router())
    app.include_router(a1111_more.build_router())
    app.include_router(a1111_extras.build_router())
    app.include_router(postprocess_routes.build_router())
    app.include_router(a1111_interrogate.build_router())
    app.include_router(analysis_routes.build_router())
    app.include_router(worker_routes.build_router())
    app.include_router(training_routes.build_router())
    if config.cors_origins:
        app.add_middleware(
            CORSMiddleware, allow_origins=config.cors_origins, allow_methods=["*"], allow_headers=["*"]
        )
    app.add_middleware(
        AccessGuard,
        token=config.token,
        allowed_origins=config.cors_origins,
        loopback_only=is_loopback(config.listen),
    )
    return app
