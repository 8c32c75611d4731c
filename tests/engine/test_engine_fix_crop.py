"""Finding the side where a picture's main subject is cut off, and how far to grow it."""

from __future__ import annotations

import pytest
from PIL import Image, ImageDraw

from sfumato.core.errors import InvalidRequest
from sfumato.engine.fix_crop import NothingCutOff, crop_fix, find_cut_off


def disc(centre: tuple[int, int], radius: int = 14, size: int = 96) -> Image.Image:
    picture = Image.new("RGB", (size, size), (30, 70, 220))
    x, y = centre
    ImageDraw.Draw(picture).ellipse([x - radius, y - radius, x + radius, y + radius], fill=(245, 215, 30))
    # A smaller second object touching another edge is not the main subject.
    ImageDraw.Draw(picture).rectangle([0, 80, 6, 86], fill=(245, 245, 245))
    return picture


@pytest.mark.parametrize(
    ("centre", "side"), [((48, 4), "top"), ((48, 92), "bottom"), ((92, 48), "right"), ((3, 30), "left")]
)
def test_the_side_the_main_subject_is_cut_off_by(centre: tuple[int, int], side: str) -> None:
    found = find_cut_off(disc(centre))
    assert found is not None and found.side == side
    # Half the cut's width (a round subject cut through its middle lacks about that) and a margin.
    assert found.pixels % 8 == 0 and found.contact // 2 < found.pixels <= found.contact // 2 + 16
    assert getattr(crop_fix(disc(centre)), side) == found.pixels


def test_a_subject_inside_the_frame_is_not_cut_off_unless_a_side_is_named() -> None:
    picture = disc((48, 40))
    assert find_cut_off(picture) is None
    with pytest.raises(NothingCutOff, match="does not touch the frame"):
        crop_fix(picture)
    assert crop_fix(picture, "top").top == 16
    with pytest.raises(InvalidRequest, match="Unknown side 'up'"):
        crop_fix(picture, "up")
