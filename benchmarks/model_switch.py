"""Load time of a full-size SD1.5-architecture file (Sfumato vs diffusers' from_single_file), and RSS over switches.

    .venv/bin/python benchmarks/model_switch.py [--folder DIR] [--repeats 5] [--switches 10]

Writes two ~2 GiB random-weight fp16 checkpoints in the original layout (needs ~7 GiB RAM once) in a
temporary folder that is deleted afterwards (``--folder`` keeps them for the next run).

Safetensors tensors are memory-mapped: a load that returns before reading them measures nothing.
Every load here is timed until every page of every weight is resident (each tensor is touched once
per memory page), so both paths pay for reading the whole file. The two paths alternate in the same
process; the figures are medians. The file sits in the page cache after it is written, so this
compares the loaders, not the disk.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "models"))

PAGE = 4096
DTYPES = {"fp16": "float16", "bf16": "bfloat16", "fp32": "float32"}


def rss_bytes() -> int:
    with open("/proc/self/statm") as handle:  # noqa: PTH123 - Linux-only figure
        return int(handle.read().split()[1]) * PAGE


def write_full_size_sd15(path: Path) -> Path:
    import torch
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from ldm_writer import checkpoint_to_ldm, write_checkpoint  # pyright: ignore[reportMissingImports]
    from transformers import CLIPTextConfig, CLIPTextModel

    from sfumato.models.loading import config_folder

    folder = config_folder("sd1")
    torch.manual_seed(0)
    unet: Any = UNet2DConditionModel.from_config(UNet2DConditionModel.load_config(str(folder / "unet")))  # pyright: ignore
    vae: Any = AutoencoderKL.from_config(AutoencoderKL.load_config(str(folder / "vae")))  # pyright: ignore
    text = CLIPTextModel(CLIPTextConfig.from_pretrained(str(folder / "text_encoder")))
    for module in (unet, vae, text):
        module.half()
    state = checkpoint_to_ldm(unet, vae, text, architecture="sd1")
    del unet, vae, text
    return write_checkpoint(path, state)


def make_resident(modules: Iterable[Any]) -> int:
    """Read one element of every memory page of every weight; returns the bytes covered."""
    total = 0
    for module in modules:
        if module is None:
            continue
        for tensor in (*module.parameters(), *module.buffers()):
            flat = tensor.detach().reshape(-1)
            step = max(1, PAGE // flat.element_size())
            flat[::step].float().sum().item()
            total += flat.numel() * flat.element_size()
    return total


def _timed(load: Callable[[], Any], modules: Callable[[Any], Iterable[Any]]) -> tuple[float, int]:
    from sfumato.models.cache import release_memory

    start = time.perf_counter()
    loaded = load()
    size = make_resident(modules(loaded))
    elapsed = time.perf_counter() - start
    del loaded
    release_memory()
    return elapsed, size


def compare_load_times(path: Path, repeats: int, dtype: torch.dtype) -> None:
    from diffusers import StableDiffusionPipeline

    from sfumato.models.loading import config_folder, load_checkpoint
    from sfumato.models.tokenizer import load_clip_tokenizer

    def sfumato_load() -> Any:
        return load_checkpoint(path, dtype=dtype)

    def diffusers_load() -> Any:
        return StableDiffusionPipeline.from_single_file(
            str(path),
            config=str(config_folder("sd1")),
            local_files_only=True,
            torch_dtype=dtype,
            tokenizer=load_clip_tokenizer(),
            safety_checker=None,
            feature_extractor=None,
        )

    def parts(loaded: Any) -> list[Any]:
        return [loaded.unet, loaded.vae, loaded.text_encoder]

    paths = {"sfumato": sfumato_load, "diffusers": diffusers_load}
    for load in paths.values():  # warm-up: imports, tokenizer files, the page cache
        _timed(load, parts)
    times: dict[str, list[float]] = {name: [] for name in paths}
    sizes: dict[str, int] = {}
    for repeat in range(repeats):
        order = list(paths) if repeat % 2 else list(reversed(paths))
        for name in order:
            elapsed, sizes[name] = _timed(paths[name], parts)
            times[name].append(elapsed)
    median = {name: statistics.median(values) for name, values in times.items()}
    for name, values in times.items():
        print(
            f"  {name:9s} {' '.join(f'{v:.2f}' for v in values)} s ({sizes[name] / 2**30:.2f} GiB resident)"
        )
    print(
        f"load {str(dtype).removeprefix('torch.')} incl. resident weights (median of {repeats}): sfumato {median['sfumato']:.2f} s, "
        f"diffusers from_single_file {median['diffusers']:.2f} s, "
        f"ratio {median['sfumato'] / median['diffusers']:.2f} (goal <= 1.0)"
    )


def measure_switches(first: Path, second: Path, switches: int, dtype: torch.dtype) -> None:
    from sfumato.models.cache import ModelCache, release_memory
    from sfumato.models.loading import load_checkpoint

    def parts(loaded: Any) -> list[Any]:
        return [loaded.unet, loaded.vae, loaded.text_encoder, loaded.text_encoder_2]

    cache = ModelCache(budget_bytes=1)  # room for one model: every switch must release the other
    loaded = cache.get(str(first), lambda: load_checkpoint(first, dtype=dtype))
    make_resident(parts(loaded))
    del loaded
    release_memory()
    after_first = rss_bytes()
    peak = after_first
    paths = [first, second]
    for i in range(switches):
        path = paths[(i + 1) % 2]
        loaded = cache.get(str(path), lambda p=path: load_checkpoint(p, dtype=dtype))
        make_resident(parts(loaded))
        del loaded
        peak = max(peak, rss_bytes())
    release_memory()
    after = rss_bytes()
    print(
        f"RSS with weights resident: after first load {after_first / 2**30:.2f} GiB, after {switches} "
        f"switches {after / 2**30:.2f} GiB (highest between switches {peak / 2**30:.2f} GiB), "
        f"ratio {after / after_first:.2f} (goal <= 1.1)"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--folder", type=Path, default=None, help="keep the checkpoints here for later runs")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--switches", type=int, default=10)
    parser.add_argument(
        "--dtype", choices=DTYPES, default="fp16", help="the loaded weights' dtype (the file is fp16)"
    )
    args = parser.parse_args()
    import torch

    import sfumato  # noqa: F401 - sets the offline flags first

    torch.set_num_threads(1)  # loading is single-threaded; one core is busy with other work here
    folder = args.folder or Path(tempfile.mkdtemp(prefix="sfumato-bench-"))
    try:
        folder.mkdir(parents=True, exist_ok=True)
        first = folder / "sd15-random-a.safetensors"
        if not first.exists():
            start = time.perf_counter()
            write_full_size_sd15(first)
            print(
                f"wrote {first} ({first.stat().st_size / 2**30:.2f} GiB) in {time.perf_counter() - start:.1f} s"
            )
        second = folder / "sd15-random-b.safetensors"
        if not second.exists():
            shutil.copyfile(first, second)
        dtype = getattr(torch, DTYPES[args.dtype])
        compare_load_times(first, args.repeats, dtype)
        measure_switches(first, second, args.switches, dtype)
    finally:
        if args.folder is None:
            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
