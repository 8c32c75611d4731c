"""Low-VRAM modes: the offloading hooks run the whole job and change no pixel (on the CPU the parts
move between CPU and CPU, which exercises the same hooks a GPU would)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from sfumato.core.request import GenerationRequest
from sfumato.core.settings import Settings
from sfumato.engine.generate import generate
from sfumato.models.loading import load_model


def _picture(settings: Settings, folder: Path, request: GenerationRequest) -> tuple[np.ndarray, list[str]]:
    components = load_model(settings, str(folder))
    result = generate(components, request, preview_every=0)
    return np.asarray(result.images[0].image), components.notes


@pytest.mark.parametrize("mode", ["medvram", "lowvram"])
def test_a_vram_mode_draws_the_same_picture(tiny_model_folder: Path, tmp_path: Path, mode: str) -> None:
    request = GenerationRequest(prompt="a red circle", steps=3, sampler="Euler", seed=3, width=64, height=64)
    normal, _ = _picture(Settings(data_dir=tmp_path / "a"), tiny_model_folder, request)
    offloaded, notes = _picture(Settings(data_dir=tmp_path / "b", vram_mode=mode), tiny_model_folder, request)
    assert np.array_equal(normal, offloaded)
    assert normal.std() > 0
    assert any(mode in note and "on the CPU it changes nothing" in note for note in notes)


def test_medvram_keeps_the_weights_in_system_memory(tiny_model_folder: Path, tmp_path: Path) -> None:
    components = load_model(Settings(data_dir=tmp_path, vram_mode="medvram"), str(tiny_model_folder))
    assert components.execution_device == torch.device("cpu")
    assert all(p.device.type == "cpu" for p in components.unet.parameters())
