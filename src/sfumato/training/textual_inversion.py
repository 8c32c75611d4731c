"""Textual inversion: learn the vectors of a new word from captioned pictures, model frozen.

The word's vectors start from the token vectors of ``init_text`` and are trained with the model's
own denoising loss on captions that use the word; the result is saved as an A1111 embedding
(``string_to_param.*`` safetensors) that is used in prompts by its file name.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from sfumato.core.errors import InvalidRequest
from sfumato.training.diffusion import (
    DenoisingLoss,
    Example,
    PictureLatents,
    Teacher,
    caption_ids,
    check_trainable,
    frozen,
    memory_options,
    save_atomically,
    text_conditioning,
    vectors_in_place,
)
from sfumato.training.trainer import TrainConfig, Trainer, TrainResult

if TYPE_CHECKING:
    import torch
    from torch import nn

    from sfumato.models.components import Components


@dataclass(frozen=True)
class TextualInversionConfig:
    name: str  # the word prompts use; also the file name
    init_text: str = "*"  # words whose token vectors the embedding starts from
    vectors: int = 1  # vectors per token (A1111's "number of vectors per token")
    steps: int = 500
    lr: float = 5e-3  # A1111's default
    batch: int = 4
    warmup_steps: int = 0
    seed: int = 0
    checkpoint_every: int = 100
    gradient_checkpointing: bool = False
    mixed_precision: str = "no"  # "bf16" or "fp16": autocast for the frozen model's passes
    cache_latents: bool = True
    min_lr_ratio: float = 1.0  # 1 = constant, as A1111 trains embeddings; less = cosine decay to it


@dataclass(frozen=True)
class TrainedEmbedding:
    path: Path
    vectors: torch.Tensor  # [vectors, width]
    result: TrainResult


def _vectors_module(start: torch.Tensor) -> nn.Module:
    from torch import nn

    class Vectors(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.vectors = nn.Parameter(start.detach().clone().float())

        def forward(self) -> torch.Tensor:
            return self.vectors

    return Vectors()


def initial_vectors(components: Components, text: str, count: int) -> torch.Tensor:
    """``count`` vectors from the token vectors of ``text``, repeated (or cut) to fit, as A1111 does."""
    import torch

    encoder: Any = components.text_encoder
    table = getattr(encoder, "text_model", encoder).embeddings.token_embedding.weight
    ids = components.tokenizer(text, add_special_tokens=False)["input_ids"] or [
        components.tokenizer.eos_token_id
    ]
    vectors = table[torch.tensor(ids, device=table.device)].detach().float().cpu()
    return vectors.repeat((count + len(ids) - 1) // len(ids), 1)[:count]


def train_textual_inversion(
    components: Components,
    examples: Sequence[Example],
    config: TextualInversionConfig,
    folder: Path,
    start: torch.Tensor | None = None,
    *,
    run_folder: Path | None = None,
    on_step: Callable[[int, float, torch.Tensor], None] | None = None,
    teacher: Callable[[Sequence[int]], Teacher] | None = None,
) -> TrainedEmbedding:
    """Train an embedding for ``config.name`` and save it as ``folder/<name>.safetensors``.

    Each example's caption must contain the name. ``start`` replaces the vectors of ``init_text``
    (``config.vectors`` of them, as wide as the model's). ``teacher``, given the examples of a
    step, gives the prediction to match for them instead of the true noise. Checkpoints (for resuming) go to
    ``folder/<name>.training/``; the model is left exactly as it was.
    """

    check_trainable(components, "Textual inversion")
    _check_examples(examples, config.name)
    latents = PictureLatents(components, [e.image for e in examples], config.cache_latents)
    if start is None:
        start = initial_vectors(components, config.init_text, config.vectors)
    module = _vectors_module(start)
    loss = DenoisingLoss(components)

    def loss_fn(step: int) -> tuple[torch.Tensor, dict[str, float]]:
        rng = np.random.default_rng((config.seed, step))
        picked = rng.choice(len(examples), size=min(config.batch, len(examples)), replace=False)
        ids, offsets = caption_ids(
            components, [examples[i].caption for i in picked], config.name, config.vectors
        )
        with vectors_in_place(components.text_encoder, offsets, module()):
            text = text_conditioning(components, ids)
        matched = teacher([int(i) for i in picked]) if teacher is not None else None
        return loss(latents[picked], text, seed=int(rng.integers(2**31)), teacher=matched), {}

    train_config = TrainConfig(
        steps=config.steps,
        lr=config.lr,
        warmup_steps=max(1, config.warmup_steps),
        min_lr_ratio=config.min_lr_ratio,
        grad_clip=None,
        checkpoint_every=config.checkpoint_every,
        log_every=max(1, config.steps // 20),
        seed=config.seed,
    )
    step_hook = None if on_step is None else (lambda step, value: on_step(step, value, module().detach()))
    with (
        frozen(components),
        memory_options(components, config.gradient_checkpointing, config.mixed_precision),
    ):
        trainer = Trainer(
            module,
            loss_fn,
            train_config,
            run_folder or folder / f"{config.name}.training",
            name=f"embedding {config.name}",
            on_step=step_hook,
        )
        trainer.resume()
        result = trainer.fit()
    vectors = module().detach().cpu()
    path = save_embedding(
        folder / f"{config.name}.safetensors", config.name, vectors, components, result.step
    )
    return TrainedEmbedding(path, vectors, result)


def save_embedding(path: Path, name: str, vectors: torch.Tensor, components: Components, step: int) -> Path:
    """Write an A1111-layout embedding (``string_to_param.*``), with what it was trained on."""
    metadata = {
        "name": name,
        "step": str(step),
        "sd_checkpoint": components.info.hash or "",
        "sd_checkpoint_name": components.info.name,
        "architecture": components.info.architecture,
    }
    return save_atomically({"string_to_param.*": vectors.contiguous().float()}, path, metadata)


def _check_examples(examples: Sequence[Example], name: str) -> None:
    if not examples:
        raise InvalidRequest(
            "Textual inversion needs training pictures; none were given.", "Add captioned pictures."
        )
    from sfumato.prompts.networks import candidate_words

    missing = [e.caption for e in examples if name not in candidate_words([e.caption])]
    if missing:
        raise InvalidRequest(
            f"{len(missing)} of {len(examples)} captions do not use the word '{name}' (e.g. '{missing[0]}').",
            f"Write '{name}' in every caption where the concept appears.",
        )
