"""The memory estimate before a job: too little free memory (patched) refuses the job before its first
step, saying how much it needs, how much is free and what to do; enough memory runs it."""

from __future__ import annotations

import pytest

from sfumato.core.request import GenerationRequest
from sfumato.engine import memory_check
from sfumato.engine.generate import generate
from sfumato.engine.memory_check import NotEnoughMemory, estimate_bytes
from tiny import tiny_components


def _request(size: int = 64, batch: int = 1, tiled_vae: bool | None = None) -> GenerationRequest:
    return GenerationRequest(
        prompt="a red circle", steps=2, seed=1, width=size, height=size, batch_size=batch, tiled_vae=tiled_vae
    )


def test_too_little_memory_refuses_before_the_first_step(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(memory_check, "available_bytes", lambda _device: 1024)
    steps: list[object] = []
    with pytest.raises(NotEnoughMemory) as refused:
        generate(tiny_components(), _request(batch=2), on_progress=steps.append)
    message = str(refused.value)
    assert "needs about" in message and "0.0 GiB is free" in message and "64x64" in message
    assert "smaller size" in message and "smaller batch size" in message
    assert steps == []


def test_the_tiled_vae_is_suggested_where_it_would_fit(monkeypatch: pytest.MonkeyPatch) -> None:
    # As at large sizes on real models, the decode is the larger part (the tiny UNet is wide for its VAE).
    monkeypatch.setattr(memory_check, "UNET_PER_LATENT_PIXEL", 0)
    components = tiny_components()
    components.native_size = 64
    untiled = estimate_bytes(components, 512, 512, 1, tiled_vae=False)
    tiled = estimate_bytes(components, 512, 512, 1, tiled_vae=True)
    assert tiled < untiled
    monkeypatch.setattr(memory_check, "available_bytes", lambda _device: (tiled + untiled) // 2)
    with pytest.raises(NotEnoughMemory, match="tiled VAE"):
        generate(components, _request(size=512, tiled_vae=False))


def test_enough_memory_runs_the_job(monkeypatch: pytest.MonkeyPatch) -> None:
    components = tiny_components()
    monkeypatch.setattr(
        memory_check,
        "available_bytes",
        lambda _device: estimate_bytes(components, 64, 64, 1, tiled_vae=False),
    )
    result = generate(components, _request(), preview_every=0)
    assert result.images[0].image.size == (64, 64)


def test_the_estimate_grows_with_the_size() -> None:
    components = tiny_components()
    small = estimate_bytes(components, 256, 256, 1, tiled_vae=False)
    assert estimate_bytes(components, 512, 512, 1, tiled_vae=False) == 4 * small
    assert estimate_bytes(components, 256, 256, 2, tiled_vae=False) == 2 * small
