"""Carry a textual-inversion embedding to another model: learn, on the new model, a word that makes
what the embedding made on the old one.

A small set of pictures is drawn with the old model and the embedding (prompts that use its name),
then a textual inversion is trained on the new model from them with the project's trainer. When the
two models' text vectors are as wide, training starts from the embedding's own vectors (models that
share a text encoder need little or no training). The result is an A1111 embedding beside the
original, named ``<name>-<new model>``. Interrupted, it resumes: the pictures drawn are kept in
``<name>-<new model>.migration/`` and the training continues from its last checkpoint.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from sfumato.core.errors import InvalidRequest

if TYPE_CHECKING:
    from sfumato.models.components import Components
    from sfumato.training.textual_inversion import TrainedEmbedding

DEFAULT_PROMPTS = ("{name}", "a picture of {name}", "{name}, close up", "{name} in the centre")

Progress = Callable[[str, int, int], None]
"""(stage: "pictures" or "training", done, total)."""


@dataclass(frozen=True)
class MigrationConfig:
    prompts: tuple[str, ...] = DEFAULT_PROMPTS  # each with {name} where the embedding's word goes
    pictures: int = 24
    picture_steps: int = 20
    cfg_scale: float = 7.0
    steps: int = 200  # training steps on the new model
    lr: float = 0.02
    batch: int = 8
    seed: int = 0


def migrated_name(name: str, target: Components) -> str:
    model = re.sub(r"[^A-Za-z0-9_-]+", "-", target.info.name).strip("-") or "model"
    return f"{name}-{model}"


def migrate_embedding(
    source: Components,
    target: Components,
    embedding: Path,
    config: MigrationConfig = MigrationConfig(),
    *,
    on_progress: Progress | None = None,
) -> TrainedEmbedding:
    from sfumato.models.embeddings import load_embedding
    from sfumato.training.textual_inversion import TextualInversionConfig, train_textual_inversion

    if not config.prompts or any("{name}" not in p for p in config.prompts):
        raise InvalidRequest(
            "Every migration prompt must say where the embedding's word goes.",
            'Write {name} in each prompt, e.g. "a {name} circle on a white background".',
        )
    original = load_embedding(embedding)
    new_name = migrated_name(original.name, target)
    folder = embedding.parent
    work = folder / f"{new_name}.migration"
    examples = _pictures(source, embedding, original.name, new_name, config, work, on_progress)
    start = _start(original.vectors, target)
    ti = TextualInversionConfig(
        new_name,
        vectors=original.tokens,
        steps=config.steps,
        lr=config.lr,
        batch=config.batch,
        seed=config.seed,
        checkpoint_every=max(1, config.steps // 4),
    )
    return train_textual_inversion(target, examples, ti, folder, start=start)


def _start(vectors: dict, target: Components):
    """The embedding's own vectors when the new model's are as wide, else None (start from words)."""
    single = vectors.get("clip", vectors.get("clip_l"))
    width = int(target.text_encoder.config.hidden_size)  # pyright: ignore[reportAttributeAccessIssue]
    return single if single is not None and single.shape[-1] == width else None


def _pictures(
    source: Components,
    embedding: Path,
    name: str,
    new_name: str,
    config: MigrationConfig,
    work: Path,
    on_progress: Progress | None,
) -> Sequence:
    """The old model's pictures with the embedding; those already drawn (a resumed run) are kept."""
    from PIL import Image

    from sfumato.core.request import GenerationRequest
    from sfumato.engine.generate import generate
    from sfumato.training.diffusion import Example

    work.mkdir(parents=True, exist_ok=True)

    def resolve(kind: str, word: str) -> Path | None:
        return embedding if kind == "embedding" and word in (name, name.lower()) else None

    examples = []
    for index in range(config.pictures):
        template = config.prompts[index % len(config.prompts)]
        file = work / f"{index:03d}.png"
        if not file.is_file():
            request = GenerationRequest(
                prompt=template.format(name=name),
                seed=config.seed + index,
                steps=config.picture_steps,
                cfg_scale=config.cfg_scale,
            )
            made = generate(source, request, resolve=resolve).images[0]
            if "TI hashes" not in made.extra:
                raise InvalidRequest(
                    f"The prompt {request.prompt!r} did not use the embedding on {source.info.name}.",
                    "Check that the embedding fits the model it was made for (sfumato models list).",
                )
            picture = made.image
            temp = file.with_suffix(".tmp")
            picture.save(temp, format="PNG")
            temp.replace(file)
        with Image.open(file) as picture:
            examples.append(Example(picture.convert("RGB"), template.format(name=new_name)))
        if on_progress is not None:
            on_progress("pictures", index + 1, config.pictures)
    (work / "captions.json").write_text(json.dumps([e.caption for e in examples], indent=1), encoding="utf-8")
    return examples
