"""Post-processing steps a request runs on each finished picture, in order: upscale, restore faces,
re-render details. They are part of the request, so a picture's recipe reproduces the final picture."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

# Upscalers that need no model file (A1111 lists them first in its upscaler list).
BUILTIN_UPSCALERS: tuple[str, ...] = ("Lanczos", "Nearest")


class UpscaleStep(BaseModel):
    """Enlarge with an upscaler model (ESRGAN, RealESRGAN, SwinIR, … by name) or Lanczos / Nearest."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["upscale"] = "upscale"
    upscaler: str = Field(default="Lanczos", description="An upscaler model's name, or Lanczos / Nearest.")
    scale: float = Field(
        default=2.0, gt=0.0, le=8.0, description="Enlarge by; unused when width/height are set."
    )
    width: int = Field(default=0, ge=0, le=8192, description="Target width; 0 = by scale.")
    height: int = Field(default=0, ge=0, le=8192, description="Target height; 0 = by scale.")


class RestoreFacesStep(BaseModel):
    """Find faces, restore each with a face-restorer model, paste back with a feathered mask."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["restore_faces"] = "restore_faces"
    model: str = Field(default="GFPGAN", description="GFPGAN, RestoreFormer or CodeFormer, or a file's name.")
    visibility: float = Field(
        default=1.0, ge=0.0, le=1.0, description="Blend of the restored face over the original."
    )
    codeformer_weight: float = Field(
        default=0.5, ge=0.0, le=1.0, description="CodeFormer only: 0 = most restoration, 1 = most fidelity."
    )


class DetailStep(BaseModel):
    """The detailer: detect regions (faces, hands, any class a detector offers), re-render each crop
    at the model's native size with its own prompt, paste it back feathered."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["detail"] = "detail"
    target: str = Field(default="face", description="What to detect: face, hand, or a detector file's class.")
    prompt: str = Field(default="", description="The crops' prompt; empty = the picture's own.")
    negative_prompt: str = ""
    denoising_strength: float = Field(default=0.4, ge=0.0, le=1.0)
    padding: int = Field(default=32, ge=0, le=1024, description="Context pixels around each box.")
    max_count: int = Field(default=0, ge=0, le=100, description="Most regions re-rendered; 0 = all.")
    min_confidence: float = Field(default=0.3, ge=0.0, le=1.0)
    save_crops: bool = Field(default=False, description="Also save each re-rendered crop on its own.")
    detector: str = Field(
        default="auto",
        description="auto (the demo world's judge on the demo model, else Haar faces), haar, demo, "
        "or a YOLO detector file in ONNX format.",
    )
    order: Literal["largest", "confidence", "left-to-right", "top-to-bottom"] = Field(
        default="largest", description="Which regions come first (and survive max_count)."
    )
    feather: int = Field(default=8, ge=0, le=256, description="Width of the blend around each region.")
    seed: int = Field(
        default=-1, ge=-1, lt=2**32, description="Region i renders with seed + i; -1 = the picture's seed."
    )
    steps: int = Field(default=0, ge=0, le=150, description="Denoising steps; 0 = the picture's.")


PostprocessStep = Annotated[UpscaleStep | RestoreFacesStep | DetailStep, Field(discriminator="kind")]


class AnatomyGate(BaseModel):
    """Optional check after each render: a picture scored below ``threshold`` is set aside and
    rendered again with a new seed, up to ``budget`` more times; the best one is kept."""

    model_config = ConfigDict(extra="forbid")

    threshold: float = Field(default=0.5, ge=0.0, le=1.0, description="Lowest plausibility accepted.")
    budget: int = Field(default=3, ge=1, le=20, description="Most re-renders of one picture.")
    keep_rejected: str | None = Field(
        default=None,
        description="A local folder (under the outputs folder) to keep the set-aside pictures in; "
        "None = discard them. Nothing is ever sent anywhere.",
    )

    @field_validator("keep_rejected")
    @classmethod
    def _inside_outputs(cls, value: str | None) -> str | None:
        if value is None:
            return value
        parts = value.replace("\\", "/").split("/")
        if not value.strip() or value.startswith(("/", "\\")) or ":" in value or ".." in parts:
            raise ValueError(
                f"{value!r} is not a folder name inside the outputs folder; use a name like 'rejected'"
            )
        return value
