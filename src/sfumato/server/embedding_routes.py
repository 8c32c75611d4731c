"""POST /api/embeddings/migrate: carry a textual-inversion embedding to another model."""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field

from sfumato.core.errors import InvalidRequest
from sfumato.server.catalog import find
from sfumato.server.context import ServerContext
from sfumato.server.errors import error_responses
from sfumato.training.migrate_embedding import DEFAULT_PROMPTS


class MigrateBody(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    embedding: str = Field(description="The embedding's name in the library.")
    from_model: str = Field(alias="from", description="The checkpoint it was made for.")
    to_model: str = Field(alias="to", description="The checkpoint to carry it to.")
    prompts: list[Annotated[str, Field(pattern=r"\{name\}", max_length=1000)]] = Field(
        default_factory=lambda: list(DEFAULT_PROMPTS),
        min_length=1,
        max_length=100,
        description='Prompts with {name} where the word goes, e.g. "a {name} castle".',
    )
    pictures: int = Field(default=24, ge=1, le=1000, description="Pictures drawn with the old model.")
    steps: int = Field(default=200, ge=0, le=100_000, description="Training steps on the new model.")
    init_text: str = Field(
        default="*",
        max_length=200,
        description="Words the new word starts from when the text encoders differ.",
    )


class MigrateResult(BaseModel):
    embedding: str = Field(description="The new embedding's file name, beside the original.")
    word: str = Field(description="The word prompts for the new model use.")
    steps: int = Field(description="Training steps done.")


def _migrate(ctx: ServerContext, body: MigrateBody) -> MigrateResult:
    from sfumato.models.loading import load_model
    from sfumato.training.migrate_embedding import MigrationConfig, migrate_embedding

    config = MigrationConfig(
        prompts=tuple(body.prompts), pictures=body.pictures, steps=body.steps, init_text=body.init_text
    )
    entry = find(ctx.catalog, body.embedding, "embedding")
    if entry.path is None:
        raise InvalidRequest(f"The embedding {entry.name} has no file here.", "Refresh the model list.")
    old = load_model(ctx.settings, find(ctx.catalog, body.from_model).name)
    new = load_model(ctx.settings, find(ctx.catalog, body.to_model).name)
    trained = migrate_embedding(old, new, entry.path, config)
    ctx.catalog.refresh()
    return MigrateResult(embedding=trained.path.name, word=trained.path.stem, steps=trained.result.step)


def build_router() -> APIRouter:
    router = APIRouter(prefix="/api", tags=["Sfumato"])

    @router.post("/embeddings/migrate", response_model=MigrateResult, responses=error_responses(404, 422))
    async def embeddings_migrate(request: Request, body: MigrateBody) -> MigrateResult:
        ctx: ServerContext = request.app.state.context
        return await asyncio.to_thread(_migrate, ctx, body)

    return router
