"""What the training memory options save: peak RSS of a short textual inversion on the demo model.

Each set-up runs in a fresh process (so one's peak does not hide another's): the plain run (cached
latents, fp32, no gradient checkpointing) is the baseline; the others turn on gradient checkpointing,
bf16 mixed precision, both, and turn latent caching off. Prints each peak RSS, the part above the
loaded model, the estimate `sfumato train` prints for it, and their ratios to the baseline, all
measured in the same run. Pictures are the demo world's, drawn at --size (larger than the model's
96 px so activations, not the model, dominate).

    .venv/bin/python benchmarks/training_memory.py [--size 256] [--batch 8] [--steps 3]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

import sfumato  # noqa: F401  (sets the offline flags before Hugging Face imports)

SETUPS: dict[str, dict[str, object]] = {
    "plain": {},
    "gradient checkpointing": {"gradient_checkpointing": True},
    "bf16": {"mixed_precision": "bf16"},
    "checkpointing + bf16": {"gradient_checkpointing": True, "mixed_precision": "bf16"},
    "latents not cached": {"cache_latents": False},
}


def child(options: dict[str, object], size: int, batch: int, steps: int) -> dict[str, float]:
    import resource
    import tempfile
    from pathlib import Path

    import torch

    from sfumato.core.settings import Settings
    from sfumato.models.loading import load_model
    from sfumato.training.diffusion import Example
    from sfumato.training.memory import estimate_memory
    from sfumato.training.textual_inversion import TextualInversionConfig, train_textual_inversion
    from sfumato.training.world_examples import concept_examples

    torch.set_num_threads(1)
    components = load_model(Settings(), None)
    loaded = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    examples = [
        Example(e.image.resize((size, size)), e.caption)
        for e in concept_examples(batch, colour="pink", name="sfp")
    ]
    config = TextualInversionConfig("sfp", init_text="purple", steps=steps, batch=batch, **options)  # pyright: ignore[reportArgumentType]
    estimate = estimate_memory(
        components,
        trainable_parameters=128,
        batch=batch,
        size=size,
        text_gradients=True,
        gradient_checkpointing=bool(options.get("gradient_checkpointing", False)),
        mixed_precision=str(options.get("mixed_precision", "no")),
        cache_latents=bool(options.get("cache_latents", True)),
    )
    with tempfile.TemporaryDirectory() as folder:
        train_textual_inversion(components, examples, config, Path(folder))
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return {"peak": peak, "above_model": peak - loaded, "estimate": estimate.training}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(SETUPS[args.child], args.size, args.batch, args.steps)))
        return
    results = {}
    for name in SETUPS:
        command = [sys.executable, __file__, "--child", name, "--size", str(args.size)]
        command += ["--batch", str(args.batch), "--steps", str(args.steps)]
        output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
        results[name] = json.loads(output.strip().splitlines()[-1])
    base = results["plain"]
    mib = 1024**2
    print(f"textual inversion on the demo model, {args.size} px, batch {args.batch}, {args.steps} steps")
    print(f"{'set-up':<24} {'peak RSS':>10} {'above model':>12} {'ratio':>6} {'estimate':>10} {'ratio':>6}")
    for name, r in results.items():
        print(
            f"{name:<24} {r['peak'] / mib:>8.0f} M {r['above_model'] / mib:>10.0f} M "
            f"{r['above_model'] / base['above_model']:>6.2f} {r['estimate'] / mib:>8.0f} M "
            f"{r['estimate'] / base['estimate']:>6.2f}"
        )


if __name__ == "__main__":
    main()
