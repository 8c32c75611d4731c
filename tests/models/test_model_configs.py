"""The shipped configs build the real architectures: parameter counts of the published models."""

from __future__ import annotations

import pytest

from sfumato.models.loading import config_folder

# (UNet, VAE, text encoder(s)) parameters of SD1.5, SD2.x, SDXL base/inpainting/refiner
EXPECTED = {
    "sd1": (859_520_964, 83_653_863, [123_060_480]),
    "sd1-inpainting": (859_535_364, 83_653_863, [123_060_480]),
    "sd2-512": (865_910_724, 83_653_863, [340_387_840]),
    "sd2-768-v": (865_910_724, 83_653_863, [340_387_840]),
    "sdxl": (2_567_463_684, 83_653_863, [123_060_480, 694_659_840]),
    "sdxl-inpainting": (2_567_478_084, 83_653_863, [123_060_480, 694_659_840]),
    "sdxl-refiner": (2_259_526_660, 83_653_863, [694_659_840]),
}


FAST = ("sd1", "sd2-768-v")


@pytest.mark.parametrize(
    "name", [n if n in FAST else pytest.param(n, marks=pytest.mark.slow) for n in sorted(EXPECTED)]
)
def test_config_builds_the_published_architecture(name: str) -> None:
    from accelerate import init_empty_weights
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    folder = config_folder(name)
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    with init_empty_weights():
        unet = UNet2DConditionModel.from_config(UNet2DConditionModel.load_config(str(folder / "unet")))  # pyright: ignore
        vae = AutoencoderKL.from_config(AutoencoderKL.load_config(str(folder / "vae")))  # pyright: ignore
        encoders = [
            cls(CLIPTextConfig.from_pretrained(str(folder / sub)))
            for sub, cls in (("text_encoder", CLIPTextModel), ("text_encoder_2", CLIPTextModelWithProjection))
            if (folder / sub).is_dir()
        ]

    assert (count(unet), count(vae), [count(e) for e in encoders]) == EXPECTED[name]
