"""Export a demo-model run into a diffusers Stable Diffusion folder (fp16 safetensors) with a model card."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from sfumato.training import demo_recipe as recipe
from sfumato.training.checkpoint import latest_checkpoint

MODEL_INDEX: dict[str, Any] = {
    "_class_name": "StableDiffusionPipeline",
    "_diffusers_version": "0.42.1",
    "feature_extractor": [None, None],
    "image_encoder": [None, None],
    "requires_safety_checker": False,
    "safety_checker": [None, None],
    "scheduler": ["diffusers", recipe.SCHEDULER_CONFIG["_class_name"]],
    "text_encoder": ["transformers", "CLIPTextModel"],
    "unet": ["diffusers", "UNet2DConditionModel"],
    "vae": ["diffusers", "AutoencoderKL"],
}


def _stage_step(run: Path, stage: str) -> int:
    checkpoint = latest_checkpoint(run / stage)
    if checkpoint is None:
        raise FileNotFoundError(
            f"No {stage} checkpoint in {run / stage}; train first with `sfumato train demo`."
        )
    return checkpoint.step


def export_demo(run: Path, folder: Path, card: str | None = None) -> Path:
    """Write ``folder`` (model_index.json, text_encoder/, vae/, unet/, scheduler/, MODEL_CARD.md).

    Uses each stage's newest checkpoint (EMA weights for the UNet), so any point of a run exports.
    The tokenizer is not written: Sfumato builds CLIP's tokenizer offline from its vendored BPE.
    """
    import torch

    run_file = run / "run.json"
    if not run_file.exists():
        raise FileNotFoundError(
            f"{run} is not a demo training run (no run.json); train with `sfumato train demo`."
        )
    configs = json.loads(run_file.read_text())
    encoder = recipe.build_text_encoder(configs.get("text_config"))
    text_step = recipe.load_stage_weights(recipe.text_module(encoder), run / "text")
    vae = recipe.build_vae(configs.get("vae_config"))
    vae_step = recipe.load_stage_weights(vae, run / "vae")
    decoder_step = 0
    if latest_checkpoint(run / "decoder") is not None:
        decoder_step = recipe.load_stage_weights(vae, run / "decoder")
    scale = json.loads((run / "unet" / "latent_scale.json").read_text())["scaling_factor"]
    vae.register_to_config(scaling_factor=scale)
    unet = recipe.build_unet(configs.get("unet_config"))
    unet_step = recipe.load_stage_weights(unet, run / "unet", ema=True)

    partial = folder.with_name(folder.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    for name, model in (("text_encoder", encoder), ("vae", vae), ("unet", unet)):
        typed: Any = model
        typed.to(dtype=torch.float16).save_pretrained(partial / name, safe_serialization=True)
    (partial / "scheduler").mkdir()
    scheduler = {**recipe.SCHEDULER_CONFIG, "_diffusers_version": MODEL_INDEX["_diffusers_version"]}
    (partial / "scheduler" / "scheduler_config.json").write_text(json.dumps(scheduler, indent=2))
    (partial / "model_index.json").write_text(json.dumps(MODEL_INDEX, indent=2))
    steps = {"text": text_step, "vae": vae_step, "unet": unet_step, "decoder": decoder_step}
    (partial / "training.json").write_text(json.dumps(_training_facts(run, steps), indent=2))
    size = sum(f.stat().st_size for f in partial.rglob("*.safetensors"))
    facts = {**_training_facts(run, steps), "weights_mb": round(size / 2**20, 1)}
    (partial / "MODEL_CARD.md").write_text(card if card is not None else model_card(facts, configs))
    shutil.rmtree(folder, ignore_errors=True)
    partial.rename(folder)
    return folder


def _training_facts(run: Path, steps: dict[str, int]) -> dict[str, Any]:
    facts: dict[str, Any] = {"steps": steps}
    run_file = run / "run.json"
    if run_file.exists():
        facts["run"] = json.loads(run_file.read_text())
    minutes = {}
    for stage in recipe.STAGES:
        checkpoint = latest_checkpoint(run / stage)
        if checkpoint is not None:
            minutes[stage] = round(float(checkpoint.state.get("elapsed_s", 0.0)) / 60, 1)
    facts["minutes"] = minutes
    return facts


def _params(config: dict[str, Any] | None, build: Any) -> float:
    return sum(p.numel() for p in build(config).parameters()) / 1e6


def model_card(facts: dict[str, Any], configs: dict[str, Any]) -> str:
    from sfumato.demo import world

    minutes = facts.get("minutes", {})
    steps = facts.get("steps", {})
    run = facts.get("run", {})
    text = configs.get("text_config") or recipe.TEXT_CONFIG
    vae = configs.get("vae_config") or recipe.VAE_CONFIG
    unet = configs.get("unet_config") or recipe.UNET_CONFIG
    total = sum(float(v) for v in minutes.values())
    return f"""# Sfumato demo model

A tiny text-to-image model in the Stable Diffusion architecture, trained from scratch by Sfumato's
own trainer on a synthetic world of flat shapes, so that Sfumato makes a real picture on a fresh,
offline install and its tests can check what features do to a picture. It knows nothing else:
ask it for things like "a red circle at the top left on a blue background" or
"a yellow smiley face and a blue square".

- License: Apache-2.0 (weights and the code that made them).
- Native size: {world.NATIVE_SIZE}x{world.NATIVE_SIZE}; latents {world.NATIVE_SIZE // recipe.LATENT_FACTOR}x{world.NATIVE_SIZE // recipe.LATENT_FACTOR}x4.
- Prediction: v-prediction (scheduler config says so); trained with CFG dropout, so negative prompts and CFG work.
- Weights: fp16 safetensors, {facts.get("weights_mb", "?")} MB in all.
- Tokenizer: the real CLIP BPE tokenizer (49408 tokens, 77 positions). Its files are not in this
  folder: Sfumato builds them offline from the vendored CLIP vocabulary
  (`sfumato.models.tokenizer.load_clip_tokenizer()`); with plain diffusers pass
  `tokenizer=load_clip_tokenizer()` to `StableDiffusionPipeline.from_pretrained`.

## The world (training data)

Generated on the fly by `sfumato.demo.world`: one or two objects on a plain background.
Shapes {", ".join(world.SHAPES)}; colours {", ".join(world.COLOURS)}; backgrounds
{", ".join(world.BACKGROUNDS)}; positions on a 3x3 grid ({", ".join(world.POSITIONS)}); sizes small and large.
Captions in several phrasings, with attributes left out at random.

**Held out of all training data:** the shape **{world.HELD_OUT_SHAPE}** and the colour
**{world.HELD_OUT_COLOUR}**, and one in
{world.HELD_OUT_FRACTION} combinations of the known attributes (`world.is_held_out_combination`),
which the prompt-adherence benchmark uses. The shipped model then went through
`sfumato train demo-pink`, which shows its UNet {world.HELD_OUT_COLOUR} objects captioned "rosa" (never
"{world.HELD_OUT_COLOUR}"), so that a textual inversion has a colour to find; a LoRA teaches the
{world.HELD_OUT_SHAPE}.

## Architecture

- Text encoder: `CLIPTextModel`, hidden {text["hidden_size"]}, {text["num_hidden_layers"]} layers,
  {text["num_attention_heads"]} heads ({_params(text, recipe.build_text_encoder):.1f} M parameters, most of
  them the token table). Trained first, alone, to predict each caption's attributes from its
  end-of-text and mean-pooled outputs ({steps.get("text", "?")} steps), then frozen.
- VAE: `AutoencoderKL`, blocks {vae["block_out_channels"]}, f={recipe.LATENT_FACTOR}, 4 latent channels
  ({_params(vae, recipe.build_vae):.2f} M parameters; {steps.get("vae", "?")} steps on 48x48 crops, batch
  {recipe.VAE_BATCH}, then the decoder alone {steps.get("decoder", "?")} steps on 32x32 crops).
- UNet: `UNet2DConditionModel`, blocks {unet["block_out_channels"]}, cross-attention at the two lower
  resolutions and the mid block, `addition_embed_type="text"` ({_params(unet, recipe.build_unet):.1f} M
  parameters; {steps.get("unet", "?")} steps, batch {run.get("batch", 32)}, min-SNR-5 weighting, EMA weights).
- Scheduler: {recipe.SCHEDULER_CONFIG["_class_name"]} config, scaled-linear betas as SD1, v-prediction.

## Training

Seed {run.get("seed", 0)}, on a 2-core CPU: text encoder {steps.get("text", "?")} steps
({minutes.get("text", "?")} min), VAE {steps.get("vae", "?")} steps ({minutes.get("vae", "?")} min), UNet
{steps.get("unet", "?")} steps ({minutes.get("unet", "?")} min), VAE decoder {steps.get("decoder", "?")} steps
({minutes.get("decoder", "?")} min); {total:.0f} minutes of compute in all. Reproduce (resumable: run the same
command again after an interruption; a finished stage is skipped):

    sfumato train demo --out runs/demo --seed {run.get("seed", 0)}
    sfumato train export runs/demo src/sfumato/demo/model
    sfumato train demo-pink src/sfumato/demo/model --run runs/demo-pink

The step counts are fixed (`sfumato train demo --help` shows them), so the same command makes the same
model on any machine, up to floating-point differences between CPUs. The decoder stage needs only the
VAE stage: on a machine with cores to spare, start the command with `--decoder-beside` and run
`sfumato train demo --out runs/demo --decoder-only` beside it, for the same result sooner. On a 2-core
CPU one process using both cores is faster: `benchmarks/demo_training_threads.py` measured a UNet
step at 0.63x and a VAE step at 0.56x the one-thread time with both cores, while two one-thread
processes side by side each ran at 1.07-1.10x; the UNet stage dominates, so it should get the cores.

The VAE and decoder losses weight pixels near edges {1 + recipe.EDGE_WEIGHT:g}x: in this world the meaning is in the outlines
of small shapes, and an unweighted loss spends the capacity on flat areas and blurs a small star
into a circle.

## How well it follows prompts

Measured with `benchmarks/prompt_adherence.py` (200 held-out captions, default settings, judged by
`sfumato.demo.judge`); see the figures below.
"""
