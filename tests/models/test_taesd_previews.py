"""TAESD previews from the user's files: an A1111 ``models/VAE-approx/taesd_decoder.safetensors`` in
madebyollin's numbered layout is found, loaded as diffusers' AutoencoderTiny decoder with the right
weights, and used for the live previews; without one the linear preview stays."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from safetensors.torch import save_file

from sfumato.core.request import GenerationRequest
from sfumato.core.settings import Settings
from sfumato.engine import latents as lat
from sfumato.engine.generate import generate
from sfumato.models.loading import load_model
from sfumato.models.preview_decoder import load_preview_decoder


def _reference_decoder() -> torch.nn.Module:
    from diffusers import AutoencoderTiny

    torch.manual_seed(7)
    model = AutoencoderTiny().eval()
    for parameter in model.parameters():  # away from the default init, so a mis-mapped layer shows
        parameter.data.normal_(0, 0.05)
    return model


def _write_madebyollin_layout(model: torch.nn.Module, path: Path) -> None:
    """The decoder's tensors named as in madebyollin's file: his clamp layer makes them one ahead."""
    tensors = {}
    for key, value in model.state_dict().items():
        if key.startswith("decoder.layers."):
            index, _, rest = key.removeprefix("decoder.layers.").partition(".")
            tensors[f"{int(index) + 1}.{rest}"] = value.contiguous()
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(path))


def test_a_madebyollin_decoder_loads_with_its_weights(tmp_path: Path) -> None:
    reference = _reference_decoder()
    file = tmp_path / "taesd_decoder.safetensors"
    _write_madebyollin_layout(reference, file)
    loaded = load_preview_decoder(file)
    latents = torch.randn(1, 4, 8, 8, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected = reference.decode(latents, return_dict=False)[0]  # pyright: ignore[reportCallIssue]
        got = loaded.decode(latents, return_dict=False)[0]
    assert torch.allclose(expected, got)


def test_previews_use_the_taesd_decoder_from_an_a1111_folder(tiny_model_folder: Path, tmp_path: Path) -> None:
    root = tmp_path / "webui"
    _write_madebyollin_layout(
        _reference_decoder(), root / "models" / "VAE-approx" / "taesd_decoder.safetensors"
    )
    (root / "models" / "Stable-diffusion").mkdir(parents=True)
    settings = Settings(data_dir=tmp_path / "data", model_folders=[root])
    components = load_model(settings, str(tiny_model_folder))
    assert components.preview_decoder is not None

    request = GenerationRequest(prompt="a red circle", steps=2, sampler="Euler", seed=3, width=64, height=64)
    previews = []
    generate(components, request, preview_every=1, on_progress=lambda p: previews.append(p.preview))
    latents = torch.randn(1, 4, 8, 8, generator=torch.Generator().manual_seed(2))
    taesd = np.asarray(lat.preview(components, latents, (64, 64)))
    components.preview_decoder = None
    linear = np.asarray(lat.preview(components, latents, (64, 64)))
    assert all(p is not None and p.size == (64, 64) for p in previews)
    assert not np.array_equal(taesd, linear)


def test_without_a_decoder_the_linear_preview_stays(tiny_model_folder: Path, tmp_path: Path) -> None:
    components = load_model(Settings(data_dir=tmp_path), str(tiny_model_folder))
    assert components.preview_decoder is None
