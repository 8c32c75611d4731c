"""The recipe that trains Sfumato's demo CLIP: image and text towers, contrastive, on the demo world.

A transformers ``CLIPModel`` with tiny towers (the text tower reads the real 49408-token CLIP
vocabulary; the image tower is a small ViT on 96x96 pictures) learns from a pool of scenes rendered
once. Captions are the world's own phrasings of whole scenes and of parts of them ("a red shape",
"a shape at the top left", "a blue background"), so single attributes have their own meaning, which
interrogation ranks. Many pictures in a batch fit a partial caption: the loss is contrastive with
every fitting pair as a positive (targets spread over them), not only the diagonal.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from sfumato.demo import world
from sfumato.training.trainer import ParamGroup, TrainConfig, Trainer

if TYPE_CHECKING:
    import torch
    from torch import nn
    from transformers import CLIPModel

CLIP_STEPS = 2500
CLIP_BATCH = 64
CLIP_POOL = 6000
PARTIAL_FRACTION = 0.6  # captions naming only some attributes of one object or the background
PATCH_INIT_SCALE = 0.25  # patch embeddings start at norm ~2.7 ...
POSITION_INIT_STD = 0.35  # ... and position embeddings at ~2.8, so a patch token says where it is
POSITION_TABLE = "clip.vision_model.embeddings.position_embedding"
POSITION_LR_SCALE = 3.0  # no weight decay either: the table must keep up with the growing patch content
# OpenAI CLIP's normalisation: the demo CLIP reads pictures as real CLIPs do.
IMAGE_MEAN = (0.48145466, 0.4578275, 0.40821073)
IMAGE_STD = (0.26862954, 0.26130258, 0.27577711)

CLIP_CONFIG: dict[str, Any] = {
    "text_config": {
        "vocab_size": 49408,
        "hidden_size": 64,
        "intermediate_size": 256,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "max_position_embeddings": 77,
        "hidden_act": "quick_gelu",
        "bos_token_id": 49406,
        "eos_token_id": 49407,
        "pad_token_id": 49407,
    },
    "vision_config": {
        "image_size": world.NATIVE_SIZE,
        "patch_size": 32,  # one patch per cell of the world's 3x3 grid: a 16-px ViT never learned position here
        "hidden_size": 64,
        "intermediate_size": 256,
        "num_hidden_layers": 4,
        "num_attention_heads": 4,
        "hidden_act": "quick_gelu",
    },
    "projection_dim": 64,
}


@dataclass
class ClipPlan:
    out: Path
    seed: int = 0
    steps: int = CLIP_STEPS
    batch: int = CLIP_BATCH
    pool_size: int = CLIP_POOL
    config: dict[str, Any] = field(default_factory=lambda: json.loads(json.dumps(CLIP_CONFIG)))


def build_clip(config: dict[str, Any] | None = None) -> CLIPModel:
    from transformers import CLIPConfig, CLIPModel

    return CLIPModel(CLIPConfig(**(config or CLIP_CONFIG)))


def pictures_to_pixels(pictures: list[Any] | np.ndarray) -> torch.Tensor:
    """RGB pictures at the tower's size (uint8 HxWx3 each) -> normalised NCHW float tensor."""
    import torch

    array = np.stack([np.asarray(p, dtype=np.float32) for p in pictures]) / 255.0
    array = (array - np.array(IMAGE_MEAN, dtype=np.float32)) / np.array(IMAGE_STD, dtype=np.float32)
    return torch.from_numpy(array).permute(0, 3, 1, 2).contiguous()


def scene_pool(seed: int, size: int) -> tuple[list[world.Scene], np.ndarray]:
    """The training split's scenes, rendered once (uint8, N x 96 x 96 x 3); the same for a seed."""
    rng = np.random.default_rng((seed, 17))
    scenes = [world.sample_scene(rng) for _ in range(size)]
    pixels = np.stack([np.asarray(world.render(s)) for s in scenes])
    return scenes, pixels


def _partial_scene(scene: world.Scene, rng: np.random.Generator) -> world.Scene:
    """One object (or only the background) with some of its attributes left unsaid."""
    if rng.random() < 0.2:
        return world.Scene(objects=(), background=scene.background)
    obj = scene.objects[int(rng.integers(len(scene.objects)))]
    while True:
        keep = rng.random(3) < 0.45
        if keep.any():
            break
    reduced = replace(
        obj,
        colour=obj.colour if keep[0] else None,
        shape=obj.shape if keep[1] else None,
        position=obj.position if keep[2] else None,
        size=None,
    )
    background = scene.background if rng.random() < 0.25 else None
    return world.Scene(objects=(reduced,), background=background)


def training_caption(scene: world.Scene, rng: np.random.Generator) -> str:
    if rng.random() >= PARTIAL_FRACTION:
        return world.caption(scene, rng)
    partial = _partial_scene(scene, rng)
    text = world.caption(partial, rng, complete=True)
    return text.strip(" ,").removeprefix("on ").strip()


def twin_scene(scene: world.Scene, rng: np.random.Generator) -> tuple[world.Scene, str]:
    """The scene with one object's shape, position or colour changed (which one is returned too)."""
    index = int(rng.integers(len(scene.objects)))
    obj = scene.objects[index]
    taken = {o.position for o in scene.objects} | {o.colour for o in scene.objects}
    changed = str(rng.choice(["shape", "position", "colour"], p=[0.35, 0.5, 0.15]))
    if changed == "shape":
        obj = replace(obj, shape=str(rng.choice([s for s in world.SHAPES if s != obj.shape])))
    elif changed == "position":
        obj = replace(obj, position=str(rng.choice([p for p in world.POSITIONS if p not in taken])))
    else:
        free = [c for c in world.COLOURS if c not in taken and c != scene.background]
        obj = replace(obj, colour=str(rng.choice(free)))
    objects = list(scene.objects)
    objects[index] = obj
    return replace(scene, objects=tuple(objects)), changed


def twin_caption(scene: world.Scene, changed: str, rng: np.random.Generator) -> str:
    """A whole caption, or one naming the changed attribute alone (of a one-object scene)."""
    if len(scene.objects) > 1 or rng.random() < 0.5:
        return world.caption(scene, rng, complete=True)
    obj = next(iter(scene.objects))
    keep = {"shape": obj.shape, "position": obj.position, "colour": obj.colour}
    alone = world.SceneObject(**{changed: keep[changed]})
    return world.caption(world.Scene(objects=(alone,)), rng, complete=True).strip(" ,")


def fits(said: world.Scene, scene: world.Scene) -> bool:
    """Whether a scene shows everything a (parsed) caption says."""
    if said.background is not None and said.background != scene.background:
        return False
    if len(said.objects) > len(scene.objects):
        return False
    return all(any(_object_fits(wanted, obj) for obj in scene.objects) for wanted in said.objects)


def _object_fits(wanted: world.SceneObject, obj: world.SceneObject) -> bool:
    return all(
        getattr(wanted, attr) is None or getattr(wanted, attr) == getattr(obj, attr)
        for attr in ("shape", "colour", "position", "size")
    )


def _tokenize(texts: list[str]) -> torch.Tensor:
    from sfumato.models.tokenizer import load_clip_tokenizer

    tokenizer = load_clip_tokenizer()
    return tokenizer(texts, padding="longest", max_length=77, truncation=True, return_tensors="pt").input_ids


def embed_texts(model: CLIPModel, ids: torch.Tensor) -> torch.Tensor:
    pooled = model.text_model(input_ids=ids).pooler_output
    return _unit(model.text_projection(pooled))


def embed_pixels(model: CLIPModel, pixels: torch.Tensor) -> torch.Tensor:
    pooled = model.vision_model(pixel_values=pixels).pooler_output
    return _unit(model.visual_projection(pooled))


def _unit(features: torch.Tensor) -> torch.Tensor:
    return features / features.norm(dim=-1, keepdim=True).clamp_min(1e-6)


def train_clip(plan: ClipPlan, time_limit_s: float | None = None) -> CLIPModel:
    import torch
    from torch.nn import functional

    plan.out.mkdir(parents=True, exist_ok=True)
    (plan.out / "run.json").write_text(
        json.dumps(
            {
                "kind": "demo-clip",
                "seed": plan.seed,
                "steps": plan.steps,
                "batch": plan.batch,
                "pool_size": plan.pool_size,
                "config": plan.config,
            },
            indent=1,
        )
    )
    torch.manual_seed(plan.seed * 1000 + 7)
    model = build_clip(plan.config)
    let_patches_say_where(model)
    trainable = with_cell_heads(model)
    scenes, pool = scene_pool(plan.seed, plan.pool_size)

    def loss_fn(step: int) -> tuple[torch.Tensor, dict[str, float]]:
        rng = np.random.default_rng((plan.seed, 18, step))
        half = plan.batch // 2
        picked = rng.choice(len(scenes), size=half, replace=False)
        base = [scenes[i] for i in picked]
        # Each scene's twin differs in one attribute: colour and background alone cannot tell them apart.
        twins = [twin_scene(s, rng) for s in base]
        batch_scenes = base + [twin for twin, _ in twins]
        texts = [training_caption(s, rng) for s in base]
        texts += [twin_caption(twin, changed, rng) for twin, changed in twins]
        said = [world.parse_caption(t) for t in texts]
        positives = torch.tensor([[fits(t, s) for s in batch_scenes] for t in said], dtype=torch.float32)
        positives.fill_diagonal_(1.0)
        pictures = np.concatenate([pool[picked], np.stack([np.asarray(world.render(t)) for t, _ in twins])])
        text_features = embed_texts(model, _tokenize(texts))
        seen = model.vision_model(pixel_values=pictures_to_pixels(pictures))
        image_features = _unit(model.visual_projection(seen.pooler_output))
        cells = cell_loss(trainable, seen.last_hidden_state, seen.pooler_output, batch_scenes)
        cells = cells + where_loss(trainable, image_features, text_features, batch_scenes, said)
        scale = model.logit_scale.clamp(max=4.6052).exp()
        logits = scale * text_features @ image_features.T
        text_to_image = -(functional.log_softmax(logits, 1) * positives / positives.sum(1, keepdim=True))
        image_to_text = -(functional.log_softmax(logits.T, 1) * positives.T / positives.sum(0)[:, None])
        loss = 0.5 * (text_to_image.sum(1).mean() + image_to_text.sum(1).mean())
        hits = positives.gather(1, logits.argmax(1, keepdim=True)).mean()
        extra = {
            "text_to_image_top1": float(hits),
            "logit_scale": float(scale.detach()),
            "cells": float(cells.detach()),
        }
        return loss + cells, extra

    config = TrainConfig(
        steps=plan.steps,
        lr=1e-3,
        warmup_steps=100,
        weight_decay=0.05,
        seed=plan.seed,
        checkpoint_every=100,
        log_every=20,
        time_limit_s=time_limit_s,
    )
    where = ParamGroup(POSITION_TABLE, lr_scale=POSITION_LR_SCALE, weight_decay=0.0)
    trainer = Trainer(trainable, loss_fn, config, plan.out / "clip", groups=[where], name="clip")
    trainer.resume()
    trainer.fit()
    return model


def let_patches_say_where(model: CLIPModel) -> None:
    """Start the image tower with position embeddings as loud as the patches' content.

    transformers initialises them at std 0.02 (norm ~0.16) beside patch embeddings of norm ~11 on
    these pictures; after the pre-layernorm a patch token then barely says which cell it is: the first
    demo CLIP trained so never learned position (its patch embeddings grew to ~80, positions to ~1.3).
    """
    import torch

    embeddings: Any = model.vision_model.embeddings
    with torch.no_grad():
        embeddings.patch_embedding.weight.mul_(PATCH_INIT_SCALE)
        embeddings.position_embedding.weight.normal_(std=POSITION_INIT_STD)


def with_cell_heads(model: CLIPModel) -> nn.Module:
    """The CLIP plus training-only heads: what each patch (one grid cell) holds, and which cells are taken.

    A ViT's class token must learn where to look before position can reach it; told what each patch
    holds and asked where the objects are, it learns that in hundreds of steps instead of never
    (measured: contrastive loss alone left shape and position at chance after 1,500 steps).
    """
    from torch import nn

    config: Any = model.config
    width = int(config.vision_config.hidden_size)
    trainable = nn.Module()
    trainable.clip = model
    trainable.cell_shape = nn.Linear(width, len(world.SHAPES) + 1)
    trainable.cell_colour = nn.Linear(width, len(world.COLOURS) + 1)
    trainable.taken = nn.Linear(width, len(world.POSITIONS))
    trainable.where = nn.Linear(int(config.projection_dim), len(world.POSITIONS))
    return trainable


def where_loss(
    trainable: nn.Module,
    image_features: torch.Tensor,
    text_features: torch.Tensor,
    scenes: list[world.Scene],
    said: list[world.Scene],
) -> torch.Tensor:
    """One head reads the taken cells from both towers' embeddings, so both put position the same way.

    Contrastive loss alone let both towers ignore position (every "a shape at the X" embedded alike).
    """
    import torch
    from torch.nn import functional

    heads: Any = trainable
    taken = torch.zeros((len(scenes), len(world.POSITIONS)))
    for row, scene in enumerate(scenes):
        for obj in scene.objects:
            taken[row, list(world.POSITIONS).index(str(obj.position))] = 1.0
    named = [[o.position for o in s.objects if o.position] for s in said]
    rows = [i for i, names in enumerate(named) if names]
    text_taken = torch.zeros((len(rows), len(world.POSITIONS)))
    for row, index in enumerate(rows):
        for name in named[index]:
            text_taken[row, list(world.POSITIONS).index(name)] = 1.0
    loss = functional.binary_cross_entropy_with_logits(heads.where(image_features * 8), taken)
    if rows:
        logits = heads.where(text_features[rows] * 8)
        loss = loss + functional.binary_cross_entropy_with_logits(logits, text_taken)
    return loss


def cell_loss(
    trainable: nn.Module, tokens: torch.Tensor, pooled: torch.Tensor, scenes: list[world.Scene]
) -> torch.Tensor:
    import torch
    from torch.nn import functional

    cells = len(world.POSITIONS)
    shape = torch.full((len(scenes), cells), len(world.SHAPES))
    colour = torch.full((len(scenes), cells), len(world.COLOURS))
    taken = torch.zeros((len(scenes), cells))
    for row, scene in enumerate(scenes):
        for obj in scene.objects:
            column, line = world.POSITIONS[str(obj.position)]
            cell = line * 3 + column
            shape[row, cell] = world.SHAPES.index(str(obj.shape))
            colour[row, cell] = list(world.COLOURS).index(str(obj.colour))
            taken[row, cell] = 1.0
    patches = tokens[:, 1 : cells + 1]
    heads: Any = trainable
    if patches.shape[1] != cells:  # patches that are not the grid's cells: only where objects are
        return functional.binary_cross_entropy_with_logits(heads.taken(pooled), taken)
    return (
        functional.cross_entropy(heads.cell_shape(patches).flatten(0, 1), shape.flatten())
        + functional.cross_entropy(heads.cell_colour(patches).flatten(0, 1), colour.flatten())
        + functional.binary_cross_entropy_with_logits(heads.taken(pooled), taken)
    )


def load_trained_clip(run: Path) -> tuple[CLIPModel, int]:
    from sfumato.training.checkpoint import latest_checkpoint, load_tensors

    run_file = run / "run.json"
    if not run_file.exists():
        raise FileNotFoundError(
            f"{run} is not a CLIP training run (no run.json); train with `sfumato train clip`."
        )
    configs = json.loads(run_file.read_text())
    model = build_clip(configs["config"])
    checkpoint = latest_checkpoint(run / "clip")
    if checkpoint is None:
        raise FileNotFoundError(f"No checkpoint in {run / 'clip'}; train first with `sfumato train clip`.")
    weights = load_tensors(checkpoint.model_file)
    model.load_state_dict(
        {k.removeprefix("clip."): v for k, v in weights.items() if k.startswith("clip.")}, strict=True
    )
    return model, checkpoint.step


def export_clip(run: Path, folder: Path) -> Path:
    """Write a transformers CLIP folder: config.json, model.safetensors (fp16), preprocessor_config.json."""
    import shutil

    import torch

    model, step = load_trained_clip(run)
    partial = folder.with_name(folder.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    typed: Any = model
    typed.to(dtype=torch.float16).save_pretrained(partial, safe_serialization=True)
    size = world.NATIVE_SIZE
    preprocessor = {
        "image_processor_type": "CLIPImageProcessor",
        "do_resize": True,
        "size": {"shortest_edge": size},
        "do_center_crop": True,
        "crop_size": {"height": size, "width": size},
        "do_normalize": True,
        "image_mean": list(IMAGE_MEAN),
        "image_std": list(IMAGE_STD),
        "resample": 3,
    }
    (partial / "preprocessor_config.json").write_text(json.dumps(preprocessor, indent=2))
    log = run / "clip" / "log.jsonl"
    last = json.loads(log.read_text().splitlines()[-1]) if log.exists() else {}
    facts = {"step": step, **{k: last[k] for k in ("loss", "elapsed_s", "text_to_image_top1") if k in last}}
    (partial / "training.json").write_text(json.dumps(facts, indent=2))
    if (folder / "MODEL_CARD.md").exists():
        shutil.copy(folder / "MODEL_CARD.md", partial / "MODEL_CARD.md")
    shutil.rmtree(folder, ignore_errors=True)
    partial.rename(folder)
    return folder
