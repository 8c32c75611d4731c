from __future__ import annotations

import base64
import errno
import io
import json
import os
from pathlib import Path
from typing import IO

import pytest
from archive_helpers import MakeItem, make_image
from PIL import ExifTags, Image
from sd_parsers import ParserManager

from sfumato.archive import files
from sfumato.archive.files import prompt_slug, save_image
from sfumato.archive.metadata import read_metadata, request_from_image
from sfumato.core.errors import OutputError


def test_png_carries_a1111_text_and_sfumato_json(tmp_path: Path, make_item: MakeItem) -> None:
    item = make_item(negative_prompt="blurry", sampler="Euler a", extra={"Lora hashes": "a: 0123456789ab"})
    path = save_image(item, tmp_path)
    with Image.open(path) as image:
        text = dict(image.text)  # pyright: ignore[reportAttributeAccessIssue]
        assert image.convert("RGB").tobytes() == item.image.tobytes()
    assert text["parameters"] == (
        "a red circle\nNegative prompt: blurry\nSteps: 4, Sampler: Euler a, CFG scale: 7, Seed: 42, Size: 64x64, "
        f'Model hash: 0123456789, Model: demo, Lora hashes: "a: 0123456789ab", RNG: CPU, Version: sfumato {files.__version__}'
    )
    recipe = json.loads(text["sfumato"])
    assert recipe["request"] == item.recipe.model_dump(mode="json")
    assert recipe["model"]["hash"] == "0123456789"
    assert request_from_image(path) == item.recipe


@pytest.mark.parametrize("format", ["png", "jpeg", "webp"])
def test_independent_parser_reads_our_parameters(
    tmp_path: Path, make_item: MakeItem, format: files.ImageFormat
) -> None:
    item = make_item(
        prompt="a (red:1.2) circle,\nat the top left",
        negative_prompt="blurry, low quality",
        sampler="DPM++ 2M",
        schedule_type="Karras",
        steps=7,
        cfg_scale=6.5,
        seed=123456789,
        width=96,
        height=64,
    )
    info = ParserManager().parse(save_image(item, tmp_path, format=format))
    assert info is not None
    assert info.generator.name == "AUTOMATIC1111"
    assert [p.value for p in info.prompts] == ["a (red:1.2) circle,\nat the top left"]
    assert [p.value for p in info.negative_prompts] == ["blurry, low quality"]
    sampler = info.samplers[0]
    assert sampler.name == "DPM++ 2M"
    assert sampler.parameters["scheduler"] == "Karras"
    assert sampler.parameters["steps"] == "7"
    assert sampler.parameters["cfg_scale"] == "6.5"
    assert sampler.parameters["seed"] == "123456789"
    assert info.metadata["Size"] == "96x64"
    assert sampler.model is not None and sampler.model.name == "demo"


@pytest.mark.parametrize("format", ["jpeg", "webp"])
def test_jpeg_and_webp_round_trip(tmp_path: Path, make_item: MakeItem, format: files.ImageFormat) -> None:
    item = make_item(prompt="ünïcödé ☀ prompt", negative_prompt="x", init_image=None, clip_skip=2)
    path = save_image(item, tmp_path, format=format)
    assert path.suffix == (".jpg" if format == "jpeg" else ".webp")
    with Image.open(path) as image:
        assert image.format == ("JPEG" if format == "jpeg" else "WEBP")
        comment = image.getexif().get_ifd(ExifTags.IFD.Exif)[files.USER_COMMENT]
    # As piexif.helper.UserComment.dump(text, encoding="unicode") writes it (A1111).
    assert comment == b"UNICODE\0" + files.image_infotext(item).encode("utf_16_be")
    assert request_from_image(path) == item.recipe
    assert read_metadata(path).source == "sfumato"


@pytest.mark.parametrize("format", ["jpeg", "webp"])
def test_a1111_reads_the_prompt_of_our_jpeg_and_webp(
    tmp_path: Path, make_item: MakeItem, format: files.ImageFormat
) -> None:
    """A1111's reader (modules/images.py read_info_from_image, from its documented behaviour): piexif
    loads the EXIF, and UserComment must come back as bytes (type UNDEFINED) for
    piexif.helper.UserComment.load to decode it; a BYTE-typed tag comes back as a tuple and fails."""
    import piexif
    import piexif.helper

    item = make_item(prompt="a (red:1.2) circle, ünïcödé", negative_prompt="blurry", init_image=None)
    path = save_image(item, tmp_path, format=format)
    with Image.open(path) as image:
        exif = piexif.load(image.info["exif"])
    comment = (exif or {}).get("Exif", {}).get(piexif.ExifIFD.UserComment, b"")
    assert isinstance(comment, bytes)
    assert piexif.helper.UserComment.load(comment) == files.image_infotext(item)


def _data_uri(size: int) -> str:
    noise = Image.frombytes("RGB", (size, size), os.urandom(size * size * 3))
    buffer = io.BytesIO()
    noise.save(buffer, "PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def test_jpeg_leaves_out_a_large_init_image_png_keeps_it(tmp_path: Path, make_item: MakeItem) -> None:
    item = make_item(init_image=_data_uri(160), denoising_strength=0.5)
    jpeg = request_from_image(save_image(item, tmp_path, format="jpeg"))
    assert jpeg == item.recipe.model_copy(update={"init_image": None})
    assert request_from_image(save_image(item, tmp_path, format="png")) == item.recipe


@pytest.mark.parametrize(
    ("prompt", "slug"),
    [
        ("a red circle", "a-red-circle"),
        ("A (Red:1.2) circle, <lora:detail:0.8> [blue|green]", "a-red-circle-blue-green"),
        ("Café crème", "cafe-creme"),
        ("", ""),
        ("猫", ""),
        ("word " * 30, "-".join(["word"] * 9)),
    ],
)
def test_prompt_slug(prompt: str, slug: str) -> None:
    assert prompt_slug(prompt) == slug


def test_names_are_numbered_and_never_overwrite(tmp_path: Path, make_item: MakeItem) -> None:
    (tmp_path / "00007-1-older.png").write_bytes(b"older picture")
    first = save_image(make_item(), tmp_path)
    second = save_image(make_item(prompt=""), tmp_path)
    assert first.name == "00008-42-a-red-circle.png"
    assert second.name == "00009-42.png"
    assert (tmp_path / "00007-1-older.png").read_bytes() == b"older picture"


def test_a_name_taken_meanwhile_is_skipped(
    tmp_path: Path, make_item: MakeItem, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another process may take the number between our scan and our rename."""
    taken = tmp_path / "00001-42-a-red-circle.png"
    real_next = files.next_number

    def racing_next(folder: Path) -> int:
        if not taken.exists():
            taken.write_bytes(b"the other process's picture")
            return 1
        return real_next(folder)

    monkeypatch.setattr(files, "next_number", racing_next)
    path = save_image(make_item(), tmp_path)
    assert path.name == "00002-42-a-red-circle.png"
    assert taken.read_bytes() == b"the other process's picture"


def _entries(folder: Path) -> list[str]:
    return sorted(entry.name for entry in folder.iterdir())


def test_disk_full_leaves_nothing_behind(
    tmp_path: Path, make_item: MakeItem, monkeypatch: pytest.MonkeyPatch
) -> None:
    def half_then_full(handle: IO[bytes], data: bytes) -> None:
        handle.write(data[: len(data) // 2])
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(files, "_write_bytes", half_then_full)
    with pytest.raises(OutputError, match="disk is full") as raised:
        save_image(make_item(), tmp_path)
    assert "Free some space" in str(raised.value)
    assert _entries(tmp_path) == []


def test_interrupt_while_writing_leaves_nothing_behind(
    tmp_path: Path, make_item: MakeItem, monkeypatch: pytest.MonkeyPatch
) -> None:
    def interrupted(handle: IO[bytes], data: bytes) -> None:
        handle.write(data[:10])
        raise KeyboardInterrupt

    monkeypatch.setattr(files, "_write_bytes", interrupted)
    with pytest.raises(KeyboardInterrupt):
        save_image(make_item(), tmp_path)
    assert _entries(tmp_path) == []


def test_folder_not_writable(tmp_path: Path, make_item: MakeItem, monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(folder: Path) -> tuple[Path, IO[bytes]]:
        raise PermissionError(errno.EACCES, "Permission denied", str(folder))

    monkeypatch.setattr(files, "_open_temp", refuse)
    with pytest.raises(OutputError, match="is not writable"):
        save_image(make_item(), tmp_path)
    assert _entries(tmp_path) == []


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root writes anywhere")
def test_read_only_folder_for_real(tmp_path: Path, make_item: MakeItem) -> None:
    folder = tmp_path / "locked"
    folder.mkdir(mode=0o500)
    try:
        with pytest.raises(OutputError, match="is not writable"):
            save_image(make_item(), folder)
        assert _entries(folder) == []
    finally:
        folder.chmod(0o700)


def test_output_folder_that_is_a_file(tmp_path: Path, make_item: MakeItem) -> None:
    blocker = tmp_path / "outputs"
    blocker.write_text("not a folder")
    with pytest.raises(OutputError, match="is not a folder"):
        save_image(make_item(), blocker / "2026-01-01")
    assert blocker.read_text() == "not a folder"


def test_missing_folder_is_created(tmp_path: Path, make_item: MakeItem) -> None:
    path = save_image(make_item(), tmp_path / "a" / "b")
    assert path.parent == tmp_path / "a" / "b"
    with Image.open(path) as image:
        assert image.size == make_image().size
