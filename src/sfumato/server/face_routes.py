"""POST /api/restore-faces: restore the faces of a picture a client sends (no render, no job)."""

from __future__ import annotations

import base64
import io

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field

from sfumato.core.postprocess import RestoreFacesStep
from sfumato.server.context import ServerContext
from sfumato.server.errors import error_responses
from sfumato.server.submit import as_data_uri, open_client_image


class RestoreFacesBody(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")

    image: str = Field(description="The picture: a data: URI or raw base64 PNG/JPEG/WebP bytes.")
    model: str = Field("GFPGAN", description="GFPGAN, RestoreFormer, CodeFormer or a restorer file's name.")
    visibility: float = Field(1.0, ge=0.0, le=1.0)
    codeformer_weight: float = Field(0.5, ge=0.0, le=1.0)


class RestoreFacesResult(BaseModel):
    image: str = Field(description="Base64 PNG of the picture with its faces restored.")
    faces: list[list[int]] = Field(description="Each face found: left, top, right, bottom.")
    notes: list[str] = Field(description="What happened (e.g. no face was found).")


def build_router() -> APIRouter:
    router = APIRouter(prefix="/api", tags=["faces"])

    @router.post(
        "/restore-faces", response_model=RestoreFacesResult, responses=error_responses(404, 413, 422)
    )
    def restore_faces_route(request: Request, body: RestoreFacesBody) -> RestoreFacesResult:
        from sfumato.postprocess.faces import restore_faces

        ctx: ServerContext = request.app.state.context
        picture = open_client_image(as_data_uri(body.image), "image")
        step = RestoreFacesStep(
            model=body.model, visibility=body.visibility, codeformer_weight=body.codeformer_weight
        )
        restored = restore_faces(picture, step, ctx.settings)
        buffer = io.BytesIO()
        restored.picture.save(buffer, format="PNG")
        return RestoreFacesResult(
            image=base64.b64encode(buffer.getvalue()).decode(),
            faces=[list(box) for box in restored.faces],
            notes=restored.notes,
        )

    return router
