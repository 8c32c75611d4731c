"""The request: validation messages a user reads, legacy sampler names, image references."""

from __future__ import annotations

import base64
import io
import zlib
from pathlib import Path

import pytest
from PIL import Image

from sfumato.core.errors import ImageReadError, InvalidRequest
from sfumato.core.images import load_image, to_data_uri
from sfumato.core.request import SAMPLERS, GenerationRequest, Mode, parse_request


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"width": 100}, "width: 100 is not a multiple of 8; try 96"),
        ({"height": 8192}, "height: 8192 is out of range; use 64–4096 pixels"),
        ({"steps": 0}, "steps: Input should be greater than or equal to 1"),
        ({"sampler": "Euler b"}, "sampler: unknown sampler 'Euler b'; choose one of: Euler, Euler a"),
        ({"schedule_type": "Linear"}, "schedule_type: unknown schedule type 'Linear'"),
        ({"denoising_strength": 1.5}, "denoising_strength: Input should be less than or equal to 1"),
        ({"prompt": "a\x00b"}, "prompt: the prompt contains a NUL byte"),
        ({"mask": "m.png"}, "a mask needs an init image"),
        ({"seeed": 1}, "seeed: Extra inputs are not permitted"),
    ],
)
def test_bad_requests_say_what_is_wrong(data: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidRequest) as raised:
        parse_request(data)
    assert message in str(raised.value)


def test_legacy_sampler_names_split_into_sampler_and_schedule() -> None:
    request = parse_request({"sampler": "DPM++ 2M Karras"})
    assert (request.sampler, request.schedule_type) == ("DPM++ 2M", "Karras")
    assert parse_request({"sampler": "DPM++ SDE"}).schedule_type == "Automatic"


def test_every_sampler_name_is_accepted_and_the_request_round_trips_as_json() -> None:
    for name in SAMPLERS:
        request = GenerationRequest(prompt="a cat", sampler=name, seed=3, width=512, height=768)
        assert GenerationRequest.model_validate_json(request.model_dump_json()) == request


def test_mode_follows_the_images_given() -> None:
    assert GenerationRequest().mode is Mode.txt2img
    assert GenerationRequest(init_image="a.png").mode is Mode.img2img
    assert GenerationRequest(init_image="a.png", mask="m.png").mode is Mode.inpaint


def test_image_references_read_paths_and_data_uris(tmp_path: Path) -> None:
    picture = Image.new("RGB", (16, 8), (10, 20, 30))
    picture.save(tmp_path / "p.png")
    assert load_image(str(tmp_path / "p.png")).getpixel((0, 0)) == (10, 20, 30)
    assert load_image(to_data_uri(picture)).size == (16, 8)
    with pytest.raises(ImageReadError, match="not valid base64"):
        load_image("data:image/png;base64,@@@")


def _png_header_only(width: int, height: int) -> bytes:
    """A PNG that claims a huge size: a decompression bomb must be refused before decoding."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return len(body).to_bytes(4, "big") + kind + body + zlib.crc32(kind + body).to_bytes(4, "big")

    header = width.to_bytes(4, "big") + height.to_bytes(4, "big") + bytes([8, 2, 0, 0, 0])
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b""))
        + chunk(b"IEND", b"")
    )


def test_decompression_bomb_is_refused() -> None:
    # 10000 x 10000 is above our limit but below Pillow's own error threshold (a warning only).
    uri = "data:image/png;base64," + base64.b64encode(_png_header_only(10000, 10000)).decode()
    with pytest.raises(ImageReadError, match="too large"):
        load_image(uri, "init image")


def test_truncated_image_is_a_clear_error() -> None:
    buffer = io.BytesIO()
    Image.new("RGB", (64, 64), "white").save(buffer, format="PNG")
    uri = "data:image/png;base64," + base64.b64encode(buffer.getvalue()[:50]).decode()
    with pytest.raises(ImageReadError, match="could not be read"):
        load_image(uri)
