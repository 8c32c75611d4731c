"""GPU benchmark: Sfumato's engine against diffusers' own pipeline on the same full-size random-weight
models, in one run: SD1.5 at 512² (batch 1 and 4) and SDXL at 1024², in fp16 and bf16, with and
without ``torch.compile``. Prints it/s (denoising steps per second), seconds per picture, the
Sfumato/diffusers time ratio and peak VRAM; writes the rows as JSON with ``--out``.

Made for a lent GPU (minutes of device time): one command, a few minutes in all.

    python benchmarks/gpu.py                           # everything, on cuda
    python benchmarks/gpu.py --only sd15 --no-compile  # a quick look
    python benchmarks/gpu.py --smoke                   # tiny models on the CPU: checks the script runs

Published anchors (../shared/reference/anchors-style-perf.md): SD1.5 512² on an H100, diffusers
~54 it/s, stable-fast ~105 it/s.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, cast

import sfumato  # noqa: F401  (sets the offline flags before Hugging Face imports)

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

PROMPT = "a photograph of an astronaut riding a horse, detailed, sharp focus"
NEGATIVE = "blurry, low quality"


@dataclass
class Row:
    model: str
    size: int
    batch: int
    dtype: str
    compiled: bool
    engine: str
    steps: int
    seconds_per_batch: float
    seconds_per_picture: float
    its: float  # denoising steps per second (a batch's step counts once, as diffusers' progress bar)
    peak_vram_gib: float
    compile_seconds: float
    ratio_to_diffusers: float = 0.0


def full_size(name: str, device: str, dtype: Any) -> Any:
    """Random full-size components from the configs Sfumato ships (no weights to download)."""
    import torch
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    from sfumato.core.result import ModelInfo
    from sfumato.models.components import Components
    from sfumato.models.loading import config_folder
    from sfumato.models.tokenizer import load_clip_tokenizer

    folder = config_folder("sdxl" if name == "sdxl" else "sd1")
    torch.manual_seed(0)
    with torch.device(device):
        unet_config: Any = UNet2DConditionModel.load_config(str(folder / "unet"))
        vae_config: Any = AutoencoderKL.load_config(str(folder / "vae"))
        unet: Any = UNet2DConditionModel.from_config(unet_config)
        vae: Any = AutoencoderKL.from_config(vae_config)
        text = CLIPTextModel(CLIPTextConfig.from_pretrained(str(folder / "text_encoder")))
        text_2 = (
            CLIPTextModelWithProjection(CLIPTextConfig.from_pretrained(str(folder / "text_encoder_2")))
            if name == "sdxl"
            else None
        )
    scheduler = json.loads((folder / "scheduler" / "scheduler_config.json").read_text())
    for module in (unet, vae, text, text_2):
        if module is not None:
            module.to(dtype).eval()
    return Components(
        unet=unet,
        vae=vae,
        text_encoder=text,
        tokenizer=load_clip_tokenizer(),
        text_encoder_2=text_2,
        tokenizer_2=load_clip_tokenizer("!") if text_2 is not None else None,
        scheduler_config=scheduler,
        info=ModelInfo(name=f"random-{name}"),
        native_size=1024 if name == "sdxl" else 512,
    )


def tiny(device: str, dtype: Any) -> Any:
    from tiny import tiny_components  # pyright: ignore[reportMissingImports]

    components = tiny_components()
    for module in (components.unet, components.vae, components.text_encoder):
        cast(Any, module).to(device=device, dtype=dtype)
    components.native_size = 64
    return components


def diffusers_pipeline(components: Any, scheduler: Any) -> Any:
    from diffusers import StableDiffusionPipeline, StableDiffusionXLPipeline

    if components.text_encoder_2 is not None:
        pipe: Any = StableDiffusionXLPipeline(
            vae=components.vae,
            text_encoder=components.text_encoder,
            text_encoder_2=components.text_encoder_2,
            tokenizer=components.tokenizer,
            tokenizer_2=components.tokenizer_2,
            unet=components.unet,
            scheduler=scheduler,
        )
    else:
        pipe = StableDiffusionPipeline(
            vae=components.vae,
            text_encoder=components.text_encoder,
            tokenizer=components.tokenizer,
            unet=components.unet,
            scheduler=scheduler,
            safety_checker=None,  # pyright: ignore[reportArgumentType]
            feature_extractor=None,  # pyright: ignore[reportArgumentType]
            requires_safety_checker=False,
        )
    pipe.set_progress_bar_config(disable=True)
    return pipe


def measure(run: Callable[[], object], device: str, repeats: int) -> tuple[float, float, float]:
    """(first call's seconds, median seconds of the next ``repeats`` calls, peak VRAM in GiB)."""
    import torch

    def sync() -> None:
        if device.startswith("cuda"):
            torch.cuda.synchronize()

    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    sync()
    start = time.perf_counter()
    run()
    sync()
    first = time.perf_counter() - start
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        sync()
        times.append(time.perf_counter() - start)
    peak = torch.cuda.max_memory_allocated() / 1024**3 if device.startswith("cuda") else 0.0
    return first, statistics.median(times), peak


def bench_case(
    name: str, size: int, batch: int, dtype_name: str, compiled: bool, args: argparse.Namespace
) -> list[Row]:
    import torch

    from sfumato.core.request import GenerationRequest
    from sfumato.engine.generate import generate
    from sfumato.engine.samplers import make_scheduler

    dtype = {"fp16": torch.float16, "bf16": torch.bfloat16, "fp32": torch.float32}[dtype_name]
    components = tiny(args.device, dtype) if args.smoke else full_size(name, args.device, dtype)
    if compiled:
        components.unet = cast(Any, torch.compile(components.unet))
    request = GenerationRequest(
        prompt=PROMPT,
        negative_prompt=NEGATIVE,
        steps=args.steps,
        sampler="Euler",
        seed=1,
        width=size,
        height=size,
        batch_size=batch,
    )
    pipe = diffusers_pipeline(
        components, make_scheduler(request.sampler, request.schedule_type, components.scheduler_config)
    )

    def run_sfumato() -> None:
        generate(components, request, preview_every=0)

    def run_diffusers() -> None:
        generator = torch.Generator(args.device).manual_seed(1)
        with torch.no_grad():
            pipe(
                prompt=PROMPT,
                negative_prompt=NEGATIVE,
                num_inference_steps=args.steps,
                guidance_scale=request.cfg_scale,
                width=size,
                height=size,
                num_images_per_prompt=batch,
                generator=generator,
            )

    rows = []
    for engine, run in (("diffusers", run_diffusers), ("sfumato", run_sfumato)):
        first, median, peak = measure(run, args.device, args.repeats)
        rows.append(
            Row(
                model=name,
                size=size,
                batch=batch,
                dtype=dtype_name,
                compiled=compiled,
                engine=engine,
                steps=args.steps,
                seconds_per_batch=median,
                seconds_per_picture=median / batch,
                its=args.steps / median,
                peak_vram_gib=peak,
                compile_seconds=max(0.0, first - median) if compiled else 0.0,
            )
        )
        print(_line(rows[-1]), flush=True)
    rows[1].ratio_to_diffusers = rows[1].seconds_per_batch / rows[0].seconds_per_batch
    print(f"    sfumato / diffusers time: {rows[1].ratio_to_diffusers:.3f}", flush=True)
    if args.device.startswith("cuda"):
        torch.cuda.empty_cache()
    return rows


def bench_vram_mode(mode: str, args: argparse.Namespace) -> Row:
    """Sfumato alone in a low-VRAM mode (goal for lowvram: SD1.5 512² within 2 GiB of VRAM)."""
    import torch

    from sfumato.core.request import GenerationRequest
    from sfumato.engine.generate import generate
    from sfumato.models.offload import apply_vram_mode

    dtype = torch.float32 if args.smoke else torch.float16
    size = 64 if args.smoke else 512
    components = tiny("cpu", dtype) if args.smoke else full_size("sd15", "cpu", dtype)
    apply_vram_mode(components, cast(Any, mode), torch.device(args.device))
    request = GenerationRequest(
        prompt=PROMPT,
        negative_prompt=NEGATIVE,
        steps=args.steps,
        sampler="Euler",
        seed=1,
        width=size,
        height=size,
    )
    _, median, peak = measure(
        lambda: generate(components, request, preview_every=0), args.device, args.repeats
    )
    row = Row(
        model="sd15",
        size=size,
        batch=1,
        dtype="fp32" if args.smoke else "fp16",
        compiled=False,
        engine=f"sfumato {mode}",
        steps=args.steps,
        seconds_per_batch=median,
        seconds_per_picture=median,
        its=args.steps / median,
        peak_vram_gib=peak,
        compile_seconds=0.0,
    )
    print(_line(row), flush=True)
    return row


def _line(row: Row) -> str:
    compiled = "compiled" if row.compiled else "eager"
    extra = f", compile {row.compile_seconds:.0f} s" if row.compiled else ""
    return (
        f"{row.model} {row.size}² b{row.batch} {row.dtype} {compiled:>8} {row.engine:>9}: "
        f"{row.its:6.2f} it/s, {row.seconds_per_picture:6.3f} s/picture, "
        f"peak VRAM {row.peak_vram_gib:5.2f} GiB{extra}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--only", choices=["sd15", "sdxl"], help="One model family only.")
    parser.add_argument("--dtypes", default="fp16,bf16")
    parser.add_argument("--no-compile", action="store_true", help="Skip the torch.compile rows.")
    parser.add_argument("--smoke", action="store_true", help="Tiny random models on the CPU, 2 steps.")
    parser.add_argument("--out", type=Path, help="Write the rows as JSON here.")
    args = parser.parse_args()

    import torch

    if args.smoke:
        args.device, args.steps, args.repeats, args.dtypes = "cpu", 2, 1, "fp32"
        cases = [("sd15", 64, 1), ("sd15", 64, 2)]
    else:
        if args.device.startswith("cuda") and not torch.cuda.is_available():
            raise SystemExit("No CUDA GPU here; run with --smoke to check the script on the CPU.")
        torch.backends.cuda.matmul.allow_tf32 = True
        cases = [("sd15", 512, 1), ("sd15", 512, 4), ("sdxl", 1024, 1)]
        if args.only:
            cases = [case for case in cases if case[0] == args.only]
    if args.device.startswith("cuda"):
        print(f"GPU: {torch.cuda.get_device_name()}, torch {torch.__version__}", flush=True)
    compile_choices = [False] if args.no_compile or args.smoke else [False, True]
    rows: list[Row] = []
    for name, size, batch in cases:
        for dtype_name in args.dtypes.split(","):
            for compiled in compile_choices:
                if compiled and batch > 1:
                    continue  # compile is measured at batch 1; batch 4 shows the eager scaling
                try:
                    rows += bench_case(name, size, batch, dtype_name, compiled, args)
                except Exception as error:  # one failing case (e.g. out of memory) must not cost the rest
                    print(
                        f"{name} {size}² b{batch} {dtype_name} compiled={compiled}: failed: {error!r}",
                        flush=True,
                    )
    if not args.only or args.only == "sd15":
        for mode in ("medvram", "lowvram"):
            try:
                rows.append(bench_vram_mode(mode, args))
            except Exception as error:
                print(f"sd15 {mode}: failed: {error!r}", flush=True)
    if args.out:
        args.out.write_text(json.dumps([asdict(row) for row in rows], indent=2))
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
