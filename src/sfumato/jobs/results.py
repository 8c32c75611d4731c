"""A job's results as they travel from a worker on another machine (or a Ray actor) to the server,
and how the server saves them: into its own archive, exactly as a local job's pictures are saved.

A worker sends each picture's pixels as a plain PNG with its recipe; the server checks the bytes (size,
PNG, dimensions) and writes the file itself, metadata included, with the archive's naming.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import io
import warnings
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

from PIL import Image
from pydantic import BaseModel, Field

from sfumato.core.errors import InvalidRequest, SfumatoError
from sfumato.core.images import MAX_PIXELS
from sfumato.core.request import GenerationRequest
from sfumato.core.result import GeneratedImage, ModelInfo
from sfumato.core.settings import Settings
from sfumato.jobs.model import SavedImage

if TYPE_CHECKING:
    from sfumato.archive.index import Record

MAX_PICTURE_BYTES = 48 * 1024 * 1024
MAX_PICTURE_SIDE = 8192
MAX_PICTURES = 256
MAX_TRAINED_BYTES = 46 * 1024 * 1024  # base64 of it fits the server's 64 MiB body limit


class ResultModel(BaseModel):
    """The model a picture was made with (``core.result.ModelInfo`` on the wire)."""

    name: str = Field(max_length=1024)
    hash: str | None = Field(None, max_length=128)
    vae_name: str | None = Field(None, max_length=1024)
    vae_hash: str | None = Field(None, max_length=128)
    architecture: str = Field("sd1", max_length=64)


class PictureResult(BaseModel):
    png: str = Field(description="The picture as a PNG file, base64.")
    recipe: GenerationRequest = Field(description="The request that reproduces this picture alone.")
    model: ResultModel
    index: int = Field(0, ge=0, le=1_000_000, description="Its place in the whole job.")
    extra: dict[str, str] = Field(default_factory=dict, description="Extra infotext fields (LoRA hashes…).")


class TrainedFile(BaseModel):
    """What a training job wrote on the worker; the server names and files it from the job itself."""

    safetensors: str = Field(
        max_length=MAX_TRAINED_BYTES * 4 // 3 + 4, description="The embedding or LoRA file, base64."
    )


class JobResults(BaseModel):
    pictures: list[PictureResult] = Field(default_factory=list, max_length=MAX_PICTURES)
    notes: list[Annotated[str, Field(max_length=2000)]] = Field(default_factory=list, max_length=64)
    trained: TrainedFile | None = Field(default=None, description="A training job's file.")


def trained_file(path: Path) -> TrainedFile:
    size = path.stat().st_size
    if size > MAX_TRAINED_BYTES:
        raise InvalidRequest(
            f"The trained file is {size / 1024**2:.0f} MiB; a worker uploads at most "
            f"{MAX_TRAINED_BYTES // 1024**2} MiB.",
            "Train a smaller LoRA (a lower --rank), or train on the server itself.",
        )
    return TrainedFile(safetensors=base64.b64encode(path.read_bytes()).decode())


def trained_bytes(trained: TrainedFile) -> bytes:
    try:
        return base64.b64decode(trained.safetensors, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidRequest(
            "The trained file is not valid base64.", "Send the safetensors bytes base64-encoded."
        ) from None


def picture_result(item: GeneratedImage) -> PictureResult:
    buffer = io.BytesIO()
    item.image.save(buffer, format="PNG")
    return PictureResult(
        png=base64.b64encode(buffer.getvalue()).decode(),
        recipe=item.recipe,
        model=ResultModel(**asdict(item.model)),
        index=item.index,
        extra=dict(item.extra),
    )


def _png(picture: PictureResult, number: int) -> Image.Image:
    what = f"Picture {number} of the results"
    try:
        data = base64.b64decode(picture.png, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidRequest(f"{what} is not valid base64.", "Send the PNG bytes base64-encoded.") from None
    if len(data) > MAX_PICTURE_BYTES:
        raise InvalidRequest(
            f"{what} is {len(data) // 1024 // 1024} MiB; the limit is {MAX_PICTURE_BYTES // 1024 // 1024} MiB.",
            "Make smaller pictures.",
        )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
        with image:
            if image.format != "PNG":
                raise InvalidRequest(f"{what} is not a PNG file.", "Workers send pictures as PNG.")
            width, height = image.size
            if max(width, height) > MAX_PICTURE_SIDE or width * height > MAX_PIXELS:
                raise InvalidRequest(
                    f"{what} is too large ({width}x{height}); the limit is {MAX_PICTURE_SIDE} pixels a side.",
                    "Make smaller pictures.",
                )
            image.load()
            return image.copy()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise InvalidRequest(f"{what} is too large to open.", "Make smaller pictures.") from None
    except (OSError, SyntaxError, ValueError) as error:
        raise InvalidRequest(f"{what} is not a readable PNG: {error}.", "Send complete PNG files.") from None


def save_results(settings: Settings, results: JobResults) -> list[SavedImage]:
    """Check every picture first, then save them all: a bad upload leaves nothing half-written."""
    from sfumato.archive.index import Archive

    items = [
        GeneratedImage(
            image=_png(picture, number),
            recipe=picture.recipe,
            model=ModelInfo(**picture.model.model_dump()),
            index=picture.index,
            extra=picture.extra,
        )
        for number, picture in enumerate(results.pictures, 1)
    ]
    archive = Archive(settings)
    saved = []
    for item in items:
        record = archive.save(item)
        if settings.embed_on_save:
            _remember(settings, record)
        saved.append(
            SavedImage(
                path=record.path,
                infotext=record.parameters,
                recipe=item.recipe,
                model_name=item.model.name,
                model_hash=item.model.hash,
            )
        )
    return saved


def _remember(settings: Settings, record: Record) -> None:
    from sfumato.analysis.archive_search import remember_picture

    with contextlib.suppress(SfumatoError):  # concept search embeds lazily what was not embedded on save
        remember_picture(settings, record)
