"""What to teach a model: a textual inversion (embedding) or a LoRA from a folder of pictures.

Like the generation request, one typed, serialisable request that the CLI, the API and the job
queue all build; `jobs/training.py` runs it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

TrainingKind = Literal["embedding", "lora"]
MixedPrecision = Literal["no", "bf16", "fp16"]

# A prompt word and a file name at once: what A1111 accepts as an embedding or LoRA name.
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_\-]{0,63}$"

DEFAULT_LEARNING_RATE: dict[str, float] = {"embedding": 5e-3, "lora": 1e-4}


class TrainingRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: TrainingKind = Field(description="'embedding' (textual inversion) or 'lora'.")
    images: str = Field(description="A folder of training pictures (with optional .txt captions beside).")
    name: str = Field(
        pattern=NAME_PATTERN,
        description="The file name and the word prompts use: 'a <name> circle' or '<lora:name:1>'.",
    )
    init_text: str = Field(
        default="*", max_length=200, description="Embedding: words whose vectors the new word starts from."
    )
    trigger: str | None = Field(
        default=None,
        max_length=64,
        description="LoRA: a word put into every caption (default: none). An embedding's trigger is its name.",
    )
    model: str | None = Field(
        default=None, description="The model to train on (default: the settings' default)."
    )
    steps: int = Field(default=500, ge=1, le=100_000)
    learning_rate: float | None = Field(
        default=None, gt=0, le=1.0, description="Default: 5e-3 for an embedding, 1e-4 for a LoRA."
    )
    batch: int = Field(default=4, ge=1, le=64, description="Pictures per step.")
    seed: int = Field(default=0, ge=0, lt=2**32)
    vectors: int = Field(default=1, ge=1, le=75, description="Embedding: vectors per token.")
    rank: int = Field(default=4, ge=1, le=256, description="LoRA: the adapters' rank.")
    alpha: float | None = Field(default=None, gt=0, description="LoRA: alpha (default: equal to rank).")
    size: int | None = Field(
        default=None,
        ge=32,
        le=2048,
        description="Training picture side in pixels (default: the model's native size).",
    )
    flip: bool = Field(default=False, description="Add a mirrored copy of each picture.")
    sample_every: int = Field(default=0, ge=0, description="Steps between sample pictures; 0 = none.")
    sample_prompt: str | None = Field(
        default=None, max_length=500, description="Prompt for samples (default: the first caption)."
    )
    checkpoint_every: int = Field(default=50, ge=1, description="Steps between checkpoints (for resuming).")
    overwrite: bool = Field(default=False, description="Replace an existing embedding/LoRA of this name.")
    gradient_checkpointing: bool = Field(
        default=False, description="Recompute activations in the backward pass: less memory, slower."
    )
    mixed_precision: MixedPrecision = Field(
        default="no",
        description="Run the frozen model in bf16/fp16 while training (the learned weights stay fp32).",
    )
    cache_latents: bool = Field(
        default=True, description="Encode the pictures once; the VAE is then not needed while training."
    )
    memory_limit_mb: int | None = Field(
        default=None,
        ge=1,
        description="Refuse when the estimate exceeds this (default: the device's free memory).",
    )

    @model_validator(mode="after")
    def _fits_kind(self) -> TrainingRequest:
        if self.kind == "embedding" and self.trigger is not None:
            raise ValueError("an embedding's trigger word is its name; leave trigger out")
        return self

    @property
    def lr(self) -> float:
        return self.learning_rate if self.learning_rate is not None else DEFAULT_LEARNING_RATE[self.kind]

    @property
    def word(self) -> str | None:
        """The word every caption must hold: the embedding's name, or the LoRA's trigger."""
        return self.name if self.kind == "embedding" else self.trigger


@dataclass(frozen=True)
class TrainingOutcome:
    """What a training run made."""

    path: Path  # the embedding or LoRA file, in the library's folder
    steps: int
    last_loss: float
    resumed_from: int  # the step a checkpoint resumed at; 0 for a fresh start
    samples: tuple[Path, ...] = ()
    notes: tuple[str, ...] = ()


def parse_training_request(data: dict[str, Any]) -> TrainingRequest:
    """Validate plain data into a training request, raising InvalidRequest with a readable message."""
    from pydantic import ValidationError

    from sfumato.core.errors import InvalidRequest
    from sfumato.core.request import describe_validation_error

    try:
        return TrainingRequest.model_validate(data)
    except ValidationError as error:
        raise InvalidRequest(
            f"Invalid training request: {describe_validation_error(error)}.",
            "A name is letters, digits, '-' and '_' (it is the prompt word and the file name).",
        ) from None
