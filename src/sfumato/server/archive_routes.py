"""Browse, search and fetch the pictures in the archive."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import FileResponse
from pydantic import BaseModel

from sfumato.server.context import ServerContext
from sfumato.server.errors import error_responses

# SQLite's integers are 64-bit: a larger id is no record, and must not reach the database.
RecordId = Annotated[int, Path(ge=1, le=2**63 - 1, description="The record's id in the archive.")]


class ArchiveRecord(BaseModel):
    id: int
    path: str
    created: str
    prompt: str
    negative_prompt: str
    seed: int | None
    model: str | None
    width: int
    height: int
    parameters: str


class ArchivePage(BaseModel):
    total: int
    records: list[ArchiveRecord]


def _context(request: Request) -> ServerContext:
    return request.app.state.context


def build_router() -> APIRouter:
    from sfumato.archive.index import ArchiveIndex, fts_query

    router = APIRouter(prefix="/api/archive", tags=["Archive"])

    def index(request: Request) -> ArchiveIndex:
        return ArchiveIndex.from_settings(_context(request).settings)

    @router.get("", response_model=ArchivePage, responses=error_responses(422))
    def browse(
        request: Request,
        query: Annotated[str | None, Query(max_length=1000)] = None,
        limit: Annotated[int, Query(ge=1, le=500)] = 50,
        offset: Annotated[int, Query(ge=0, le=10**9)] = 0,
    ) -> ArchivePage:
        archive = index(request)
        # A query without a searchable word (only punctuation, say) asks for nothing in particular.
        words = fts_query(query) if query else ""
        records = archive.search(query, limit, offset) if query and words else archive.list(limit, offset)
        return ArchivePage(
            total=archive.count(),
            records=[ArchiveRecord.model_validate(r, from_attributes=True) for r in records],
        )

    @router.get("/{record_id}", response_model=ArchiveRecord, responses=error_responses(404, 422))
    def show(request: Request, record_id: RecordId) -> ArchiveRecord:
        return ArchiveRecord.model_validate(index(request).get(record_id), from_attributes=True)

    @router.get(
        "/{record_id}/image",
        response_class=FileResponse,
        responses={200: {"content": {"image/png": {}}}, **error_responses(400, 404, 422)},
    )
    def image(request: Request, record_id: RecordId) -> FileResponse:
        from sfumato.server.api import serve_file

        archive = index(request)
        return serve_file(_context(request), str(archive.path_of(archive.get(record_id))))

    return router
