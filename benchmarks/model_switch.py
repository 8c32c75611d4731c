"""Load time of a full-size SD1.5-architecture file (Sfumato vs diffusers' from_single_file), and RSS over switches.

    .venv/bin/python benchmarks/model_switch.py [--folder DIR]

Writes two ~2 GiB random-weight fp16 checkpoints in the original layout (needs ~7 GiB RAM once).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "models"))


def rss_bytes() -> int:
    with open("/proc/self/statm") as handle:  # noqa: PTH123 - Linux-only figure
        return int(handle.read().split()[1]) * 4096


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


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--folder", type=Path, default=None)
    parser.add_argument("--switches", type=int, default=10)
    args = parser.parse_args()
    import torch
    from diffusers import StableDiffusionPipeline

    import sfumato  # noqa: F401 - sets the offline flags first
    from sfumato.models.cache import ModelCache, release_memory
    from sfumato.models.loading import config_folder, load_checkpoint
    from sfumato.models.tokenizer import load_clip_tokenizer

    torch.set_num_threads(2)
    folder = args.folder or Path(tempfile.mkdtemp(prefix="sfumato-bench-"))
    first = folder / "sd15-random-a.safetensors"
    if not first.exists():
        t = time.perf_counter()
        write_full_size_sd15(first)
        print(f"wrote {first} ({first.stat().st_size / 2**30:.2f} GiB) in {time.perf_counter() - t:.1f} s")
    second = folder / "sd15-random-b.safetensors"
    if not second.exists():
        shutil.copyfile(first, second)
    release_memory()

    def sfumato_load() -> None:
        load_checkpoint(first, dtype=torch.float16)

    def diffusers_load() -> None:
        StableDiffusionPipeline.from_single_file(
            str(first),
            config=str(config_folder("sd1")),
            local_files_only=True,
            torch_dtype=torch.float16,
            tokenizer=load_clip_tokenizer(),
            safety_checker=None,
            feature_extractor=None,
        )

    times: dict[str, list[float]] = {"sfumato": [], "diffusers": []}
    for _ in range(2):
        for name, fn in (("diffusers", diffusers_load), ("sfumato", sfumato_load)):
            t = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t)
            release_memory()
    best = {k: min(v) for k, v in times.items()}
    print(
        f"load fp16: sfumato {best['sfumato']:.2f} s, diffusers from_single_file {best['diffusers']:.2f} s, "
        f"ratio {best['sfumato'] / best['diffusers']:.2f} (goal <= 1.0)"
    )

    cache = ModelCache(budget_bytes=1)  # room for one model: every switch must release the other
    paths = [first, second]
    cache.get(str(first), lambda: load_checkpoint(first, dtype=torch.float16))
    release_memory()
    after_first = rss_bytes()
    for i in range(args.switches):
        path = paths[(i + 1) % 2]
        cache.get(str(path), lambda p=path: load_checkpoint(p, dtype=torch.float16))
    release_memory()
    after = rss_bytes()
    print(
        f"RSS after first load {after_first / 2**30:.2f} GiB, after {args.switches} switches "
        f"{after / 2**30:.2f} GiB, ratio {after / after_first:.2f} (goal <= 1.1)"
    )
    if args.folder is None:
        shutil.rmtree(folder)


if __name__ == "__main__":
    main()
