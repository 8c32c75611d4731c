"""Hires fix with an upscaler model: the first pass's picture enlarged by the model, then the second pass."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from engine_pictures import pixels

from sfumato.core.errors import ModelNotFound
from sfumato.core.request import GenerationRequest, Hires
from sfumato.engine.generate import generate
from sfumato.models.components import Components
from upscaler_files import compact_state, write


def _request(upscaler: str) -> GenerationRequest:
    hires = Hires(upscaler=upscaler, resize_x=112, resize_y=96, denoising_strength=0.3)
    return GenerationRequest(
        prompt="a red circle", steps=4, seed=3, sampler="Euler", width=64, height=64, hires=hires
    )


def test_hires_with_an_upscaler_model(sd1: Components, tmp_path: Path) -> None:
    files = {
        "2x-a": write(tmp_path / "2x-a.safetensors", compact_state(seed=0)),
        "2x-b": write(tmp_path / "2x-b.safetensors", compact_state(seed=1)),
    }

    def resolve(kind: str, name: str) -> Path | None:
        return files.get(name) if kind == "upscaler" else None

    one = generate(sd1, _request("2x-a"), resolve=resolve).images[0]
    assert (
        one.image.size == (112, 96) and one.recipe.hires is not None and one.recipe.hires.upscaler == "2x-a"
    )
    again = generate(sd1, _request("2x-a"), resolve=resolve).images[0]
    other = generate(sd1, _request("2x-b"), resolve=resolve).images[0]
    assert np.array_equal(pixels(one.image), pixels(again.image))
    assert not np.array_equal(pixels(one.image), pixels(other.image))  # the model's pixels matter
    with pytest.raises(ModelNotFound, match="No hires upscaler named 'nope'"):
        generate(sd1, _request("nope"), resolve=resolve)
