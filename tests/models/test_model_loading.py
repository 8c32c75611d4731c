"""Original-layout single files load offline into the exact weights they were written from."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from tiny_ldm import TinyModel, build_tiny

from sfumato.core.errors import CorruptModelFile, NoModelConfigured, UnsupportedModel
from sfumato.core.settings import Settings
from sfumato.models.cache import ModelCache
from sfumato.models.identify import identify_file
from sfumato.models.loading import load_checkpoint, load_model
from sfumato.models.safety import read_safetensors_header


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> dict[str, TinyModel]:
    root = tmp_path_factory.mktemp("tiny-models")
    return {arch: build_tiny(arch, root / arch) for arch in ("sd1", "sd2", "sdxl", "sdxl-refiner")}


def _unet_out(unet: torch.nn.Module, context: int, sdxl: int | None = None) -> torch.Tensor:
    torch.manual_seed(1)
    sample = torch.randn(1, unet.config.in_channels, 8, 8)  # pyright: ignore
    hidden = torch.randn(1, 77, context)
    extra = None
    if sdxl is not None:
        extra = {"text_embeds": torch.randn(1, 64), "time_ids": torch.randn(1, sdxl)}
    with torch.no_grad():
        return unet(sample, 10, hidden, added_cond_kwargs=extra).sample


@pytest.mark.parametrize(
    ("arch", "context", "time_ids"),
    [("sd1", 32, None), ("sd2", 48, None), ("sdxl", 96, 6), ("sdxl-refiner", 64, 5)],
)
def test_single_file_loads_offline_with_identical_outputs(
    tiny: dict[str, TinyModel], tmp_path: Path, arch: str, context: int, time_ids: int | None
) -> None:
    model = tiny[arch]
    path = model.write(tmp_path / f"{arch}-model.safetensors")

    identity = identify_file(path)
    loaded = load_checkpoint(path, config_dir=model.config_dir)

    assert identity.architecture == arch
    assert identity.has_vae
    assert loaded.info.architecture == arch
    # same weights; kernels may pick another summation order for differently laid-out tensors
    torch.testing.assert_close(
        _unet_out(loaded.unet, context, time_ids), _unet_out(model.unet, context, time_ids), atol=1e-6, rtol=0
    )
    image = torch.randn(1, 3, 16, 16, generator=torch.Generator().manual_seed(2))
    vae_in: Any = model.vae
    vae_out: Any = loaded.vae
    with torch.no_grad():
        expected = vae_in.decode(vae_in.encode(image).latent_dist.mean).sample
        got = vae_out.decode(vae_out.encode(image).latent_dist.mean).sample
    torch.testing.assert_close(got, expected, atol=1e-6, rtol=0)
    ids = torch.tensor([[49406, 320, 1125, 49407] + [49407] * 73])
    encoders = [(model.text_encoder, loaded.text_encoder), (model.text_encoder_2, loaded.text_encoder_2)]
    if arch == "sdxl-refiner":
        encoders = [(model.text_encoder_2, loaded.text_encoder)]
    with torch.no_grad():
        for source, target in encoders:
            if source is None:
                assert target is None
                continue
            assert target is not None
            torch.testing.assert_close(
                target(ids).last_hidden_state, source(ids).last_hidden_state, atol=1e-6, rtol=0
            )


def test_sdxl_has_both_tokenizers_with_the_right_padding(tiny: dict[str, TinyModel], tmp_path: Path) -> None:
    model = tiny["sdxl"]
    loaded = load_checkpoint(model.write(tmp_path / "xl.safetensors"), config_dir=model.config_dir)

    assert loaded.is_sdxl
    assert loaded.tokenizer.pad_token == "<|endoftext|>"
    assert loaded.tokenizer_2 is not None and loaded.tokenizer_2.pad_token == "!"


def test_fp16_file_with_ema_and_old_clip_keys_loads_the_non_ema_weights(
    tiny: dict[str, TinyModel], tmp_path: Path
) -> None:
    model = tiny["sd1"]
    path = model.write(
        tmp_path / "old-style.safetensors", dtype=torch.float16, ema=True, with_text_model=False
    )

    assert any(
        k.startswith("cond_stage_model.transformer.embeddings.")
        for k in read_safetensors_header(path).tensors
    )
    loaded = load_checkpoint(path, config_dir=model.config_dir, dtype=torch.float32)

    for key, value in model.unet.state_dict().items():
        assert torch.equal(loaded.unet.state_dict()[key], value.half().float()), key
    ids = torch.tensor([[49406, 320, 49407]])
    with torch.no_grad():
        torch.testing.assert_close(
            loaded.text_encoder(ids).last_hidden_state,
            model.text_encoder(ids).last_hidden_state,
            atol=2e-2,
            rtol=0,
        )


def test_inpainting_checkpoint_is_identified_and_loaded(tmp_path: Path) -> None:
    model = build_tiny("sd1", tmp_path / "cfg", inpainting=True)
    path = model.write(tmp_path / "inpaint.safetensors")

    identity = identify_file(path)
    loaded = load_checkpoint(path, config_dir=model.config_dir)

    assert identity.inpainting and identity.config_name == "sd1-inpainting"
    assert loaded.is_inpainting


def test_prediction_override_sets_the_scheduler(tiny: dict[str, TinyModel], tmp_path: Path) -> None:
    model = tiny["sd1"]
    path = model.write(tmp_path / "vpred.safetensors")

    loaded = load_checkpoint(path, config_dir=model.config_dir, prediction="v")

    assert loaded.prediction_type == "v_prediction"


def test_separate_vae_replaces_the_embedded_one(tiny: dict[str, TinyModel], tmp_path: Path) -> None:
    from ldm_writer import vae_to_ldm, write_checkpoint

    model = tiny["sd1"]
    other = build_tiny("sd1", tmp_path / "other", seed=5)
    vae_file = write_checkpoint(tmp_path / "my.vae.safetensors", vae_to_ldm(other.vae))

    loaded = load_checkpoint(
        model.write(tmp_path / "m.safetensors"), config_dir=model.config_dir, vae_path=vae_file
    )

    for key, value in other.vae.state_dict().items():
        assert torch.equal(loaded.vae.state_dict()[key], value), key


def test_vae_for_another_architecture_is_refused_clearly(tiny: dict[str, TinyModel], tmp_path: Path) -> None:
    from ldm_writer import vae_to_ldm, write_checkpoint

    model = tiny["sd1"]
    foreign = build_tiny("sd1", tmp_path / "foreign", latent_channels=16, vae_channels=(16, 32))
    vae_file = write_checkpoint(tmp_path / "flux-like-vae.safetensors", vae_to_ldm(foreign.vae))

    with pytest.raises(UnsupportedModel, match="does not fit this model's architecture"):
        load_checkpoint(
            model.write(tmp_path / "m.safetensors"), config_dir=model.config_dir, vae_path=vae_file
        )


def test_a_vae_file_is_not_taken_for_a_checkpoint(tiny: dict[str, TinyModel], tmp_path: Path) -> None:
    from ldm_writer import vae_to_ldm, write_checkpoint

    vae_file = write_checkpoint(tmp_path / "vae.safetensors", vae_to_ldm(tiny["sd1"].vae))

    with pytest.raises(UnsupportedModel, match="is a vae, not a Stable Diffusion checkpoint"):
        load_checkpoint(vae_file)


def test_checkpoint_missing_weights_is_reported_as_incomplete(
    tiny: dict[str, TinyModel], tmp_path: Path
) -> None:
    from ldm_writer import write_checkpoint

    model = tiny["sd1"]
    state = {k: v for k, v in model.state().items() if "output_blocks.1." not in k}
    path = write_checkpoint(tmp_path / "partial.safetensors", state)

    with pytest.raises((CorruptModelFile, UnsupportedModel)):
        load_checkpoint(path, config_dir=model.config_dir)


def test_no_model_anywhere_says_how_to_point_at_one(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import sfumato.models.loading as loading

    monkeypatch.setattr(loading, "demo_model_folder", lambda: tmp_path / "no-demo")

    with pytest.raises(NoModelConfigured) as caught:
        load_model(Settings())

    text = str(caught.value)
    assert "--model PATH" in text and "SFUMATO_DEFAULT_MODEL" in text and "sfumato models add-folder" in text


def test_cache_switch_releases_the_previous_model(tiny: dict[str, TinyModel], tmp_path: Path) -> None:
    import gc
    import weakref

    first = tiny["sd1"].write(tmp_path / "first.safetensors")
    second = tiny["sd2"].write(tmp_path / "second.safetensors")
    cache = ModelCache(budget_bytes=1)  # room for one model only

    a = cache.get("a", lambda: load_checkpoint(first, config_dir=tiny["sd1"].config_dir))
    unet_ref = weakref.ref(a.unet)
    del a
    b = cache.get("b", lambda: load_checkpoint(second, config_dir=tiny["sd2"].config_dir))
    gc.collect()

    assert unet_ref() is None
    assert "a" not in cache and "b" in cache
    assert cache.get("b", lambda: pytest.fail("reloaded")) is b


def test_load_model_by_name_from_a_folder_with_its_hash(
    tiny: dict[str, TinyModel], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import hashlib

    import sfumato.models.loading as loading

    folder = tmp_path / "models" / "Stable-diffusion"
    folder.mkdir(parents=True)
    path = tiny["sd1"].write(folder / "dreamy.safetensors")
    monkeypatch.setattr(loading, "config_folder", lambda name: tiny["sd1"].config_dir)
    settings = Settings(model_folders=[tmp_path])

    loaded = load_model(settings, "dreamy", device="cpu")

    assert loaded.info.name == "dreamy"
    assert loaded.info.hash == hashlib.sha256(path.read_bytes()).hexdigest()[:10]
    assert loaded.dtype == torch.float32


@pytest.mark.parametrize(
    "dropped",
    [
        "model.diffusion_model.out.2.bias",
        "cond_stage_model.transformer.text_model.encoder.layers.1.mlp.fc2.weight",
        "first_stage_model.decoder.conv_out.weight",
    ],
)
def test_a_single_missing_weight_is_named(tiny: dict[str, TinyModel], tmp_path: Path, dropped: str) -> None:
    from ldm_writer import write_checkpoint

    model = tiny["sd1"]
    state = {k: v for k, v in model.state().items() if k != dropped}
    path = write_checkpoint(tmp_path / "missing-one.safetensors", state)

    with pytest.raises((CorruptModelFile, UnsupportedModel), match=r"missing|lacks") as caught:
        load_checkpoint(path, config_dir=model.config_dir)

    assert path.name in str(caught.value)
