"""CPU speed: Sfumato's fast CPU path against diffusers' StableDiffusionPipeline in fp32, in one run.

Full-size SD1.5 components with random weights (the shipped configs; nothing to download), 512²,
Euler, CFG 7, one thread for both sides. A full-size step takes tens of seconds on these CPUs, so
each side runs a few steps (``--steps``, default 3) and the per-step time is the shortest gap between
step callbacks (the cores are shared; others only slow a step down); the 20-step figure is the run's fixed part (prompt, decode) plus 20 such steps.

Prints, for each side: seconds per step, the extrapolated 20-step picture, and its ratio to diffusers
fp32; the picture difference of the bf16 path against the fp32 one (mean and max, 0-255 levels);
and on the shipped demo model (96², 20 steps, the real thing) the bf16/fp32 difference and whether
the judge reads the same scene.

    python benchmarks/cpu_speed.py                    # diffusers fp32, Sfumato fp32, Sfumato bf16
    python benchmarks/cpu_speed.py --compile          # adds bf16 + compile_unet (compile time apart)
    python benchmarks/cpu_speed.py --unet-only        # one UNet step, fp32 and bf16 taking turns
    python benchmarks/cpu_speed.py --smoke            # tiny models: checks the script runs
"""

from __future__ import annotations

import argparse
import copy
import itertools
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

import sfumato  # noqa: F401  (sets the offline flags before Hugging Face imports)

sys.path.insert(0, str(Path(__file__).resolve().parent))

PROMPT = "a photograph of an astronaut riding a horse, detailed, sharp focus"
NEGATIVE = "blurry, low quality"
DEMO_PROMPTS = (
    ("a red circle in the center on a white background", 1),
    ("a large blue square on a yellow background", 2),
    ("a big yellow star in the middle, black background", 3),
    ("a green triangle on the left, blue background", 4),
)


@dataclass
class Run:
    name: str
    total: float  # seconds for the whole picture at --steps
    step: float  # seconds per step (the fastest)
    steps: int
    picture: np.ndarray
    compile_seconds: float = 0.0

    def at(self, steps: int) -> float:
        """The picture's seconds at ``steps`` steps: the fixed part plus that many steps."""
        return self.total - self.steps * self.step + steps * self.step


def _step_seconds(stamps: list[float]) -> float:
    """The fastest gap between step callbacks: the cores are shared, and others only ever slow a step."""
    return min(b - a for a, b in itertools.pairwise(stamps))


def run_diffusers(components: Any, args: argparse.Namespace) -> Run:
    import torch

    from gpu import diffusers_pipeline  # pyright: ignore[reportMissingImports]
    from sfumato.engine.samplers import make_scheduler

    pipe = diffusers_pipeline(components, make_scheduler("Euler", "Automatic", components.scheduler_config))
    stamps: list[float] = []

    def on_step(_pipe: Any, _i: int, _t: Any, kwargs: dict[str, Any]) -> dict[str, Any]:
        stamps.append(time.perf_counter())
        return kwargs

    start = time.perf_counter()
    with torch.no_grad():
        out: Any = pipe(
            prompt=PROMPT,
            negative_prompt=NEGATIVE,
            num_inference_steps=args.steps,
            guidance_scale=7.0,
            width=args.size,
            height=args.size,
            generator=torch.Generator("cpu").manual_seed(1),
            callback_on_step_end=on_step,
        )
    total = time.perf_counter() - start
    picture = np.asarray(out.images[0].convert("RGB"), dtype=np.int16)
    return Run("diffusers fp32", total, _step_seconds([start, *stamps]), args.steps, picture)


def run_sfumato(name: str, components: Any, args: argparse.Namespace) -> Run:
    from sfumato.core.request import GenerationRequest
    from sfumato.engine.generate import generate

    request = GenerationRequest(
        prompt=PROMPT,
        negative_prompt=NEGATIVE,
        steps=args.steps,
        sampler="Euler",
        cfg_scale=7.0,
        seed=1,
        width=args.size,
        height=args.size,
    )
    stamps: list[float] = []
    start = time.perf_counter()
    result = generate(
        components, request, preview_every=0, on_progress=lambda _p: stamps.append(time.perf_counter())
    )
    total = time.perf_counter() - start
    picture = np.asarray(result.images[0].image.convert("RGB"), dtype=np.int16)
    return Run(name, total, _step_seconds([start, *stamps]), args.steps, picture)


def to_bf16(components: Any) -> Any:
    """What ``precision = "bf16"`` loads: every part's weights in bf16 (in place: no second copy)."""
    import torch

    for part in (components.unet, components.vae, components.text_encoder):
        part.to(torch.bfloat16)
    return components


def compiled(components: Any) -> Any:
    """What ``compile_unet = true`` loads: the sampling loop's UNet compiled with frozen weights."""
    from sfumato.models.compiled_unet import compile_unet

    faster = copy.copy(components)
    faster.notes = []
    compile_unet(faster)
    return faster


def unet_interleaved(components: Any, args: argparse.Namespace) -> None:
    """One guided step of the UNet (batch 2), fp32 and bf16 taking turns: the fairest figure on shared cores."""
    import torch

    fp32 = components.unet
    bf16 = copy.deepcopy(fp32).to(torch.bfloat16)
    latents = torch.randn(2, 4, args.size // 8, args.size // 8, generator=torch.Generator().manual_seed(0))
    hidden = torch.randn(
        2, 77, int(fp32.config.cross_attention_dim), generator=torch.Generator().manual_seed(1)
    )
    times: dict[str, list[float]] = {"fp32": [], "bf16": []}
    outputs: dict[str, Any] = {}
    for _ in range(args.repeats):
        for name, unet in (("fp32", fp32), ("bf16", bf16)):
            dtype = next(unet.parameters()).dtype
            start = time.perf_counter()
            with torch.no_grad():
                out = unet(latents.to(dtype), torch.tensor(500), encoder_hidden_states=hidden.to(dtype))[0]
            times[name].append(time.perf_counter() - start)
            outputs[name] = out.float()
    fp32_s, bf16_s = min(times["fp32"]), min(times["bf16"])
    error = (outputs["bf16"] - outputs["fp32"]).abs().mean() / outputs["fp32"].abs().mean()
    print(
        f"UNet step, turns of {args.repeats}: fp32 {fp32_s:.2f} s, bf16 {bf16_s:.2f} s, "
        f"fp32 / bf16 {fp32_s / bf16_s:.2f}x; bf16 noise prediction off by {float(error):.4f} (relative mean)",
        flush=True,
    )


def demo_check() -> None:
    """bf16 against fp32 on the shipped demo model: pixel difference and the judge's reading."""
    from sfumato.core.request import GenerationRequest
    from sfumato.core.settings import Settings
    from sfumato.demo import judge
    from sfumato.engine.generate import generate
    from sfumato.models.loading import load_model

    fp32 = load_model(Settings(precision="fp32"), None)
    bf16 = load_model(Settings(precision="bf16"), None)
    means, maxes, same = [], [], 0
    for prompt, seed in DEMO_PROMPTS:
        request = GenerationRequest(prompt=prompt, seed=seed, steps=20, sampler="Euler a")
        a, b = (generate(c, request, preview_every=0).images[0].image for c in (fp32, bf16))
        diff = np.abs(np.asarray(a, dtype=np.int16) - np.asarray(b, dtype=np.int16))
        means.append(float(diff.mean()))
        maxes.append(int(diff.max()))
        same += judge.judge(a).as_scene() == judge.judge(b).as_scene()
    print(
        f"demo model, 20 steps, {len(DEMO_PROMPTS)} prompts ({bf16.dtype}): bf16 vs fp32 mean |diff| "
        f"{max(means):.2f} (worst picture), max |diff| {max(maxes)}; judge reads the same scene "
        f"{same}/{len(DEMO_PROMPTS)}",
        flush=True,
    )


def main() -> None:
    import torch

    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--steps", type=int, default=3, help="steps each side runs (default 3)")
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--compile", action="store_true", help="also bf16 + torch.compile (inductor)")
    parser.add_argument("--smoke", action="store_true", help="tiny random models, 64²")
    parser.add_argument("--unet-only", action="store_true", help="only fp32/bf16 UNet steps, taking turns")
    parser.add_argument("--repeats", type=int, default=3, help="turns for --unet-only")
    parser.add_argument("--no-demo", action="store_true", help="skip the demo-model picture check")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    from sfumato.models.cpu_speed import cpu_has_bf16

    print(f"CPU bf16 instructions: {cpu_has_bf16()}; threads {args.threads}; {args.steps} steps", flush=True)
    if args.smoke:
        from gpu import tiny  # pyright: ignore[reportMissingImports]

        components = tiny("cpu", torch.float32)
        args.size = 64
    else:
        from gpu import full_size  # pyright: ignore[reportMissingImports]

        components = full_size("sd15", "cpu", torch.float32)
    if args.unet_only:
        unet_interleaved(components, args)
        return
    runs = [run_diffusers(components, args), run_sfumato("sfumato fp32", components, args)]
    # diffusers again after Sfumato fp32: the baseline is the faster of two runs around it
    again = run_diffusers(components, args)
    if again.step < runs[0].step:
        runs[0] = again
    runs.append(run_sfumato("sfumato bf16", to_bf16(components), args))
    if args.compile:
        fast = compiled(components)
        first = run_sfumato("sfumato bf16 + compile", fast, args)
        again = run_sfumato("sfumato bf16 + compile", fast, args)
        again.compile_seconds = first.total - again.total
        runs.append(again)
    base = runs[0]
    for run in runs:
        diff = np.abs(run.picture - runs[1].picture)
        extra = f", compile {run.compile_seconds:.1f} s once" if run.compile_seconds else ""
        print(
            f"{run.name:26s} {run.step:7.2f} s/step  20 steps {run.at(20):7.1f} s  "
            f"diffusers fp32 / this: {base.at(20) / run.at(20):.2f}x (per step {base.step / run.step:.2f}x)  "
            f"vs sfumato fp32 mean |diff| {diff.mean():.2f} max {int(diff.max())}{extra}",
            flush=True,
        )
    if not args.no_demo:
        demo_check()


if __name__ == "__main__":
    main()
