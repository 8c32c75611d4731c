"""What a generation returns: the pictures and, for each, the recipe that reproduces it."""

from __future__ import annotations

from dataclasses import dataclass, field

from PIL import Image

from sfumato.core.request import GenerationRequest


@dataclass(frozen=True)
class ModelInfo:
    """The model a picture was made with, as it goes into the picture's metadata."""

    name: str
    hash: str | None = None  # AutoV2: first 10 hex of the file's SHA-256
    vae_name: str | None = None
    vae_hash: str | None = None
    architecture: str = "sd1"


@dataclass(frozen=True)
class GeneratedImage:
    """One picture and the request that makes exactly it alone.

    ``recipe`` has the concrete seed of this picture (batch_size = batch_count = 1 and the
    resolved width, height and seeds), so running it again reproduces these pixels.
    """

    image: Image.Image
    recipe: GenerationRequest
    model: ModelInfo
    index: int = 0  # position in the whole job
    extra: dict[str, str] = field(default_factory=dict)  # extra infotext params (e.g. Lora hashes)


@dataclass
class GenerationResult:
    images: list[GeneratedImage]
    notes: list[str] = field(default_factory=list)  # things the user should know (fp32 VAE retry…)
    timings: dict[str, float] = field(default_factory=dict)  # seconds per phase (prompt encode, denoise…)
