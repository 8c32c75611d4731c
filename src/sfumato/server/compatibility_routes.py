"""GET /api/models/compatibility: every embedding and LoRA with the checkpoints it fits."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from sfumato.server.context import ServerContext
from sfumato.server.errors import error_responses


class NetworkFit(BaseModel):
    name: str
    kind: str = Field(description="embedding or lora")
    family: str = Field(description="What it was made for, by its vector widths or module names.")
    models: list[str] = Field(description="The checkpoints in the library it fits.")
    problem: str = Field(default="", description="Why the file could not be read, when it could not.")


def _fits(ctx: ServerContext) -> list[NetworkFit]:
    from sfumato.models.compatibility import compatibility
    from sfumato.models.library import ModelLibrary

    entries = ModelLibrary(ctx.settings).entries(identify=True)
    return [NetworkFit.model_validate(found.to_json()) for found in compatibility(entries)]


def build_router() -> APIRouter:
    router = APIRouter(prefix="/api", tags=["Sfumato"])

    @router.get("/models/compatibility", response_model=list[NetworkFit], responses=error_responses())
    async def models_compatibility(request: Request) -> list[NetworkFit]:
        ctx: ServerContext = request.app.state.context
        return await asyncio.to_thread(_fits, ctx)

    return router
