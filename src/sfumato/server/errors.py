"""Errors as HTTP answers: a status and one readable message, never a traceback.

Sfumato's own ``/api`` answers every error as :class:`ErrorBody`; ``/sdapi/v1`` answers in the shape
A1111's API uses for its errors (:class:`A1111Error`), so its clients read them as they always have.
Both are in ``/openapi.json`` for every status a route can return.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException

from sfumato.core.errors import InvalidRequest, ModelNotFound, NoModelConfigured, SfumatoError

log = logging.getLogger(__name__)

A1111_PREFIX = "/sdapi/"


class NotFound(SfumatoError):
    """A job, picture or record asked for by id does not exist."""


class FieldProblem(BaseModel):
    loc: list[str | int] = Field(
        description="Where the problem is: 'body', 'query' or 'path', then the field's path, "
        "e.g. ['body', 'request', 'width']."
    )
    msg: str = Field(description="What is wrong with that field, in words.")


class ErrorBody(BaseModel):
    """Every error of Sfumato's /api."""

    error: str = Field(
        description="The error's name: InvalidRequest, NotFound, ModelNotFound, PathRefused, "
        "NoModelConfigured, Unauthorized, Forbidden, MethodNotAllowed, InternalError…"
    )
    detail: str = Field(description="What went wrong and what to do next, in one line.")
    fields: list[FieldProblem] = Field(
        default_factory=list, description="For an invalid request: each field's problem (at most 20)."
    )


class A1111Error(BaseModel):
    """An error of /sdapi/v1, in the shape of AUTOMATIC1111's API (its exception handler)."""

    error: str = Field(description="The error's name.")
    detail: str = Field(description="What went wrong and what to do next.")
    body: str = ""
    errors: str = Field("", description="The same message (A1111 puts the exception's text here).")


_WHAT = {
    400: "A path that leaves the allowed folders.",
    401: "An access token is required (the server is not on loopback, or a token is set).",
    403: "Refused: a foreign Host or Origin.",
    404: "No such job, picture, record or model.",
    405: "The method is not served at this path; `Allow` lists those that are.",
    409: "No model is configured on the server.",
    413: "The body is larger than the server accepts.",
    422: "The request is invalid; the message (and for Sfumato's API `fields`) says what to change.",
    500: "Something broke in the server (a bug, logged with its traceback); never the client's input.",
}
GUARDED = (401, 403, 500)  # any route: the access guard, and the last-resort handler


def error_responses(*codes: int, a1111: bool = False) -> dict[int | str, dict[str, Any]]:
    """``responses=`` for a route: each status it can return, with the error model it answers."""
    model = A1111Error if a1111 else ErrorBody
    # Errors are JSON even where the route answers pictures or an event stream.
    content = {"application/json": {"schema": {"$ref": f"#/components/schemas/{model.__name__}"}}}
    return {
        code: {"model": model, "description": _WHAT[code], "content": content}
        for code in sorted({*codes, *GUARDED})
    }


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


def error_response(
    request: Request,
    status: int,
    name: str,
    detail: str,
    fields: list[FieldProblem] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    content = error_content(request.url.path, name, detail, fields)
    return JSONResponse(content, status_code=status, headers=headers)


def error_content(
    path: str, name: str, detail: str, fields: list[FieldProblem] | None = None
) -> dict[str, Any]:
    """The error in the shape of the API ``path`` belongs to."""
    if path.startswith(A1111_PREFIX):
        return A1111Error(error=name, detail=detail, errors=detail).model_dump()
    return ErrorBody(error=name, detail=detail, fields=fields or []).model_dump()


_HTTP_NAMES = {
    400: "BadRequest",
    401: "Unauthorized",
    403: "Forbidden",
    404: "NotFound",
    405: "MethodNotAllowed",
    413: "RequestTooLarge",
}


_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


def _allowed_methods(request: Request) -> str:
    """Every method some route serves at this path (Starlette names only the first route's)."""
    from starlette.routing import Match

    return ", ".join(
        method
        for method in _METHODS
        if any(
            route.matches({**request.scope, "method": method})[0] is Match.FULL
            for route in request.app.router.routes
        )
    )


def install(app: FastAPI) -> None:
    from sfumato.server.a1111.routes import GenerationFailed

    @app.exception_handler(SfumatoError)
    async def sfumato_error(request: Request, error: Exception) -> JSONResponse:
        assert isinstance(error, SfumatoError)
        return error_response(request, _status(error), type(error).__name__, str(error))

    @app.exception_handler(GenerationFailed)
    async def generation_failed(request: Request, error: Exception) -> JSONResponse:
        return error_response(request, 500, "GenerationFailed", str(error))

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, error: Exception) -> JSONResponse:
        assert isinstance(error, HTTPException)
        detail = error.detail if isinstance(error.detail, str) else str(error.detail)
        if error.status_code == 404 and detail == "Not Found":
            detail = f"There is nothing at {request.url.path}. See /docs for the routes."
        if error.status_code == 400 and detail == "There was an error parsing the body":
            detail = "The body is not valid JSON (or not UTF-8 text). Send a JSON object as the schema shows."
            return error_response(
                request, 422, "InvalidRequest", detail, [FieldProblem(loc=["body"], msg=detail)]
            )
        headers = dict(error.headers or {})
        if error.status_code == 405:
            headers["Allow"] = _allowed_methods(request)
            detail = f"{request.method} is not served at {request.url.path}; use {headers['Allow']}."
        name = _HTTP_NAMES.get(error.status_code, "HTTPError")
        return error_response(request, error.status_code, name, detail, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def invalid_body(request: Request, error: Exception) -> JSONResponse:
        assert isinstance(error, RequestValidationError)
        fields, problems = [], []
        for item in error.errors()[:20]:
            loc = [p if isinstance(p, int) else str(p) for p in item.get("loc", ())]
            message = str(item.get("msg", "invalid")).removeprefix("Value error, ")
            fields.append(FieldProblem(loc=loc, msg=message))
            where = ".".join(str(p) for p in loc if p != "body") or "body"
            problems.append(f"{where}: {message}")
        detail = "Invalid request: " + "; ".join(problems) + "."
        return error_response(request, 422, "InvalidRequest", detail, fields)

    @app.exception_handler(Exception)
    async def last_resort(request: Request, error: Exception) -> JSONResponse:
        log.error("%s %s failed", request.method, request.url.path, exc_info=error)
        return error_response(
            request,
            500,
            "InternalError",
            "Something broke in the server; the request was not carried out. "
            "The server's log has the details; please report it.",
        )
