"""A full-size SD1.5-architecture file (random weights, ~2 GiB fp16) loads offline with the shipped config."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest
import torch

from sfumato.models.identify import identify_file
from sfumato.models.loading import load_checkpoint


@pytest.mark.slow
def test_full_size_sd15_loads_offline_and_runs_a_step(tmp_path: Path) -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
    from model_switch import write_full_size_sd15  # pyright: ignore[reportMissingImports]

    path = write_full_size_sd15(tmp_path / "sd15-random.safetensors")

    identity = identify_file(path)
    loaded = load_checkpoint(path, dtype=torch.bfloat16)

    assert (identity.architecture, identity.config_name, identity.has_vae) == ("sd1", "sd1", True)
    unet: Any = loaded.unet
    vae: Any = loaded.vae
    tokens = loaded.tokenizer(
        "a red circle", padding="max_length", max_length=77, return_tensors="pt"
    ).input_ids
    with torch.no_grad():
        context = loaded.text_encoder(tokens).last_hidden_state
        latents = torch.randn(1, 4, 16, 16, generator=torch.Generator().manual_seed(0), dtype=torch.bfloat16)
        noise = unet(latents, 999, context).sample
        image = vae.decode(latents - noise).sample
    assert context.shape == (1, 77, 768)
    assert image.shape == (1, 3, 128, 128)
    assert torch.isfinite(image.float()).all()
