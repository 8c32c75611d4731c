"""SDXL's refiner, loaded from an original-layout single file, refines and makes pictures."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image
from tiny_ldm import TinyModel, build_tiny

from sfumato.core.request import GenerationRequest
from sfumato.engine.generate import generate
from sfumato.models.components import Components
from sfumato.models.identify import identify_file
from sfumato.models.loading import load_checkpoint
from sfumato.prompts.encoder import encode_prompt


@pytest.fixture(scope="module")
def tiny_refiner(tmp_path_factory: pytest.TempPathFactory) -> TinyModel:
    return build_tiny("sdxl-refiner", tmp_path_factory.mktemp("refiner-config"))


@pytest.fixture(scope="module")
def refiner_file(tiny_refiner: TinyModel, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_refiner.write(tmp_path_factory.mktemp("refiner") / "sd_xl_refiner_tiny.safetensors")


@pytest.fixture(scope="module")
def refiner(tiny_refiner: TinyModel, refiner_file: Path) -> Components:
    return load_checkpoint(refiner_file, config_dir=tiny_refiner.config_dir)


@pytest.fixture
def init_picture(tmp_path: Path) -> str:
    x = np.linspace(0, 255, 64)[None, :].repeat(64, 0)
    rgb = np.stack([x, x.T, 255 - x], axis=-1).astype(np.uint8)
    path = tmp_path / "init.png"
    Image.fromarray(rgb, "RGB").save(path)
    return str(path)


def request(**fields: Any) -> GenerationRequest:
    base: dict[str, Any] = {
        "prompt": "a red circle, sharp",
        "negative_prompt": "blurry",
        "steps": 4,
        "seed": 3,
        "sampler": "Euler",
        "width": 64,
        "height": 64,
    }
    return GenerationRequest(**(base | fields))


def pixels(components: Components, aesthetic_score: float = 6.0, **fields: Any) -> np.ndarray:
    result = generate(components, request(aesthetic_score=aesthetic_score, **fields))
    return np.asarray(result.images[0].image.convert("RGB"), dtype=np.int16)


def test_refiner_file_loads_offline_as_a_refiner(
    tiny_refiner: TinyModel, refiner_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_network(*args: object) -> None:
        raise AssertionError("loading a model tried to reach the network")

    monkeypatch.setattr(socket.socket, "connect", no_network)

    identity = identify_file(refiner_file)
    loaded = load_checkpoint(refiner_file, config_dir=tiny_refiner.config_dir)

    assert (identity.architecture, identity.config_name, identity.refiner) == (
        "sdxl-refiner",
        "sdxl-refiner",
        True,
    )
    assert loaded.info.architecture == "sdxl-refiner"
    assert loaded.is_refiner and loaded.is_sdxl
    assert loaded.added_time_ids == 5
    assert loaded.text_encoder_2 is None and loaded.tokenizer.pad_token == "!"


def test_prompt_is_read_from_the_open_clip_encoder_only(tiny_refiner: TinyModel, refiner: Components) -> None:
    conditioning = encode_prompt(refiner, "a red circle", steps=4)
    (part,) = conditioning.at(0)

    ids = refiner.tokenizer(
        "a red circle", padding="max_length", max_length=77, return_tensors="pt"
    ).input_ids
    with torch.no_grad():
        expected = tiny_refiner.text_encoder_2(ids, output_hidden_states=True)
    # SDXL's way: the penultimate layer without the final norm, and the projected pooled output
    torch.testing.assert_close(part.embedding.hidden, expected.hidden_states[-2], atol=1e-5, rtol=0)
    assert part.embedding.pooled is not None
    torch.testing.assert_close(part.embedding.pooled, expected.text_embeds, atol=1e-5, rtol=0)


def test_refiner_img2img_makes_a_picture_of_the_asked_size(refiner: Components, init_picture: str) -> None:
    result = generate(refiner, request(init_image=init_picture, denoising_strength=0.5, width=96, height=64))

    picture = np.asarray(result.images[0].image.convert("RGB"), dtype=np.int16)
    assert result.images[0].image.size == (96, 64)
    assert picture.std() > 1
    assert result.images[0].model.architecture == "sdxl-refiner"


def test_refiner_txt2img_makes_a_picture_of_the_asked_size(refiner: Components) -> None:
    result = generate(refiner, request(width=64, height=96))

    picture = np.asarray(result.images[0].image.convert("RGB"), dtype=np.int16)
    assert result.images[0].image.size == (64, 96)
    assert picture.std() > 1


def test_aesthetic_scores_reach_the_unet(refiner: Components) -> None:
    seen: list[torch.Tensor] = []

    def record(module: Any, args: Any, kwargs: dict[str, Any]) -> None:
        seen.append(kwargs["added_cond_kwargs"]["time_ids"].float().clone())

    handle = refiner.unet.register_forward_pre_hook(record, with_kwargs=True)
    try:
        generate(refiner, request(batch_size=2, aesthetic_score=7.5, negative_aesthetic_score=1.5))
    finally:
        handle.remove()

    # negative prompt rows first, then the prompt's, each once per picture of the batch:
    # original size (h, w), crop (0, 0), aesthetic score
    expected = torch.tensor([[64, 64, 0, 0, 1.5]] * 2 + [[64, 64, 0, 0, 7.5]] * 2)
    assert seen and all(torch.equal(ids, expected) for ids in seen)


def test_changing_the_aesthetic_score_changes_the_picture(refiner: Components) -> None:
    default = pixels(refiner)
    again = pixels(refiner, aesthetic_score=6.0)
    lower = pixels(refiner, aesthetic_score=2.0)

    assert np.array_equal(default, again)  # 6.0 is the default
    assert np.abs(default - lower).max() > 0


def test_conditioning_and_time_ids_match_diffusers_refiner_pipeline(refiner: Components) -> None:
    from diffusers import EulerDiscreteScheduler, StableDiffusionXLImg2ImgPipeline

    pipe = StableDiffusionXLImg2ImgPipeline(
        vae=refiner.vae,
        text_encoder=None,  # pyright: ignore[reportArgumentType]
        text_encoder_2=refiner.text_encoder,  # pyright: ignore[reportArgumentType]
        tokenizer=None,  # pyright: ignore[reportArgumentType]
        tokenizer_2=refiner.tokenizer,
        unet=refiner.unet,
        scheduler=EulerDiscreteScheduler(),  # pyright: ignore[reportArgumentType]
        requires_aesthetics_score=True,
        force_zeros_for_empty_prompt=False,
        add_watermarker=False,
    )
    from_pipe = Components.from_pipeline(pipe, refiner.info)
    expected = pipe.encode_prompt("a red circle", device=torch.device("cpu"), negative_prompt="blurry")
    size, crop = (64, 64), (0, 0)
    time_ids, negative_time_ids = pipe._get_add_time_ids(  # pyright: ignore[reportPrivateUsage]
        size, crop, size, 6.0, 2.5, size, crop, size, dtype=torch.float32, text_encoder_projection_dim=64
    )
    seen: list[torch.Tensor] = []
    handle = refiner.unet.register_forward_pre_hook(
        lambda _, args, kwargs: seen.append(kwargs["added_cond_kwargs"]["time_ids"].clone()), with_kwargs=True
    )
    try:
        generate(from_pipe, request(steps=1))
    finally:
        handle.remove()

    assert from_pipe.is_refiner and from_pipe.text_encoder is refiner.text_encoder
    for prompt, hidden, pooled in (
        ("a red circle", expected[0], expected[2]),
        ("blurry", expected[1], expected[3]),
    ):
        (part,) = encode_prompt(from_pipe, prompt, steps=4).at(0)
        torch.testing.assert_close(part.embedding.hidden, hidden, atol=1e-5, rtol=0)
        torch.testing.assert_close(part.embedding.pooled, pooled, atol=1e-5, rtol=0)
    assert torch.equal(seen[0], torch.cat([negative_time_ids, time_ids]))
