"""``compile_unet = true``: the sampling loop runs the compiled UNet (inductor, frozen weights) and draws
the plain UNet's picture within the CPU tolerance (docs/performance.md), the demo judge reads the same
scene; a LoRA on the UNet still takes effect (its prompt runs the plain UNet, the next one the compiled
one again); a compile that fails leaves the plain UNet running, with a note."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image
from test_cpu_precision import MAX_LEVELS, MEAN_LEVELS

from lora_files import write_lora
from sfumato.core.request import GenerationRequest
from sfumato.core.settings import Settings
from sfumato.demo import judge
from sfumato.engine.generate import generate
from sfumato.models.components import Components
from sfumato.models.loading import load_model
from sfumato.prompts.networks import FolderResolver

# The first compiled call compiles: about 30 s for the demo model.
pytestmark = [pytest.mark.builtin_model, pytest.mark.timeout(600)]


class Counted:
    """The compiled UNet, counting the sampling loop's calls."""

    def __init__(self, unet: Any) -> None:
        self.unet = unet
        self.calls = 0

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        self.calls += 1
        return self.unet(*args, **kwargs)


@pytest.fixture(scope="module")
def plain() -> Components:
    return load_model(Settings(), None, device="cpu")


@pytest.fixture(scope="module")
def compiled() -> Components:
    components = load_model(Settings(compile_unet=True), None, device="cpu")
    components.fast_unet = Counted(components.fast_unet)
    return components


def _draw(components: Components, prompt: str, seed: int, folder: Path | None = None) -> Image.Image:
    request = GenerationRequest(prompt=prompt, seed=seed, steps=20, sampler="Euler a")
    resolve = FolderResolver([folder]) if folder is not None else None
    return generate(components, request, preview_every=0, resolve=resolve).images[0].image


def _pixels(components: Components, prompt: str, seed: int, folder: Path | None = None) -> np.ndarray:
    return np.asarray(_draw(components, prompt, seed, folder), dtype=np.int16)


def test_the_compiled_unet_draws_the_plain_picture_and_a_lora_still_counts(
    plain: Components, compiled: Components, tmp_path: Path
) -> None:
    prompts = (
        ("a red circle in the center on a white background", 1),
        ("a large blue square on a yellow background", 2),
    )
    for prompt, seed in prompts:
        before = compiled.fast_unet.calls
        exact, fast = _draw(plain, prompt, seed), _draw(compiled, prompt, seed)
        assert compiled.fast_unet.calls - before == 20  # every step ran the compiled UNet
        diff = np.abs(np.asarray(exact, dtype=np.int16) - np.asarray(fast, dtype=np.int16))
        assert diff.mean() <= MEAN_LEVELS and diff.max() <= MAX_LEVELS, (diff.mean(), diff.max())
        assert judge.judge(exact).as_scene() == judge.judge(fast).as_scene()
    assert compiled.fast_unet.unet.failed is None and compiled.notes == plain.notes

    write_lora(plain, tmp_path / "Lora" / "style.safetensors", scale=1.0)
    prompt = "a red circle in the center on a white background <lora:style:1>"
    before = compiled.fast_unet.calls
    with_lora = _pixels(compiled, prompt, 1, tmp_path)
    assert compiled.fast_unet.calls == before  # the frozen weights would not have the LoRA
    assert np.abs(with_lora - _pixels(plain, prompt, 1, tmp_path)).max() <= MAX_LEVELS
    assert np.abs(with_lora - _pixels(plain, prompts[0][0], 1)).mean() > 5  # the LoRA changed the picture
    _draw(compiled, prompts[0][0], 1)
    assert compiled.fast_unet.calls == before + 20  # and the compiled UNet is back for the next prompt


def test_a_compile_that_fails_leaves_the_plain_unet_with_a_note(
    plain: Components, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_compiler(*_: Any, **__: Any) -> Any:
        def fails(*_: Any, **__: Any) -> Any:
            raise RuntimeError("InvalidCxxCompiler: No working C++ compiler found")

        return fails

    monkeypatch.setattr(torch, "compile", no_compiler)
    broken = load_model(Settings(compile_unet=True), None, device="cpu")
    prompt, seed = "a big yellow star in the middle, black background", 3
    assert np.array_equal(_pixels(broken, prompt, seed), _pixels(plain, prompt, seed))
    assert any("compiled UNet could not be used (RuntimeError: InvalidCxxCompiler" in n for n in broken.notes)
