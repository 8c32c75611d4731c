"""POST /sdapi/v1/interrogate: A1111's image -> prompt, with its ``clip`` and ``deepdanbooru`` models."""

from __future__ import annotations

import asyncio
from typing import Literal

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from sfumato.server.a1111.schemas import _Loose
from sfumato.server.context import ServerContext
from sfumato.server.errors import error_responses
from sfumato.server.submit import as_data_uri, open_client_image


class InterrogateRequest(_Loose):
    image: str = Field(min_length=1, description="The picture, base64 or a data: URI.")
    model: Literal["clip", "deepdanbooru"] = Field(
        default="clip",
        description="clip: a prompt from CLIP; deepdanbooru: booru tags from the configured tagger.",
    )


class InterrogateResponse(BaseModel):
    caption: str


def build_router() -> APIRouter:
    router = APIRouter(prefix="/sdapi/v1", tags=["A1111"])

    @router.post(
        "/interrogate", response_model=InterrogateResponse, responses=error_responses(404, 422, a1111=True)
    )
    async def interrogate(request: Request, body: InterrogateRequest) -> InterrogateResponse:
        """A prompt for the picture (CLIP ranking of phrase lists), or booru-style tags (a WD14 tagger you have)."""
        from sfumato.analysis.interrogate import interrogate_with_settings, tags_with_settings

        ctx: ServerContext = request.app.state.context
        picture = open_client_image(as_data_uri(body.image), "image")
        if body.model == "deepdanbooru":
            tags = await asyncio.to_thread(tags_with_settings, picture, ctx.settings)
            return InterrogateResponse(caption=", ".join(t.name for t in tags if t.category != "rating"))
        result = await asyncio.to_thread(interrogate_with_settings, picture, ctx.settings)
        return InterrogateResponse(caption=result.prompt)

    return router
