"""POST /api/edit: change a picture by prompt through its recovered noise; the rest is kept."""

from __future__ import annotations

import asyncio
import base64

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from sfumato.core.edit import EditRequest
from sfumato.core.errors import InvalidRequest
from sfumato.server.catalog import find
from sfumato.server.context import ServerContext
from sfumato.server.errors import error_responses
from sfumato.server.submit import open_client_image


class EditResult(BaseModel):
    image: str = Field(description="Base64 PNG of the edited picture.")
    mask: str = Field(description="Base64 PNG of where it was repainted (white).")
    path: str = Field(description="The saved picture, relative to the outputs folder.")
    notes: list[str] = Field(default_factory=list)


def _png(picture: object) -> str:
    import io

    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")  # pyright: ignore[reportAttributeAccessIssue]
    return base64.b64encode(buffer.getvalue()).decode()


def build_router() -> APIRouter:
    router = APIRouter(prefix="/api", tags=["Sfumato"])

    @router.post("/edit", response_model=EditResult, responses=error_responses(404, 413, 422))
    async def edit(request: Request, body: EditRequest) -> EditResult:
        from sfumato.jobs.edit import run_edit

        ctx: ServerContext = request.app.state.context
        if not body.picture.startswith("data:"):
            raise InvalidRequest(
                "The picture must be a data: URI with base64 image bytes.",
                "File paths are not accepted over the network.",
            )
        await asyncio.to_thread(open_client_image, body.picture, "picture")
        model = find(ctx.catalog, body.model).name if body.model is not None else None
        if model is None and ctx.selected_model is not None:
            model = ctx.selected_model.name
        checked = body.model_copy(update={"model": model})
        output = await asyncio.to_thread(run_edit, ctx.settings, checked)
        return EditResult(
            image=_png(output.picture),
            mask=_png(output.mask),
            path=str(output.file.resolve().relative_to(ctx.settings.outputs.resolve())),
            notes=output.notes,
        )

    return router
