"""Peak memory of a large VAE decode in tiles against a small one, on the demo model's VAE.

Each case runs in a fresh process and reports its peak resident memory (``ru_maxrss``) after the
model is loaded and one small warm-up decode has run: a native-size decode (96x96, the baseline),
a 768x768 decode in tiles, and the same 768x768 decode untiled for comparison. Prints each peak, its
growth over the loaded model, and the ratios of the peaks to the baseline's, measured in the same run.

    .venv/bin/python benchmarks/tiled_vae_memory.py
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys

import sfumato  # noqa: F401  (sets the offline flags before Hugging Face imports)

CASES = {"small": (96, False), "large tiled": (768, True), "large untiled": (768, False)}


def peak_kib() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux


def measure(case: str) -> dict[str, int]:
    import torch

    from sfumato.core.settings import Settings
    from sfumato.engine import latents as lat
    from sfumato.models.loading import load_model

    components = load_model(Settings(), None)
    factor = components.vae_scale_factor
    side, tiled = CASES[case]
    generator = torch.Generator().manual_seed(0)
    lat.decode(components, torch.randn((1, 4, 96 // factor, 96 // factor), generator=generator), [])
    loaded = peak_kib()
    latents = torch.randn((1, 4, side // factor, side // factor), generator=generator)
    lat.decode(components, latents, [], tiled=tiled)
    return {"loaded": loaded, "peak": peak_kib()}


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "--case":
        print(json.dumps(measure(sys.argv[2])))
        return
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    results = {}
    for case in CASES:
        out = subprocess.run(
            [sys.executable, __file__, "--case", case], capture_output=True, text=True, check=True, env=env
        ).stdout
        results[case] = json.loads(out.strip().splitlines()[-1])
    for case, r in results.items():
        growth = (r["peak"] - r["loaded"]) / 1024
        print(f"{case:14s} peak {r['peak'] / 1024:8.1f} MiB  (+{growth:.1f} MiB over the loaded model)")
    small = results["small"]["peak"]
    print(f"ratio of peaks, 768x768 tiled / 96x96: {results['large tiled']['peak'] / small:.3f}")
    print(f"ratio of peaks, 768x768 untiled / 96x96: {results['large untiled']['peak'] / small:.3f}")


if __name__ == "__main__":
    main()
