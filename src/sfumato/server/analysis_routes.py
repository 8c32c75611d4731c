"""/api/interrogate, /api/search/archive, /api/search/dataset, /api/nsfw/check: what CLIP sees."""

from __future__ import annotations

import asyncio
from typing import Any, Literal

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field

from sfumato.core.errors import InvalidRequest
from sfumato.server.context import ServerContext
from sfumato.server.errors import NotFound, error_responses
from sfumato.server.submit import as_data_uri, open_client_image

_Text = Field(default=None, min_length=1, max_length=2000, pattern="^[^\\x00]*$")
_Image = Field(default=None, min_length=1, description="A picture: base64 or a data: URI.")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class InterrogateBody(_Strict):
    image: str = Field(min_length=1, description="The picture: base64 or a data: URI.")
    mode: Literal["clip", "tags"] = Field(
        default="clip", description="clip: a prompt; tags: the tagger's tags."
    )
    lists: list[str] | None = Field(default=None, max_length=64, description="Only these phrase lists.")


class ArchiveSearchBody(_Strict):
    text: str | None = _Text
    image: str | None = _Image
    limit: int = Field(default=20, ge=1, le=500)


class DatasetSearchBody(_Strict):
    dataset: str = Field(min_length=1, max_length=200, description="A configured dataset, by folder name.")
    text: str | None = _Text
    image: str | None = _Image
    neighbours_of: int | None = Field(default=None, ge=0, description="The rows nearest to this row.")
    limit: int = Field(default=20, ge=1, le=500)


class NsfwCheckBody(_Strict):
    image: str = Field(min_length=1, description="The picture: base64 or a data: URI.")


def _one_query(body: ArchiveSearchBody | DatasetSearchBody) -> None:
    given = [body.text, body.image, getattr(body, "neighbours_of", None)]
    if sum(x is not None for x in given) != 1:
        raise InvalidRequest("Search by exactly one of: text, image (or neighbours_of for a dataset).")


def build_router() -> APIRouter:
    router = APIRouter(prefix="/api", tags=["Sfumato"])

    @router.post("/interrogate", responses=error_responses(404, 422))
    async def interrogate(request: Request, body: InterrogateBody) -> dict[str, Any]:
        """A prompt for the picture: CLIP ranks phrase lists (and your captioner leads, if set); or tags."""
        from sfumato.analysis.interrogate import interrogate_with_settings, tags_with_settings

        ctx: ServerContext = request.app.state.context
        picture = open_client_image(as_data_uri(body.image), "image")
        if body.mode == "tags":
            tags = await asyncio.to_thread(tags_with_settings, picture, ctx.settings)
            return {
                "tags": [{"tag": t.name, "score": round(t.score, 4), "category": t.category} for t in tags]
            }
        result = await asyncio.to_thread(interrogate_with_settings, picture, ctx.settings, body.lists)
        return result.to_json()

    @router.post("/search/archive", responses=error_responses(404, 422))
    async def search_archive(request: Request, body: ArchiveSearchBody) -> dict[str, Any]:
        """Archived pictures nearest to a text or a picture (CLIP embeddings), best first."""
        from sfumato.analysis.archive_search import search_archive as search
        from sfumato.analysis.clip_model import load_clip

        _one_query(body)
        ctx: ServerContext = request.app.state.context
        like = open_client_image(as_data_uri(body.image), "image") if body.image else None

        def run() -> list[dict[str, Any]]:
            clip = load_clip(ctx.settings.clip_model)
            return [
                h.to_json() for h in search(ctx.settings, clip, text=body.text, like=like, limit=body.limit)
            ]

        return {"results": await asyncio.to_thread(run)}

    @router.post("/search/dataset", responses=error_responses(404, 422))
    async def search_dataset(request: Request, body: DatasetSearchBody) -> dict[str, Any]:
        """A configured LAION-style dataset searched by text, picture, or as the neighbours of a row."""
        from sfumato.analysis.clip_model import load_clip
        from sfumato.analysis.dataset_search import dataset_stamp, open_dataset

        _one_query(body)
        ctx: ServerContext = request.app.state.context
        folders = {folder.name: folder for folder in ctx.settings.datasets}
        if body.dataset not in folders:
            raise NotFound(
                f"No dataset named {body.dataset!r}.",
                f"Configured: {', '.join(folders) or 'none (setting datasets)'}.",
            )
        folder = folders[body.dataset]
        like = open_client_image(as_data_uri(body.image), "image") if body.image else None

        def run() -> dict[str, Any]:
            dataset = open_dataset(str(folder.resolve()), dataset_stamp(folder))
            if body.neighbours_of is not None:
                hits = dataset.neighbours(body.neighbours_of, body.limit)
            else:
                clip = load_clip(ctx.settings.clip_model)
                query = clip.embed_texts([body.text])[0] if body.text else clip.embed_pictures([like])[0]  # type: ignore[list-item]
                hits = dataset.search(query, body.limit)
            return {"index": dataset.index.kind, "rows": len(dataset), "results": [h.to_json() for h in hits]}

        return await asyncio.to_thread(run)

    @router.post("/nsfw/check", responses=error_responses(404, 422))
    async def nsfw_check(request: Request, body: NsfwCheckBody) -> dict[str, Any]:
        """What the NSFW filter's checkers say about a picture (the settings' checkers)."""
        from sfumato.analysis.nsfw import check_picture

        ctx: ServerContext = request.app.state.context
        picture = open_client_image(as_data_uri(body.image), "image")
        verdict = await asyncio.to_thread(check_picture, picture, ctx.settings)
        return {"flagged": verdict.flagged, "reasons": verdict.reasons, "filter": ctx.settings.nsfw_filter}

    return router
