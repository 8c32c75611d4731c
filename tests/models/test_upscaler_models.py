"""Upscaler files through spandrel, on random weights: found, identified, refused, loaded, run tiled."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from sfumato.core.errors import ModelNotFound, UnsafeModelFile, UnsupportedModel
from sfumato.core.settings import Settings
from sfumato.models.library import ModelLibrary
from sfumato.models.safety import convert_to_safetensors
from sfumato.models.upscalers import (
    find_upscaler,
    identify_upscaler,
    load_upscaler,
    open_upscaler,
    run_tiled,
    scale_from_name,
)
from upscaler_files import compact_state, esrgan_state, write

CPU = torch.device("cpu")


def _load(path: Path):
    return load_upscaler(path, device=CPU, dtype=torch.float32)


@pytest.fixture
def a1111(tmp_path: Path) -> Path:
    """An A1111 install's models folder and a ComfyUI one, each with upscalers."""
    root = tmp_path / "webui"
    write(root / "models" / "ESRGAN" / "4x-tiny-esrgan.safetensors", esrgan_state())
    write(root / "models" / "RealESRGAN" / "2x-tiny-compact.safetensors", compact_state())
    torch.save({"params_ema": compact_state(seed=3)}, root / "models" / "RealESRGAN" / "2x-pickled.pth")
    write(tmp_path / "comfy" / "models" / "upscale_models" / "comfy-x2.safetensors", compact_state(seed=1))
    write(root / "models" / "DAT" / "not-an-upscaler.safetensors", {"foo.weight": torch.zeros(2, 2)})
    return tmp_path


def test_upscalers_are_listed_with_spandrel_architectures(a1111: Path) -> None:
    library = ModelLibrary(Settings(model_folders=[a1111 / "webui", a1111 / "comfy"]))
    found = {e.name: e.architecture for e in library.entries(identify=True) if e.kind == "upscaler"}
    assert found == {
        "4x-tiny-esrgan": "ESRGAN",
        "2x-tiny-compact": "RealESRGAN Compact",
        "2x-pickled": "unsafe",
        "comfy-x2": "RealESRGAN Compact",
        "not-an-upscaler": "unknown",
    }


def test_loaded_upscalers_know_their_architecture_and_scale(a1111: Path) -> None:
    esrgan = _load(a1111 / "webui" / "models" / "ESRGAN" / "4x-tiny-esrgan.safetensors")
    compact = _load(a1111 / "webui" / "models" / "RealESRGAN" / "2x-tiny-compact.safetensors")
    assert (esrgan.architecture, esrgan.scale) == ("ESRGAN", 4)
    assert (compact.architecture, compact.scale) == ("RealESRGAN Compact", 2)
    assert esrgan(torch.rand(1, 3, 12, 10)).shape == (1, 3, 48, 40)
    assert scale_from_name("RealESRGAN_x4plus") == 4 and scale_from_name("2x-tiny-compact") == 2
    assert scale_from_name("UltraSharp") is None


def test_pickled_upscalers_are_refused_and_converted_with_their_params_ema(a1111: Path) -> None:
    pickled = a1111 / "webui" / "models" / "RealESRGAN" / "2x-pickled.pth"
    settings = Settings(model_folders=[a1111 / "webui"])
    with pytest.raises(UnsafeModelFile, match="sfumato models convert"):
        open_upscaler(settings, "2x-pickled")
    converted = convert_to_safetensors(pickled)
    model = _load(converted)
    assert model.architecture == "RealESRGAN Compact" and model.scale == 2
    expected = compact_state(seed=3)["body.0.weight"]
    assert torch.equal(model.network.state_dict()["body.0.weight"], expected)


def test_unknown_architecture_and_unknown_name_are_clear_errors(a1111: Path) -> None:
    odd = a1111 / "webui" / "models" / "DAT" / "not-an-upscaler.safetensors"
    with pytest.raises(UnsupportedModel, match="not an upscaler architecture Sfumato knows"):
        identify_upscaler(odd)
    with pytest.raises(UnsupportedModel, match="not an upscaler architecture Sfumato knows"):
        _load(odd)
    settings = Settings(model_folders=[a1111 / "webui"])
    with pytest.raises(ModelNotFound, match="No upscaler named 'nope'"):
        find_upscaler(settings, "nope")
    with pytest.raises(ModelNotFound):  # a client's string is a name, never a path
        find_upscaler(settings, str(a1111 / "webui" / "models" / "ESRGAN" / "4x-tiny-esrgan.safetensors"))


@pytest.mark.parametrize(
    ("state", "overlap"), [(compact_state, 8), (esrgan_state, 32)], ids=["compact", "esrgan"]
)
def test_tiled_equals_untiled_and_is_deterministic(tmp_path: Path, state, overlap: int) -> None:
    model = _load(write(tmp_path / "up.safetensors", state()))
    rng = np.random.default_rng(0)
    pixels = torch.from_numpy(rng.random((1, 3, 45, 38), dtype=np.float32))
    whole = run_tiled(model, pixels, tile=1000, overlap=0)
    tiled = run_tiled(model, pixels, tile=16, overlap=overlap)
    assert whole.shape == (1, 3, 45 * model.scale, 38 * model.scale)
    assert torch.allclose(tiled, whole, atol=1e-5)
    assert torch.equal(run_tiled(model, pixels, tile=16, overlap=overlap), tiled)
    # without context, tile seams show: the overlap is what makes tiling exact
    assert not torch.allclose(run_tiled(model, pixels, tile=16, overlap=0), whole, atol=1e-3)


def test_upscale_picture_keeps_alpha(tmp_path: Path) -> None:
    from sfumato.core.postprocess import UpscaleStep
    from sfumato.postprocess.upscale import upscale_picture

    model = _load(write(tmp_path / "up.safetensors", compact_state()))
    picture = Image.new("RGBA", (20, 10), (200, 10, 10, 128))
    step = UpscaleStep(upscaler="up", scale=3)
    bigger = upscale_picture(picture, step, max_side=2048, model=model)
    assert bigger.size == (60, 30) and bigger.mode == "RGBA"
    assert bigger.getpixel((30, 15))[3] == 128  # type: ignore[index]


def test_half_precision_runs_and_falls_back_to_float32_when_it_overflows(tmp_path: Path) -> None:
    state = compact_state()
    pixels = torch.rand(1, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    half = load_upscaler(write(tmp_path / "a.safetensors", state), device=CPU, dtype=torch.float16)
    full = _load(tmp_path / "a.safetensors")
    assert half.dtype == torch.float16
    assert torch.allclose(half(pixels), full(pixels), atol=5e-3)
    # activations past float16's range (65504): the model is run again, and kept, in float32
    loud = {
        **state,
        "body.0.weight": state["body.0.weight"] * 1e4,
        "body.2.weight": state["body.2.weight"] * 1e4,
    }
    overflowing = load_upscaler(write(tmp_path / "b.safetensors", loud), device=CPU, dtype=torch.float16)
    out = overflowing(pixels)
    assert overflowing.dtype == torch.float32 and bool(torch.isfinite(out).all())
    assert torch.equal(out, _load(tmp_path / "b.safetensors")(pixels))
