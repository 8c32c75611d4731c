"""What a cache of prompt encodings across jobs could save: one job's prompt and negative encoded,
against the whole picture, on full-size SD1.5 (random weights, fp32) and on the shipped demo model.

    python benchmarks/prompt_encode_cost.py            # one thread, fastest of 5
    python benchmarks/prompt_encode_cost.py --smoke    # tiny model only: checks the script runs
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import sfumato  # noqa: F401  (sets the offline flags before Hugging Face imports)

sys.path.insert(0, str(Path(__file__).resolve().parent))

PROMPT = "a photograph of an astronaut riding a horse, detailed, sharp focus"
NEGATIVE = "blurry, low quality"


def share(name: str, components: object, size: int, steps: int, repeats: int) -> None:
    from preview_cost import fastest  # pyright: ignore[reportMissingImports]
    from sfumato.core.request import GenerationRequest
    from sfumato.engine.generate import generate
    from sfumato.prompts.encoder import encode_prompt

    encode = fastest(lambda: [encode_prompt(components, t, steps=steps) for t in (PROMPT, NEGATIVE)], repeats)  # pyright: ignore[reportArgumentType]
    request = GenerationRequest(
        prompt=PROMPT, negative_prompt=NEGATIVE, seed=1, steps=steps, width=size, height=size
    )
    picture = fastest(lambda: generate(components, request, preview_every=0), max(1, repeats // 2))  # pyright: ignore[reportArgumentType]
    print(
        f"{name}: prompt + negative encoded in {encode * 1000:.1f} ms; the {steps}-step {size}² picture "
        f"{picture:.2f} s; encoding / picture {encode / picture:.2%}",
        flush=True,
    )


def main() -> None:
    import torch

    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--sd15-steps", type=int, default=2, help="steps of the full-size picture (slow)")
    parser.add_argument("--smoke", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(1)
    if args.smoke:
        from gpu import tiny  # pyright: ignore[reportMissingImports]

        share("tiny", tiny("cpu", torch.float32), 64, 4, 2)
        return
    from gpu import full_size  # pyright: ignore[reportMissingImports]
    from sfumato.core.settings import Settings
    from sfumato.models.loading import load_model

    share("SD1.5 fp32", full_size("sd15", "cpu", torch.float32), 512, args.sd15_steps, args.repeats)
    share("demo model", load_model(Settings(), None), 96, 20, args.repeats)


if __name__ == "__main__":
    main()
