"""POST /api/blocklist/check: whether a prompt would be refused by the configured name blocklists."""

from __future__ import annotations

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field

from sfumato.server.context import ServerContext
from sfumato.server.errors import error_responses


class BlocklistCheck(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    prompt: str = Field(max_length=100_000, pattern="^[^\\x00]*$")


class BlocklistVerdict(BaseModel):
    blocked: bool
    entry: str | None = Field(default=None, description="The listed name the prompt matched.")
    list: str | None = Field(default=None, description="The blocklist file it is in.")
    line: int | None = None


def build_router() -> APIRouter:
    router = APIRouter(prefix="/api", tags=["Sfumato"])

    @router.post("/blocklist/check", response_model=BlocklistVerdict, responses=error_responses(422))
    def check(request: Request, body: BlocklistCheck) -> BlocklistVerdict:
        """Generation routes refuse a blocked prompt with a 422 on their own; this asks in advance."""
        from sfumato.analysis.blocklist import load_blocklists

        ctx: ServerContext = request.app.state.context
        found = load_blocklists(ctx.settings.blocklists).find(body.prompt)
        if found is None:
            return BlocklistVerdict(blocked=False)
        return BlocklistVerdict(
            blocked=True, entry=found.entry.name, list=found.entry.list_name, line=found.entry.line
        )

    return router
