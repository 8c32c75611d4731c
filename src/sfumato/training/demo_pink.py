"""The demo model's last stage: pink objects in the UNet's pictures, captioned "rosa", never "pink".

A textual inversion trains an input embedding of a frozen model: it finds a word for what the model
can already draw, and cannot add a colour its UNet never drew (measured on the earlier demo model,
whose UNet had never seen pink: 20 embedding recipes, at best 2 of 6 seeds read pink). A web-trained
model has seen most things under some word its users never type; this stage gives the demo model
that: its UNet learns pink from pictures whose captions call it "rosa". The word "pink" stays in no
caption, so teaching "pink" (or any new word) from pictures is left to textual inversion and LoRA.

It fine-tunes an exported demo model folder, from its weights, in two parts (each resumable in its
own folder of the run): the UNet with the text encoder's one "rosa" token row (the encoder was frozen
before that token was in any caption, so its row was an untrained one that every unknown word
resembles), on the UNet stage's world with one object in every fourth scene recoloured pink (only
captioned pink scenes learn from the data; the rest keep the UNet's own earlier prediction); then
the VAE's decoder, which had never seen pink either.

The shipped weights went through it with the defaults (about 15 minutes on 2 cores): "rosa" draws
pink in 6 of 6 seeds, and a textual inversion trained by the CLI (300 steps, lr 0.1, init "purple")
draws pink in 6 of 6, none without (`tests/training/test_training_semantic.py`).
"""

from __future__ import annotations

import copy
import json
import re
import shutil
from dataclasses import replace
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from sfumato.demo import world
from sfumato.training import demo_recipe as recipe
from sfumato.training.trainer import ParamGroup, TrainConfig, Trainer, TrainResult

if TYPE_CHECKING:
    import torch

WORD = "rosa"  # the only word the demo model's captions use for pink
STEPS = 1200
POOL_SIZE = 8192
PINK_SHARE = 0.25  # scenes with one object recoloured pink
LR = 5e-4
BATCH = 32
WORD_LR_SCALE = 20.0  # the word's row starts from scratch; the UNet only adjusts
DECODER_STEPS = 1000
DECODER_LR = 3e-4
DECODER_BATCH = 16
DECODER_CROP = 48
DECODER_PINK_SHARE = 0.5


def caption_with_word(text: str) -> str:
    return re.sub(rf"\b{world.HELD_OUT_COLOUR}\b", WORD, text)


def _with_pink(scene: world.Scene, rng: np.random.Generator, share: float) -> world.Scene:
    if rng.random() >= share:
        return scene
    objects = list(scene.objects)
    index = int(rng.integers(len(objects)))
    objects[index] = replace(objects[index], colour=world.HELD_OUT_COLOUR)
    return replace(scene, objects=tuple(objects))


def _has_pink(scene: world.Scene) -> bool:
    return any(o.colour == world.HELD_OUT_COLOUR for o in scene.objects)


def _pink_pool(seed: int, size: int) -> list[world.Scene]:
    rng = np.random.default_rng((seed, 90))
    return [_with_pink(world.sample_scene(rng), rng, PINK_SHARE) for _ in range(size)]


def _teach_decoder(vae: Any, run: Path, steps: int, seed: int) -> TrainResult:
    """The VAE never saw pink either: its decoder turned pink latents into a speckled lavender.
    The decoder alone learns it (the encoder frozen, so the latents the UNet learned stay valid)."""
    import torch

    vae.requires_grad_(False)
    vae.decoder.requires_grad_(True)
    vae.post_quant_conv.requires_grad_(True)

    def loss_fn(step: int) -> tuple[torch.Tensor, dict[str, float]]:
        rng = np.random.default_rng((seed, 92, step))
        scenes = [_with_pink(world.sample_scene(rng), rng, DECODER_PINK_SHARE) for _ in range(DECODER_BATCH)]
        images = recipe.images_to_tensor([world.render(s) for s in scenes])
        cells = (world.NATIVE_SIZE - DECODER_CROP) // recipe.LATENT_FACTOR
        x, y = (int(v) * recipe.LATENT_FACTOR for v in rng.integers(0, cells + 1, size=2))
        images = images[:, :, y : y + DECODER_CROP, x : x + DECODER_CROP].contiguous()
        with torch.no_grad():
            latents = vae.encode(images).latent_dist.mean
        decoded = vae.decode(latents).sample
        return recipe.reconstruction_loss(decoded, images), {"psnr": recipe.psnr(decoded, images)}

    config = TrainConfig(steps=steps, lr=DECODER_LR, warmup_steps=20, seed=seed, checkpoint_every=200)
    trainer = Trainer(vae, loss_fn, config, run, name="pink-decoder")
    trainer.resume()
    result = trainer.fit()
    recipe.load_stage_weights(vae, run)
    return result


def teach_pink(
    model: Path,
    run: Path,
    to: Path | None = None,
    steps: int = STEPS,
    seed: int = 0,
    pool_size: int = POOL_SIZE,
    decoder_steps: int = DECODER_STEPS,
) -> Path:
    """Fine-tune the demo model folder ``model`` (checkpoints in ``run``; run again to resume) and
    write the result to ``to`` (default: ``model`` itself, replaced only once the new one is written).
    """
    import torch
    from diffusers import AutoencoderKL, DDPMScheduler, UNet2DConditionModel
    from torch import nn
    from torch.nn import functional
    from transformers import CLIPTextModel

    from sfumato.models.tokenizer import load_clip_tokenizer

    encoder = CLIPTextModel.from_pretrained(model / "text_encoder", dtype=torch.float32).eval()
    vae = AutoencoderKL.from_pretrained(model / "vae", torch_dtype=torch.float32).eval()
    unet = UNet2DConditionModel.from_pretrained(model / "unet", torch_dtype=torch.float32)
    encoder.requires_grad_(False)
    vae.requires_grad_(False)
    table = encoder.get_input_embeddings()
    assert isinstance(table, nn.Embedding)
    tokenizer = load_clip_tokenizer()
    word_id = int(tokenizer.convert_tokens_to_ids(f"{WORD}</w>"))  # pyright: ignore[reportArgumentType]
    colour_ids = [int(tokenizer.convert_tokens_to_ids(f"{c}</w>")) for c in world.COLOURS]  # pyright: ignore[reportArgumentType]
    with torch.no_grad():
        table.weight[word_id] = table.weight[colour_ids].mean(0)  # starts as "a colour", none in particular
    table.weight.requires_grad_(True)
    only_the_word = torch.zeros(table.weight.shape[0], 1)
    only_the_word[word_id] = 1.0
    table.weight.register_hook(lambda grad: grad * only_the_word)

    teacher = copy.deepcopy(unet).requires_grad_(False).eval()

    class Trained(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.unet = unet
            self.words = table

    trained = Trained()
    scaling = float(vae.config["scaling_factor"])

    @cache
    def pool() -> tuple[
        list[world.Scene], torch.Tensor
    ]:  # built at the first step: a finished run needs none
        scenes = _pink_pool(seed, pool_size)
        with torch.no_grad():
            chunks = [
                vae.encode(
                    recipe.images_to_tensor([world.render(s) for s in scenes[i : i + 64]])
                ).latent_dist.mean  # pyright: ignore[reportAttributeAccessIssue]
                for i in range(0, len(scenes), 64)
            ]
        return scenes, torch.cat(chunks) * scaling

    alphas = DDPMScheduler(
        **{
            k: recipe.SCHEDULER_CONFIG[k]
            for k in ("num_train_timesteps", "beta_start", "beta_end", "beta_schedule")
        }
    ).alphas_cumprod

    def loss_fn(step: int) -> tuple[torch.Tensor, dict[str, float]]:
        scenes, latents = pool()
        rng = np.random.default_rng((seed, 91, step))
        picked = rng.integers(0, len(scenes), size=BATCH)
        texts = [
            caption_with_word(world.caption(scenes[i], rng)) if rng.random() >= recipe.CAPTION_DROPOUT else ""
            for i in picked
        ]
        generator = torch.Generator().manual_seed(int(rng.integers(2**31)))
        clean = latents[torch.from_numpy(picked)]
        context = encoder(input_ids=recipe.tokenize(texts)).last_hidden_state
        eps = torch.randn(clean.shape, generator=generator)
        t = torch.randint(0, len(alphas), (len(clean),), generator=generator)
        a = alphas[t].sqrt()[:, None, None, None]
        s = (1 - alphas[t]).sqrt()[:, None, None, None]
        noisy = a * clean + s * eps
        predicted = unet(noisy, t, encoder_hidden_states=context).sample
        # Scenes without pink keep the UNet as it was: their target is its own earlier prediction,
        # not the data, so the prompts it knew draw what they drew (a data target moved them enough
        # to break the LMS and PLMS samplers' pictures).
        with torch.no_grad():
            before = teacher(noisy, t, encoder_hidden_states=context).sample
        # Pink is learned with its word only: the unconditional prediction (empty caption) keeps the
        # earlier one too, or classifier-free guidance pushes every prompt away from a shifted mean.
        has_pink = torch.tensor(
            [_has_pink(scenes[i]) and bool(text) for i, text in zip(picked, texts, strict=True)]
        )
        has_pink = has_pink[:, None, None, None]
        target = torch.where(has_pink, a * eps - s * clean, before)
        snr = alphas[t] / (1 - alphas[t])
        # Min-SNR weighting for the data; every noise level alike for the earlier prediction, or the
        # high-noise steps (weighted ~0.005) drift, and the LMS sampler, which leans on them, drew
        # white for yellow.
        weight = torch.where(has_pink.flatten(), torch.clamp(snr, max=5.0) / (snr + 1), 1.0)
        per_sample = functional.mse_loss(predicted, target, reduction="none").mean(dim=(1, 2, 3))
        return (per_sample * weight).mean(), {}

    config = TrainConfig(
        steps=steps, lr=LR, warmup_steps=100, seed=seed, ema_decay=0.995, checkpoint_every=200
    )
    trainer = Trainer(
        trained, loss_fn, config, run / "unet", groups=[ParamGroup("words", WORD_LR_SCALE)], name="pink-unet"
    )
    trainer.resume()
    result = trainer.fit()
    recipe.load_stage_weights(trained, run / "unet", ema=True)
    decoder = _teach_decoder(vae, run / "decoder", decoder_steps, seed)
    facts = {
        "steps": result.step,
        "minutes": round(result.elapsed_s / 60, 1),
        "pool_size": pool_size,
        "decoder_steps": decoder.step,
        "decoder_minutes": round(decoder.elapsed_s / 60, 1),
    }
    return _write_model(model, to or model, {"text_encoder": encoder, "unet": unet, "vae": vae}, facts)


def _write_model(source: Path, folder: Path, parts: dict[str, Any], facts: dict[str, Any]) -> Path:
    import torch

    partial = folder.with_name(folder.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    shutil.copytree(source, partial)
    for name, part in parts.items():
        shutil.rmtree(partial / name)
        part.requires_grad_(False).to(dtype=torch.float16).save_pretrained(
            partial / name, safe_serialization=True
        )
    for config_file in partial.glob("*/config.json"):  # diffusers records the folder it loaded from
        config = json.loads(config_file.read_text())
        if config.pop("_name_or_path", None) is not None:
            config_file.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
    training = partial / "training.json"
    record = json.loads(training.read_text()) if training.exists() else {}
    record["pink"] = {**facts, "word": WORD, "pink_share": PINK_SHARE, "lr": LR}
    training.write_text(json.dumps(record, indent=2))
    old = folder.with_name(folder.name + ".old")
    shutil.rmtree(old, ignore_errors=True)
    if folder.exists():
        folder.rename(old)
    partial.rename(folder)
    shutil.rmtree(old, ignore_errors=True)
    return folder
