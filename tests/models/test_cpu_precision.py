"""The fast CPU path (``precision = "bf16"``): it runs, its pictures stay within the stated tolerance
of fp32 (docs/performance.md: mean |diff| <= 1.5 and max |diff| <= 24 levels of 255), the demo judge
reads the same scenes, and a CPU without bf16 instructions falls back to fp32 and says so."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

from sfumato.core.request import GenerationRequest
from sfumato.core.settings import Settings
from sfumato.engine.generate import generate
from sfumato.models import cpu_speed
from sfumato.models.loading import demo_model_folder, load_model

MEAN_LEVELS = 1.5
MAX_LEVELS = 24


@pytest.fixture
def bf16_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    """Run the bf16 path on any CPU (emulated where the instructions are missing: slower, same numbers)."""
    monkeypatch.setattr(cpu_speed, "cpu_has_bf16", lambda: True)


def _draw(settings: Settings, model: str | None, request: GenerationRequest) -> tuple[np.ndarray, Any]:
    components = load_model(settings, model, device="cpu")
    image = generate(components, request, preview_every=0).images[0].image
    return np.asarray(image, dtype=np.int16), components


def test_bf16_runs_in_bf16_and_stays_close_to_fp32(
    bf16_cpu: None, tiny_model_folder: Path, tmp_path: Path
) -> None:
    request = GenerationRequest(prompt="a red circle", steps=4, sampler="Euler", seed=5, width=64, height=64)
    exact, _ = _draw(Settings(data_dir=tmp_path, precision="fp32"), str(tiny_model_folder), request)
    fast, components = _draw(Settings(data_dir=tmp_path, precision="bf16"), str(tiny_model_folder), request)
    assert components.dtype == torch.bfloat16
    diff = np.abs(exact - fast)
    assert not np.array_equal(exact, fast)  # it really ran in another precision
    assert diff.mean() <= MEAN_LEVELS and diff.max() <= MAX_LEVELS, (diff.mean(), diff.max())


def test_a_cpu_without_bf16_runs_fp32_and_says_why(
    monkeypatch: pytest.MonkeyPatch, tiny_model_folder: Path, tmp_path: Path
) -> None:
    monkeypatch.setattr(cpu_speed, "cpu_has_bf16", lambda: False)
    components = load_model(
        Settings(data_dir=tmp_path, precision="bf16"), str(tiny_model_folder), device="cpu"
    )
    assert components.dtype == torch.float32
    assert cpu_speed.NO_BF16_NOTE in components.notes


def test_fp32_stays_the_cpu_default(tiny_model_folder: Path, tmp_path: Path) -> None:
    components = load_model(Settings(data_dir=tmp_path), str(tiny_model_folder), device="cpu")
    assert components.dtype == torch.float32


@pytest.mark.builtin_model
@pytest.mark.skipif(
    not (demo_model_folder() / "unet" / "config.json").is_file(), reason="the demo model is not installed"
)
@pytest.mark.parametrize(
    ("prompt", "seed"),
    [
        ("a red circle in the center on a white background", 1),
        ("a large blue square on a yellow background", 2),
    ],
)
def test_bf16_keeps_what_the_judge_reads_on_the_demo_model(
    bf16_cpu: None, tmp_path: Path, prompt: str, seed: int
) -> None:
    from sfumato.demo import judge

    request = GenerationRequest(prompt=prompt, seed=seed, steps=20)
    exact, _ = _draw(Settings(data_dir=tmp_path, precision="fp32"), None, request)
    fast, _ = _draw(Settings(data_dir=tmp_path, precision="bf16"), None, request)
    diff = np.abs(exact - fast)
    assert diff.mean() <= MEAN_LEVELS and diff.max() <= MAX_LEVELS, (diff.mean(), diff.max())
    read = [judge.judge(_image(a)).as_scene() for a in (exact, fast)]
    assert read[0] == read[1]
    assert read[0].objects, read  # the picture holds the object the prompt asked for


def _image(array: np.ndarray) -> Image.Image:
    return Image.fromarray(array.astype(np.uint8), "RGB")
