"""How to spend a small CPU's cores on the demo recipe: one process on all of them, or two side by side.

Times training steps of the demo recipe's UNet (batch 32, text encoder in front) and VAE (batch 16,
48x48 crops) with its real configs, in three set-ups: one process with one thread (the baseline), one
process with every core, and two one-thread processes running at once (what ``--decoder-beside``
does). Prints seconds per step and each set-up's ratio to the baseline, measured in the same run.

    .venv/bin/python benchmarks/demo_training_threads.py [--steps 6]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

import sfumato  # noqa: F401  (sets the offline flags before Hugging Face imports)


def seconds_per_step(stage: str, threads: int, steps: int) -> float:
    import torch

    from sfumato.training import demo_recipe as recipe

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    unet, vae, encoder = recipe.build_unet(), recipe.build_vae(), recipe.build_text_encoder()
    optimizer = torch.optim.AdamW([*unet.parameters(), *vae.parameters()], 1e-4)
    ids = recipe.tokenize(["a red circle at the top left on a blue background"] * 32)

    def unet_step() -> torch.Tensor:
        latents, t = torch.randn(32, 4, 24, 24), torch.randint(0, 1000, (32,))
        with torch.no_grad():
            context = encoder(input_ids=ids).last_hidden_state
        return (unet(latents, t, encoder_hidden_states=context).sample - latents).square().mean()

    def vae_step() -> torch.Tensor:
        images = recipe.vae_batch(0, 0, recipe.VAE_BATCH, crop=recipe.VAE_CROP)
        posterior = vae.encode(images).latent_dist  # pyright: ignore[reportAttributeAccessIssue]
        return recipe.reconstruction_loss(vae.decode(posterior.sample()).sample, images)  # pyright: ignore[reportAttributeAccessIssue]

    def train_step() -> None:
        (unet_step() if stage == "unet" else vae_step()).backward()
        optimizer.step()
        optimizer.zero_grad()

    train_step()  # the first step warms up allocators and kernels
    started = time.perf_counter()
    for _ in range(steps):
        train_step()
    return (time.perf_counter() - started) / steps


def in_subprocess(stage: str, threads: int, steps: int) -> subprocess.Popen[str]:
    command = [sys.executable, __file__, "--worker", stage, str(threads), "--steps", str(steps)]
    return subprocess.Popen(command, stdout=subprocess.PIPE, text=True)


def measure(stage: str, threads: int, steps: int, side_by_side: int = 1) -> float:
    workers = [in_subprocess(stage, threads, steps) for _ in range(side_by_side)]
    results = [float(worker.communicate()[0].strip().splitlines()[-1]) for worker in workers]
    return max(results)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--worker", nargs=2, metavar=("STAGE", "THREADS"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(seconds_per_step(args.worker[0], int(args.worker[1]), args.steps))
        return
    cores = os.cpu_count() or 1
    print(f"{cores} cores, {args.steps} timed steps each; ratio = seconds per step / one process, one thread")
    for stage in ("unet", "vae"):
        baseline = measure(stage, 1, args.steps)
        everything = measure(stage, cores, args.steps)
        beside = measure(stage, 1, args.steps, side_by_side=2)
        print(f"  {stage}: one thread {baseline:.2f} s/step")
        print(
            f"  {stage}: one process, {cores} threads {everything:.2f} s/step   ratio {everything / baseline:.2f}"
        )
        print(
            f"  {stage}: two processes side by side, one thread each {beside:.2f} s/step   ratio {beside / baseline:.2f}"
        )


if __name__ == "__main__":
    main()
