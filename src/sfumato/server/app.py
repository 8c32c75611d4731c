"""The app factory: one FastAPI app with Sfumato's API, the A1111 API, the access guard and a queue."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from starlette.middleware.cors import CORSMiddleware

from sfumato import __version__
from sfumato.core.settings import Settings
from sfumato.jobs.queue import JobQueue
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
    video_routes,
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
    workers: int = 1,
    poll_seconds: float = 1.0,
) -> FastAPI:
    """``run`` and ``catalog`` replace the real model loading and model folders (tests use tiny models)."""
    settings = settings or Settings()
    config = config or ServerConfig(
        listen=settings.host,
        port=settings.port,
        token=settings.token,
        cors_origins=list(settings.cors_origins),
    )
    if queue is None:
        queue = JobQueue(SqliteJobStore(settings.data_dir / "jobs.sqlite"))
        if run is None:
            from sfumato.jobs.local import runner_run_function

            run = runner_run_function(settings)
        for index in range(workers):
            queue.add_worker(run, worker_id=f"local-{settings.device}-{index}", poll_seconds=poll_seconds)
    context = ServerContext(settings, config, queue, catalog or default_catalog(settings))

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        for job in queue.start():
            log.warning("Job %s was unfinished when the server last stopped: now %s", job.id, job.state.value)
        try:
            yield
        finally:
            queue.stop()

    app = FastAPI(
        title="Sfumato",
        version=__version__,
        description="Sfumato's API (/api) and an AUTOMATIC1111-compatible API (/sdapi/v1).",
        lifespan=lifespan,
        max_body_size=config.max_body_bytes,
    )
    app.state.context = context
    app.state.run = run  # the A1111 unload/reload routes free its loaded models
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
