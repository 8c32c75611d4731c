"""A folder of pictures made into a training set: crops, captions, flips, and the refusals."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from sfumato.core.errors import InvalidRequest
from sfumato.training.dataset import crop_box, name_caption, prepare_dataset, write_preview


def _picture(path: Path, size: tuple[int, int], dot: tuple[int, int] | None = None) -> None:
    picture = Image.new("RGB", size, (128, 128, 128))
    if dot is not None:
        picture.paste((250, 140, 200), (dot[0] - 4, dot[1] - 4, dot[0] + 4, dot[1] + 4))
    picture.save(path)


def test_captions_come_from_sidecars_then_file_names_then_the_interrogator(tmp_path: Path) -> None:
    _picture(tmp_path / "a.png", (96, 96))
    (tmp_path / "a.txt").write_text("a  large [name] circle\n")
    _picture(tmp_path / "pink_star-02.png", (96, 96))
    _picture(tmp_path / "IMG_0042.jpg", (96, 96))
    prepared = prepare_dataset(tmp_path, 64, "sfpink", describe=lambda _: "a square on a gray background")
    captions = {p.source.name: (p.example.caption, p.caption_from) for p in prepared.pictures}
    assert captions == {
        "a.png": ("a large sfpink circle", "sidecar"),
        "pink_star-02.png": ("sfpink, pink star", "file name"),
        "IMG_0042.jpg": ("sfpink, a square on a gray background", "interrogator"),
    }
    assert all(p.example.image.size == (64, 64) for p in prepared.pictures)


def test_a_caption_that_has_the_word_keeps_it_where_it_is(tmp_path: Path) -> None:
    _picture(tmp_path / "x.png", (96, 96))
    (tmp_path / "x.txt").write_text("a sfpink circle")
    assert prepare_dataset(tmp_path, 96, "sfpink").examples[0].caption == "a sfpink circle"
    assert prepare_dataset(tmp_path, 96, None).examples[0].caption == "a sfpink circle"


def test_the_crop_follows_the_subject_and_flips_add_mirrored_copies(tmp_path: Path) -> None:
    _picture(tmp_path / "wide.png", (192, 96), dot=(170, 48))
    found = prepare_dataset(tmp_path, 96, "w", find_subject=lambda _: (166, 44, 174, 52), flip=True)
    centred = prepare_dataset(tmp_path, 96, "w")
    assert found.pictures[0].crop == (96, 0, 192, 96)  # as far right as the picture allows
    assert centred.pictures[0].crop == (48, 0, 144, 96)
    pink = np.asarray(found.pictures[0].example.image)[..., 0] > 200
    assert pink[:, 60:].any() and not pink[:, :60].any()
    mirrored = np.asarray(found.pictures[1].example.image)
    assert found.pictures[1].flipped
    assert np.array_equal(mirrored, np.asarray(found.pictures[0].example.image)[:, ::-1])


def test_crop_box_is_centred_without_a_subject() -> None:
    assert crop_box(100, 64, 64, None) == (18, 0, 82, 64)
    assert crop_box(64, 100, 64, (0, 0, 10, 10)) == (0, 0, 64, 64)


@pytest.mark.parametrize(
    ("name", "expected"), [("pink_circle-03", "pink circle"), ("IMG_0001", None), ("DSC01234", None)]
)
def test_file_names_read_as_words_or_not_at_all(name: str, expected: str | None) -> None:
    assert name_caption(Path(name + ".png")) == expected


def test_a_folder_without_pictures_is_refused(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(InvalidRequest, match="holds no pictures"):
        prepare_dataset(tmp_path, 64, "w")
    with pytest.raises(InvalidRequest, match="is not a folder"):
        prepare_dataset(tmp_path / "missing", 64, "w")


def test_an_unreadable_picture_is_refused_by_name(tmp_path: Path) -> None:
    _picture(tmp_path / "good.png", (96, 96))
    (tmp_path / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    with pytest.raises(InvalidRequest, match=r"broken\.jpg cannot be read as a picture"):
        prepare_dataset(tmp_path, 64, "w")


def test_a_picture_smaller_than_the_model_size_is_refused_by_name(tmp_path: Path) -> None:
    _picture(tmp_path / "small.png", (96, 40))
    with pytest.raises(InvalidRequest, match=r"small\.png is 96x40, smaller than the model's 64x64"):
        prepare_dataset(tmp_path, 64, "w")


def test_the_dry_run_preview_writes_pictures_and_captions(tmp_path: Path) -> None:
    source = tmp_path / "in"
    source.mkdir()
    _picture(source / "pink_dot.png", (80, 80))
    written = write_preview(prepare_dataset(source, 64, "w", flip=True), tmp_path / "out")
    assert [p.name for p in written] == ["000-pink_dot.png", "001-pink_dot-flipped.png"]
    assert (tmp_path / "out" / "000-pink_dot.txt").read_text() == "w, pink dot\n"
    assert Image.open(written[0]).size == (64, 64)
