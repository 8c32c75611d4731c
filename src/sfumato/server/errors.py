"""Errors as HTTP answers: a status and one readable message, never a traceback."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from sfumato.core.errors import InvalidRequest, ModelNotFound, NoModelConfigured, SfumatoError

log = logging.getLogger(__name__)


class NotFound(SfumatoError):
    """A job, picture or record asked for by id does not exist."""


def _status(error: SfumatoError) -> int:
    from sfumato.jobs.store_sqlite import JobNotFound
    from sfumato.server.paths import PathRefused

    if isinstance(error, PathRefused):
        return 400
    from sfumato.archive.index import RecordNotFound

    if isinstance(error, NotFound | JobNotFound | ModelNotFound | RecordNotFound):
        return 404
    if isinstance(error, InvalidRequest):
        return 422
    if isinstance(error, NoModelConfigured):
        return 409
    return 400


def install(app: FastAPI) -> None:
    from sfumato.server.a1111.routes import GenerationFailed

    @app.exception_handler(SfumatoError)
    async def sfumato_error(_: Request, error: Exception) -> JSONResponse:
        assert isinstance(error, SfumatoError)
        return JSONResponse({"error": type(error).__name__, "detail": str(error)}, status_code=_status(error))

    @app.exception_handler(GenerationFailed)
    async def generation_failed(_: Request, error: Exception) -> JSONResponse:
        return JSONResponse({"error": "GenerationFailed", "detail": str(error)}, status_code=500)

    @app.exception_handler(RequestValidationError)
    async def invalid_body(_: Request, error: Exception) -> JSONResponse:
        assert isinstance(error, RequestValidationError)
        problems = []
        for item in error.errors()[:20]:
            where = ".".join(str(p) for p in item.get("loc", ()) if p != "body") or "body"
            problems.append(f"{where}: {str(item.get('msg', 'invalid')).removeprefix('Value error, ')}")
        return JSONResponse(
            {"error": "InvalidRequest", "detail": "Invalid request: " + "; ".join(problems) + "."},
            status_code=422,
        )
