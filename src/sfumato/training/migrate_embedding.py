"""Carry a textual-inversion embedding to another model: learn, on the new model, a word that makes
what the embedding made on the old one.

A small set of pictures is drawn with the old model and the embedding (prompts that use its name); a
``keep`` test (e.g. a judge of the concept) can drop those where the embedding missed. Then a textual
inversion is trained on the new model with the project's trainer. When the two models share a latent
space (SD1 and SD2 do), each step's target is the old model's own prediction with the embedding for
the same noisy latents, not the noise: a far steadier target than a few pictures give, which carries
what the embedding does at every noise level. Training starts from the embedding's own vectors when
the models share a text encoder (their token tables agree), else from the new model's vectors of
``init_text``, since the old vectors mean something else there even when as wide. The result is an
A1111 embedding beside the original, named ``<name>-<new model>``. Interrupted, it resumes: the
pictures drawn are kept in ``<name>-<new model>.migration/`` and the training continues from its
last checkpoint.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sfumato.core.errors import InvalidRequest

if TYPE_CHECKING:
    import torch
    from PIL import Image

    from sfumato.models.components import Components
    from sfumato.training.diffusion import Teacher
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
    init_text: str = "*"  # where training starts on a model with another text encoder
    keep: Callable[[Image.Image], bool] | None = None  # which drawn pictures to learn from
    attempts: int = 0  # pictures drawn at most to find `pictures` kept ones; 0 = 4x pictures
    # Learn to match the old model's own prediction with the embedding on the drawn pictures' noisy
    # latents (when the two share a latent space), a far steadier target than the noise alone.
    match_old_model: bool = True

    def __post_init__(self) -> None:
        if not self.prompts or any("{name}" not in p for p in self.prompts):
            raise InvalidRequest(
                "Every migration prompt must say where the embedding's word goes.",
                'Write {name} in each prompt, e.g. "a {name} circle on a white background".',
            )


SHARED_ENCODER_SIMILARITY = 0.9  # mean cosine similarity of token vectors above which encoders agree


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
    from sfumato.training.diffusion import Example
    from sfumato.training.textual_inversion import TextualInversionConfig, train_textual_inversion

    original = load_embedding(embedding)
    new_name = migrated_name(original.name, target)
    folder = embedding.parent
    work = folder / f"{new_name}.migration"
    drawn = _pictures(source, embedding, original.name, config, work, on_progress)
    examples = [Example(picture, template.format(name=new_name)) for picture, template in drawn]
    start = _start(original.vectors, source, target)
    teacher = None
    if config.match_old_model and same_latents(source, target):
        old_captions = [template.format(name=original.name) for _, template in drawn]
        teacher = _teacher(source, target, original.name, original.vectors, old_captions)
    ti = TextualInversionConfig(
        new_name,
        init_text=config.init_text,
        vectors=original.tokens,
        steps=config.steps,
        lr=config.lr,
        batch=config.batch,
        seed=config.seed,
        checkpoint_every=max(1, config.steps // 4),
        min_lr_ratio=0.05,  # matching a teacher: settle on the match rather than hover around it
    )
    return train_textual_inversion(target, examples, ti, folder, start=start, teacher=teacher)


def _start(vectors: dict, source: Components, target: Components) -> torch.Tensor | None:
    """The embedding's own vectors when the new model shares the old one's text encoder, else None
    (start from ``init_text``)."""
    single = vectors.get("clip", vectors.get("clip_l"))
    return single if single is not None and shares_text_encoder(source, target) else None


def shares_text_encoder(source: Components, target: Components) -> bool:
    """Whether the two models' token vectors agree (same width, nearly the same direction each)."""
    import torch

    def table(components: Components) -> torch.Tensor:
        encoder: Any = components.text_encoder
        weight = getattr(encoder, "text_model", encoder).embeddings.token_embedding.weight
        return weight.detach().float().cpu()

    old, new = table(source), table(target)
    if old.shape != new.shape:
        return False
    similarity = torch.nn.functional.cosine_similarity(old, new, dim=-1).mean()
    return float(similarity) >= SHARED_ENCODER_SIMILARITY


def _pictures(
    source: Components,
    embedding: Path,
    name: str,
    config: MigrationConfig,
    work: Path,
    on_progress: Progress | None,
) -> Sequence[tuple[Image.Image, str]]:
    """The old model's pictures with the embedding that ``config.keep`` accepts; those already drawn
    (a resumed run) are read back, not drawn again."""
    from PIL import Image

    work.mkdir(parents=True, exist_ok=True)
    attempts = config.attempts or (config.pictures if config.keep is None else 4 * config.pictures)
    examples = []
    drawn = 0
    for index in range(max(attempts, config.pictures)):
        if len(examples) == config.pictures:
            break
        drawn = index + 1
        template = config.prompts[index % len(config.prompts)]
        file = work / f"{index:03d}.png"
        if not file.is_file():
            _draw(source, embedding, name, template.format(name=name), config, index, file)
        with Image.open(file) as opened:
            picture = opened.convert("RGB")
        if config.keep is None or config.keep(picture):
            examples.append((picture, template))
            if on_progress is not None:
                on_progress("pictures", len(examples), config.pictures)
    if len(examples) < config.pictures:
        raise InvalidRequest(
            f"Only {len(examples)} of {drawn} pictures drawn with {name} on {source.info.name} were kept.",
            "Draw more (attempts), or change the prompts so the embedding's concept shows.",
        )
    (work / "captions.json").write_text(
        json.dumps([t.format(name=name) for _, t in examples], indent=1), encoding="utf-8"
    )
    return examples


def _draw(
    source: Components,
    embedding: Path,
    name: str,
    prompt: str,
    config: MigrationConfig,
    index: int,
    file: Path,
) -> None:
    from sfumato.core.request import GenerationRequest
    from sfumato.engine.generate import generate

    def resolve(kind: str, word: str) -> Path | None:
        return embedding if kind == "embedding" and word in (name, name.lower()) else None

    request = GenerationRequest(
        prompt=prompt, seed=config.seed + index, steps=config.picture_steps, cfg_scale=config.cfg_scale
    )
    made = generate(source, request, resolve=resolve).images[0]
    if "TI hashes" not in made.extra:
        raise InvalidRequest(
            f"The prompt {prompt!r} did not use the embedding on {source.info.name}.",
            "Check that the embedding fits the model it was made for (sfumato models list).",
        )
    temp = file.with_suffix(".tmp")
    made.image.save(temp, format="PNG")
    temp.replace(file)


def same_latents(source: Components, target: Components) -> bool:
    """Whether the two models' VAEs make latents of one format (so one's noisy latents suit the other)."""
    keys = ("latent_channels", "scaling_factor", "shift_factor")
    old, new = source.vae.config, target.vae.config
    return all(getattr(old, key, None) == getattr(new, key, None) for key in keys)


def _teacher(
    source: Components,
    target: Components,
    name: str,
    vectors: dict,
    captions: Sequence[str],
) -> Callable[[Sequence[int]], Teacher]:
    """For the examples of a step: the old model's prediction with the embedding, in the new model's
    prediction type."""
    import torch

    from sfumato.training.diffusion import DenoisingLoss, caption_ids, text_conditioning, vectors_in_place

    single = vectors.get("clip", vectors.get("clip_l"))
    assert single is not None
    alphas = DenoisingLoss(source).alphas

    def for_examples(picked: Sequence[int]) -> Teacher:
        def predict(noisy: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
            ids, offsets = caption_ids(source, [captions[i] for i in picked], name, single.shape[0])
            unet = source.unet
            with torch.no_grad():
                with vectors_in_place(source.text_encoder, offsets, single.to(source.device)):
                    text = text_conditioning(source, ids)
                out = unet(noisy.to(unet.dtype), t, encoder_hidden_states=text).sample.float()  # pyright: ignore[reportAttributeAccessIssue]
            if source.prediction_type == target.prediction_type:
                return out
            a = alphas[t].sqrt()[:, None, None, None].to(noisy)
            s = (1 - alphas[t]).sqrt()[:, None, None, None].to(noisy)
            if target.prediction_type == "v_prediction":  # the teacher predicts the noise
                return a * out - s * (noisy - s * out) / a
            return s * noisy + a * out  # the noise, from the teacher's v

        return predict

    return for_examples
