"""NaN or infinity from a model stops the job with a clear error, and no picture is written."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import torch

from sfumato.core.errors import NonFiniteOutput
from sfumato.core.request import GenerationRequest
from sfumato.core.settings import Settings
from sfumato.jobs.runner import run_request
from sfumato.models.components import Components


@contextmanager
def nan_from(module: torch.nn.Module, after_calls: int) -> Iterator[None]:
    """``module`` returns NaN from its ``after_calls``-th call on (a forward hook, removed afterwards)."""
    calls = 0

    def poison(_module: Any, _args: Any, output: Any) -> Any:
        nonlocal calls
        calls += 1
        if calls < after_calls:
            return output
        if isinstance(output, tuple):
            return (torch.full_like(output[0], float("nan")), *output[1:])
        return torch.full_like(output, float("nan"))

    handle = module.register_forward_hook(poison)
    try:
        yield
    finally:
        handle.remove()


def pictures_under(folder: Path) -> list[Path]:
    return [path for path in folder.rglob("*") if path.is_file() and path.suffix in {".png", ".tmp"}]


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data", output_dir=tmp_path / "outputs")


def test_nan_from_the_unet_mid_job_is_an_error_and_nothing_is_saved(
    sd1: Components, settings: Settings
) -> None:
    request = GenerationRequest(prompt="a red circle", steps=6, seed=3)
    with nan_from(sd1.unet, after_calls=4), pytest.raises(NonFiniteOutput) as raised:
        run_request(settings, request, components=sd1)
    message = str(raised.value)
    assert "UNet" in message and "step 4" in message and "Nothing was saved" in message
    assert pictures_under(settings.outputs) == []
    # The model is fine again once the hook is gone: the next job saves its picture.
    assert run_request(settings, request, components=sd1).pictures[0].file.is_file()


def test_nan_from_a_float32_vae_is_an_error_and_nothing_is_saved(sd1: Components, settings: Settings) -> None:
    request = GenerationRequest(prompt="a red circle", steps=2, seed=3)
    with nan_from(sd1.vae.decoder, after_calls=1), pytest.raises(NonFiniteOutput, match="VAE"):
        run_request(settings, request, components=sd1)
    assert pictures_under(settings.outputs) == []


def test_nan_from_the_text_encoder_is_an_error(sd1: Components, settings: Settings) -> None:
    request = GenerationRequest(prompt="a red circle", steps=2, seed=3)
    norm: torch.nn.Module = getattr(sd1.text_encoder, "final_layer_norm")  # noqa: B009
    with (
        nan_from(norm, after_calls=1),
        pytest.raises(NonFiniteOutput, match="text encoder"),
    ):
        run_request(settings, request, components=sd1)
    assert pictures_under(settings.outputs) == []
