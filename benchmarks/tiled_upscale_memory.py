"""Peak memory of a tiled 4x upscale against one tile's img2img, on the demo model.

Each case runs in a fresh process and reports its peak resident memory (``ru_maxrss``) after the
model is loaded and one warm-up render has run, so what differs is what the render itself holds: one
native-size tile (the baseline), or a 96 -> 384 tiled upscale (36 tiles). Prints both peaks, their
growth over the loaded model, and the ratio of the peaks, measured in the same run.

    .venv/bin/python benchmarks/tiled_upscale_memory.py
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

import sfumato  # noqa: F401  (sets the offline flags before Hugging Face imports)

PROMPT = "a large yellow star in the center on a blue background"


def peak_kib() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux


def measure(case: str) -> dict[str, int]:
    from sfumato.core.request import GenerationRequest
    from sfumato.core.settings import Settings
    from sfumato.demo import world
    from sfumato.engine.generate import generate
    from sfumato.models.loading import load_model

    components = load_model(Settings(), None)
    with tempfile.TemporaryDirectory() as folder:
        picture = Path(folder) / "in.png"
        world.render(world.Scene((world.SceneObject("star", "yellow", "center", "large"),), "blue")).save(
            picture
        )
        tile = GenerationRequest(prompt=PROMPT, init_image=str(picture), denoising_strength=0.2, seed=1)
        generate(components, tile)  # warm-up: lazy allocations, first-call caches
        loaded = peak_kib()
        if case == "tile":
            generate(components, tile)
        else:
            generate(
                components, GenerationRequest.model_validate({**tile.model_dump(), "upscale": {"scale": 4}})
            )
    return {"loaded": loaded, "peak": peak_kib()}


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "--case":
        print(json.dumps(measure(sys.argv[2])))
        return
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    results = {}
    for case in ("tile", "upscale"):
        out = subprocess.run(
            [sys.executable, __file__, "--case", case], capture_output=True, text=True, check=True, env=env
        ).stdout
        results[case] = json.loads(out.strip().splitlines()[-1])
    for case, r in results.items():
        print(
            f"{case:8s} peak {r['peak'] / 1024:8.1f} MiB  (+{(r['peak'] - r['loaded']) / 1024:.1f} MiB over the loaded model)"
        )
    print(
        f"ratio of peaks, 4x upscale / one tile: {results['upscale']['peak'] / results['tile']['peak']:.3f}"
    )


if __name__ == "__main__":
    main()
