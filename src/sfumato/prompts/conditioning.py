"""Text conditioning handed to the engine: per step, the AND-parts of a prompt with weights.

This is the contract between ``prompts`` and ``engine``. The engine asks ``Conditioning.at(step)``
at every step; scheduled and alternating prompts return different embeddings per step.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch


@dataclass(frozen=True)
class TextEmbedding:
    hidden: torch.Tensor  # [1, tokens, dim]; tokens is a multiple of 77 (one block per 75-token chunk)
    pooled: torch.Tensor | None = None  # SDXL's (and its refiner's) pooled text [1, 1280]; None for SD1/SD2
    notes: tuple[str, ...] = ()  # what the user should know about how this text was encoded


@dataclass(frozen=True)
class WeightedPart:
    """One ``AND`` sub-prompt and its weight (composable diffusion); a plain prompt has one, weight 1."""

    embedding: TextEmbedding
    weight: float = 1.0


@dataclass(frozen=True)
class ScheduledParts:
    """The parts in force from ``start`` (0-based step) up to, not including, ``end``."""

    start: int
    end: int
    parts: tuple[WeightedPart, ...]


@dataclass(frozen=True)
class Conditioning:
    """A prompt encoded for every step of a run of ``steps`` steps."""

    schedule: tuple[ScheduledParts, ...]
    notes: tuple[str, ...] = ()  # e.g. an embedding skipped for the wrong architecture
    # The empty prompt encoded as one 77-token chunk: pads a shorter conditioning to a longer one's
    # length (as A1111 does) so cond and uncond can share a batch. None when not known.
    padding: TextEmbedding | None = None
    # (name, A1111 "TI hashes" hash) of each textual-inversion embedding the prompt used.
    embedding_hashes: tuple[tuple[str, str], ...] = ()

    def at(self, step: int) -> tuple[WeightedPart, ...]:
        for entry in self.schedule:
            if entry.start <= step < entry.end:
                return entry.parts
        return self.schedule[-1].parts

    @property
    def is_static(self) -> bool:
        return len(self.schedule) == 1

    @property
    def max_tokens(self) -> int:
        return max(part.embedding.hidden.shape[1] for entry in self.schedule for part in entry.parts)

    def padded_to(self, tokens: int) -> Conditioning:
        """Every embedding made ``tokens`` long by appending the empty-prompt chunk (A1111's padding)."""
        import torch

        if self.padding is None:
            raise ValueError("This conditioning has no padding chunk; encode it with prompts.encoder.")
        pad = self.padding.hidden

        def pad_part(part: WeightedPart) -> WeightedPart:
            hidden = part.embedding.hidden
            missing = tokens - hidden.shape[1]
            if missing <= 0:
                return part
            repeats = -(-missing // pad.shape[1])
            extra = pad.to(hidden).repeat(1, repeats, 1)[:, :missing]
            return WeightedPart(
                TextEmbedding(torch.cat([hidden, extra], dim=1), part.embedding.pooled), part.weight
            )

        schedule = tuple(
            ScheduledParts(entry.start, entry.end, tuple(pad_part(part) for part in entry.parts))
            for entry in self.schedule
        )
        return Conditioning(schedule, self.notes, self.padding, self.embedding_hashes)
