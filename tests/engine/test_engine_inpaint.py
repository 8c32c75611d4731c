from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from engine_pictures import pixels, write_mask, write_picture
from PIL import Image

from sfumato.core.errors import ImageReadError, InvalidRequest
from sfumato.core.events import StepProgress
from sfumato.core.images import to_data_uri
from sfumato.core.request import GenerationRequest, MaskedContent
from sfumato.engine import latents
from sfumato.engine.generate import generate
from sfumato.engine.masks import fill_masked, mask_box, soften_mask
from sfumato.models.components import Components
from tiny import tiny_components

BOX = (20, 20, 44, 44)


def request(**fields: Any) -> GenerationRequest:
    base: dict[str, Any] = {"prompt": "a red circle", "steps": 4, "seed": 3, "denoising_strength": 0.9}
    return GenerationRequest(**(base | fields))


def outside(mask: Image.Image) -> np.ndarray:
    return np.asarray(mask.convert("L")) == 0


@pytest.fixture
def picture(tmp_path: Path) -> str:
    return write_picture(tmp_path / "init.png")


@pytest.fixture
def mask(tmp_path: Path) -> str:
    return write_mask(tmp_path / "mask.png", BOX)


def test_img2img(sd1: Components, picture: str) -> None:
    events: list[StepProgress] = []
    result = generate(
        sd1, request(init_image=picture, steps=10, denoising_strength=0.5), on_progress=events.append
    )
    assert result.images[0].image.size == (64, 64)
    assert [e.step for e in events] == [1, 2, 3, 4, 5]  # strength 0.5 of 10 steps
    again = generate(sd1, request(init_image=picture, steps=10, denoising_strength=0.5))
    assert np.array_equal(pixels(result.images[0].image), pixels(again.images[0].image))


def test_img2img_resizes_the_init_image_and_takes_data_uris(sd1: Components, tmp_path: Path) -> None:
    uri = to_data_uri(Image.open(write_picture(tmp_path / "big.png", (128, 96))))
    result = generate(sd1, request(init_image=uri, width=64, height=96))
    assert result.images[0].image.size == (64, 96)


def test_img2img_strength_moves_away_from_the_init_picture(picture: str) -> None:
    components = tiny_components()
    # A random VAE is nearly all noise (std ~1); a trained one is nearly deterministic, like this:
    quant_conv: Any = components.vae.quant_conv
    logvar = quant_conv.out_channels // 2
    with torch.no_grad():
        quant_conv.weight[logvar:] = 0
        quant_conv.bias[logvar:] = -30

    def run(strength: float) -> np.ndarray:
        result = generate(components, request(init_image=picture, denoising_strength=strength, steps=10))
        return pixels(result.images[0].image)

    mean, _ = latents.encode_distribution(components, latents.pil_to_tensor(Image.open(picture)))
    decoded = latents.decode(components, latents.scale_latents(components, mean), [])
    round_trip = pixels(latents.tensor_to_pils(decoded)[0])
    distances = [np.abs(run(strength) - round_trip).mean() for strength in (0.1, 0.5, 1.0)]
    assert distances == sorted(distances), distances


@pytest.mark.parametrize("inpainting_unet", [False, True], ids=["4-channel", "9-channel"])
@pytest.mark.parametrize("content", list(MaskedContent))
def test_inpaint_changes_only_the_masked_area(
    sd1: Components,
    sd1_inpainting: Components,
    picture: str,
    mask: str,
    inpainting_unet: bool,
    content: MaskedContent,
) -> None:
    components = sd1_inpainting if inpainting_unet else sd1
    result = generate(components, request(init_image=picture, mask=mask, masked_content=content, mask_blur=2))
    out, init = pixels(result.images[0].image), pixels(Image.open(picture))
    soft = soften_mask(Image.open(mask), invert=False, blur=2)
    keep = outside(soft)
    assert np.abs(out - init)[keep].max() <= 255 * 0.02
    inner = np.zeros_like(keep)
    inner[BOX[1] + 4 : BOX[3] - 4, BOX[0] + 4 : BOX[2] - 4] = True
    assert np.abs(out - init)[inner].mean() > 10


def test_masked_content_choices_start_differently(sd1: Components, picture: str, mask: str) -> None:
    outs = [
        pixels(
            generate(sd1, request(init_image=picture, mask=mask, masked_content=c, denoising_strength=0.5))
            .images[0]
            .image
        )
        for c in MaskedContent
    ]
    for i in range(len(outs)):
        for j in range(i + 1, len(outs)):
            assert np.abs(outs[i] - outs[j]).max() > 0


def test_mask_invert_repaints_the_other_side(sd1: Components, picture: str, mask: str) -> None:
    result = generate(sd1, request(init_image=picture, mask=mask, mask_invert=True, mask_blur=0))
    out, init = pixels(result.images[0].image), pixels(Image.open(picture))
    inside = np.zeros((64, 64), dtype=bool)
    inside[BOX[1] : BOX[3], BOX[0] : BOX[2]] = True
    assert np.abs(out - init)[inside].max() == 0
    assert np.abs(out - init)[~inside].mean() > 10


@pytest.mark.parametrize("inpainting_unet", [False, True], ids=["4-channel", "9-channel"])
def test_inpaint_only_masked(
    sd1: Components, sd1_inpainting: Components, tmp_path: Path, inpainting_unet: bool
) -> None:
    components = sd1_inpainting if inpainting_unet else sd1
    init = write_picture(tmp_path / "wide.png", (160, 128))
    box = (100, 70, 120, 90)
    mask = write_mask(tmp_path / "small.png", box, (160, 128))
    result = generate(
        components,
        request(
            init_image=init, mask=mask, inpaint_only_masked=True, inpaint_only_masked_padding=8, mask_blur=2
        ),
    )
    out, original = pixels(result.images[0].image), pixels(Image.open(init))
    assert out.shape == original.shape  # pasted back into the full picture
    assert result.images[0].recipe.width == 64  # rendered at the request's size
    keep = outside(soften_mask(Image.open(mask), invert=False, blur=2))
    assert np.abs(out - original)[keep].max() <= 255 * 0.02
    assert np.abs(out - original)[box[1] + 3 : box[3] - 3, box[0] + 3 : box[2] - 3].mean() > 10


def test_only_masked_with_empty_mask_leaves_the_picture(
    sd1: Components, tmp_path: Path, picture: str
) -> None:
    empty = str(tmp_path / "empty.png")
    Image.new("L", (64, 64), 0).save(empty)
    result = generate(sd1, request(init_image=picture, mask=empty, inpaint_only_masked=True))
    assert np.array_equal(pixels(result.images[0].image), pixels(Image.open(picture)))
    assert any("empty" in note for note in result.notes)


def test_inpainting_model_without_mask_still_runs(sd1_inpainting: Components) -> None:
    assert generate(sd1_inpainting, request()).images[0].image.size == (64, 64)


def test_mask_of_another_size_is_a_clear_error(sd1: Components, tmp_path: Path, picture: str) -> None:
    mask = write_mask(tmp_path / "m.png", (0, 0, 8, 8), (64, 48))
    with pytest.raises(InvalidRequest, match=r"mask is 64x48 .* init image is 64x64"):
        generate(sd1, request(init_image=picture, mask=mask))


def test_truncated_init_image_is_a_clear_error(sd1: Components, tmp_path: Path, picture: str) -> None:
    data = Path(picture).read_bytes()
    broken = tmp_path / "broken.png"
    broken.write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageReadError, match="init image"):
        generate(sd1, request(init_image=str(broken)))


def test_unreadable_init_image_is_a_clear_error(sd1: Components, tmp_path: Path) -> None:
    text = tmp_path / "notes.png"
    text.write_text("not a picture")
    with pytest.raises(ImageReadError, match="init image"):
        generate(sd1, request(init_image=str(text)))
    with pytest.raises(ImageReadError, match="could not be opened"):
        generate(sd1, request(init_image=str(tmp_path / "missing.png")))


def test_batch_inpaint_picture_i_is_seed_plus_i(sd1: Components, picture: str, mask: str) -> None:
    batch = generate(sd1, request(init_image=picture, mask=mask, sampler="Euler a", batch_size=2, seed=9))
    alone = generate(sd1, request(init_image=picture, mask=mask, sampler="Euler a", seed=10))
    assert np.abs(pixels(batch.images[1].image) - pixels(alone.images[0].image)).max() <= 2


# Pure picture operations


def test_fill_paints_the_hole_with_the_colours_around_it() -> None:
    image = Image.new("RGB", (64, 64), (255, 0, 0))
    image.paste((0, 0, 255), (32, 0, 64, 64))
    hole = Image.new("L", (64, 64), 0)
    hole.paste(255, (24, 24, 40, 40))
    image.paste((0, 255, 0), (24, 24, 40, 40))  # the masked content must disappear
    filled = np.asarray(fill_masked(image, hole)).astype(int)
    assert filled[32, 25].tolist()[0] > filled[32, 25].tolist()[2]  # red side stays red
    assert filled[32, 38].tolist()[2] > filled[32, 38].tolist()[0]  # blue side stays blue
    assert filled[24:40, 24:40, 1].max() < 40  # no green left
    assert np.array_equal(filled[:, :20], np.asarray(image)[:, :20])


@pytest.mark.parametrize(
    ("bbox", "padding", "aspect", "expected"),
    [
        ((40, 40, 60, 60), 0, (1, 1), (40, 40, 60, 60)),
        ((40, 40, 60, 60), 10, (1, 1), (30, 30, 70, 70)),
        ((40, 40, 60, 50), 0, (2, 1), (40, 40, 60, 50)),
        ((40, 40, 60, 50), 0, (1, 1), (40, 35, 60, 55)),
        ((0, 0, 10, 10), 5, (2, 1), (0, 0, 30, 15)),  # grows away from the edge
        ((90, 90, 100, 100), 0, (1, 2), (90, 80, 100, 100)),
    ],
)
def test_mask_box(
    bbox: tuple[int, int, int, int],
    padding: int,
    aspect: tuple[int, int],
    expected: tuple[int, int, int, int],
) -> None:
    mask = Image.new("L", (100, 100), 0)
    mask.paste(255, bbox)
    assert mask_box(mask, padding, aspect) == expected


def test_mask_box_of_empty_mask_is_none() -> None:
    assert mask_box(Image.new("L", (10, 10), 0), 4, (1, 1)) is None
