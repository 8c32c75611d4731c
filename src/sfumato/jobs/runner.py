"""Run one request end to end: load the model, generate, save every picture to the archive.

The CLI calls this directly; the job worker calls it for each job it claims.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from sfumato.core.events import CancelToken, ProgressCallback
from sfumato.core.images import ImageFormat
from sfumato.core.request import GenerationRequest
from sfumato.core.settings import Settings

if TYPE_CHECKING:
    from sfumato.archive.index import Record
    from sfumato.models.components import Components


def run_request(
    settings: Settings,
    request: GenerationRequest,
    *,
    on_progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
    components: Components | None = None,
    image_format: ImageFormat = "png",
    on_saved: Callable[[Record], None] | None = None,
) -> tuple[list[Record], list[str]]:
    """Returns the archive records of the saved pictures and notes for the user."""
    from sfumato.archive.index import Archive
    from sfumato.engine import generate
    from sfumato.models.loading import load_model

    if components is None:
        components = load_model(settings, request.model, vae=request.vae)
    result = generate(
        components, request, on_progress=on_progress, cancel=cancel, preview_every=settings.preview_every
    )
    archive = Archive(settings)
    records = []
    for item in result.images:
        record = archive.save(item, format=image_format)
        records.append(record)
        if on_saved is not None:
            on_saved(record)
    return records, [*components.notes, *result.notes]
