"""Sfumato's denoising loop against diffusers' own StableDiffusionPipeline, same model, same work.

Both run the same small random SD1-like model (bigger than the test one, so the UNet's work
is not lost in noise), the same scheduler, steps, seed and starting latents, in one process,
alternating; each encodes the prompts itself (the pixel check shows the embeddings agree). Prints the largest pixel difference and the time ratio
sfumato / diffusers (goal: <= 1.03).

    .venv/bin/python benchmarks/engine_overhead.py [--steps 20] [--repeats 5] [--size 128]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Any, cast

import sfumato  # noqa: F401  (sets the offline flags before Hugging Face imports)

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))


def bigger_components(device: str) -> Any:
    import torch
    from diffusers import AutoencoderKL, UNet2DConditionModel

    from sfumato.core.result import ModelInfo
    from sfumato.models.components import Components
    from sfumato.models.tokenizer import load_clip_tokenizer
    from tiny import SCHEDULER_CONFIG, _text_encoder  # pyright: ignore[reportMissingImports]

    torch.manual_seed(0)
    unet = UNet2DConditionModel(
        block_out_channels=(64, 128, 128),
        layers_per_block=1,
        sample_size=16,
        in_channels=4,
        out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=64,
        attention_head_dim=8,
        norm_num_groups=32,
    ).eval()
    vae = AutoencoderKL(
        block_out_channels=(32, 64),  # pyright: ignore[reportArgumentType]
        down_block_types=("DownEncoderBlock2D",) * 2,  # pyright: ignore[reportArgumentType]
        up_block_types=("UpDecoderBlock2D",) * 2,  # pyright: ignore[reportArgumentType]
        latent_channels=4,
        norm_num_groups=8,
    ).eval()
    cast(Any, unet).to(device)
    cast(Any, vae).to(device)
    components = Components(
        unet=unet,
        vae=vae,
        text_encoder=_text_encoder(hidden=64).to(device),
        tokenizer=load_clip_tokenizer(),
        scheduler_config=dict(SCHEDULER_CONFIG),
        info=ModelInfo(name="bench"),
        native_size=128,
    )
    return components


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--sampler", default="Euler")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1, help="CPU threads for torch (1 = steadiest timing)")
    args = parser.parse_args()

    import numpy as np
    import torch
    from diffusers import StableDiffusionPipeline

    from sfumato.core.request import GenerationRequest
    from sfumato.engine.generate import generate
    from sfumato.engine.samplers import make_scheduler
    from sfumato.engine.seeds import image_noise

    torch.set_num_threads(args.threads)
    components = bigger_components(args.device)
    request = GenerationRequest(
        prompt="a red circle at the top left",
        negative_prompt="blurry",
        steps=args.steps,
        seed=1234,
        sampler=args.sampler,
        width=args.size,
        height=args.size,
    )
    pipe = StableDiffusionPipeline(
        vae=components.vae,
        text_encoder=components.text_encoder,  # pyright: ignore[reportArgumentType]
        tokenizer=components.tokenizer,
        unet=components.unet,
        scheduler=cast(
            Any, make_scheduler(request.sampler, request.schedule_type, components.scheduler_config)
        ),
        safety_checker=None,  # pyright: ignore[reportArgumentType]
        feature_extractor=None,  # pyright: ignore[reportArgumentType]
        requires_safety_checker=False,
    )
    pipe.set_progress_bar_config(disable=True)
    latent = args.size // components.vae_scale_factor

    def run_sfumato() -> np.ndarray:
        image = generate(components, request, preview_every=0).images[0].image
        return np.asarray(image, dtype=np.float64)

    def run_diffusers() -> np.ndarray:
        # The same starting noise the engine draws for this seed; the pipeline scales it by init_noise_sigma.
        noise = image_noise((4, latent, latent), request.seed).noise.to(args.device)
        with torch.no_grad():
            images: Any = pipe(
                prompt=request.prompt,
                negative_prompt=request.negative_prompt,
                num_inference_steps=args.steps,
                guidance_scale=request.cfg_scale,
                latents=noise,
                output_type="pil",
            ).images  # pyright: ignore[reportAttributeAccessIssue]
        return np.asarray(images[0], dtype=np.float64)

    ours, theirs = run_sfumato(), run_diffusers()  # warm-up, and the equality check
    print(
        f"model: UNet (64, 128, 128), {args.size}x{args.size}, {args.steps} steps, {args.sampler}, {args.device}"
    )
    print(f"max abs pixel difference (0-255): {np.abs(ours - theirs).max():.3f}")

    def timed(run: Any) -> tuple[float, float]:
        """Wall time and this process's CPU time (steadier on a shared machine)."""
        if args.device.startswith("cuda"):
            torch.cuda.synchronize()
        wall, cpu = time.perf_counter(), time.process_time()
        run()
        if args.device.startswith("cuda"):
            torch.cuda.synchronize()
        return time.perf_counter() - wall, time.process_time() - cpu

    samples: dict[str, list[tuple[float, float]]] = {"sfumato": [], "diffusers": []}
    for repeat in range(args.repeats):
        pair = [("sfumato", run_sfumato), ("diffusers", run_diffusers)]
        for name, run in pair if repeat % 2 == 0 else reversed(pair):
            samples[name].append(timed(run))
    for kind, column in (("wall", 0), ("cpu", 1)):
        ours_s = [s[column] for s in samples["sfumato"]]
        theirs_s = [s[column] for s in samples["diffusers"]]
        ratios = [a / b for a, b in zip(ours_s, theirs_s, strict=True)]
        print(
            f"{kind:>4} time: sfumato median {statistics.median(ours_s):.3f} s, "
            f"diffusers median {statistics.median(theirs_s):.3f} s, "
            f"ratio median {statistics.median(ratios):.3f} "
            f"(total {sum(ours_s) / sum(theirs_s):.3f}; each: " + ", ".join(f"{r:.3f}" for r in ratios) + ")"
        )
    print("goal: ratio <= 1.03")


if __name__ == "__main__":
    main()
