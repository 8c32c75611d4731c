"""The NSFW filter on the demo CLIP with a stand-in concept: "star" is filtered, other shapes pass."""

from __future__ import annotations

from pathlib import Path

import pytest
from demo_scenes import picture, scene_of

from sfumato.analysis.clip_model import load_clip
from sfumato.analysis.nsfw import apply_filter, concept_check, parse_concepts
from sfumato.core.errors import InvalidRequest, SfumatoError
from sfumato.core.request import GenerationRequest
from sfumato.core.result import GeneratedImage, ModelInfo
from sfumato.core.settings import Settings
from sfumato.demo import world

CONCEPT = ["a star=0.45"]  # similarity thresholds are per CLIP: the demo CLIP scores a match ~0.55+
BLUE_BACKGROUND = "a blue background=0.45"


def _item(shape: str, colour: str, position: str, background: str) -> GeneratedImage:
    scene = scene_of(shape, colour, position, background)
    return GeneratedImage(
        picture(scene), GenerationRequest(prompt=f"a {colour} {shape}"), ModelInfo("demo", "0")
    )


@pytest.mark.parametrize("colour", ["red", "yellow", "white", "black"])
@pytest.mark.parametrize("position", ["top left", "center", "bottom right"])
def test_star_pictures_are_withheld_and_others_pass(colour: str, position: str) -> None:
    settings = Settings(nsfw_concepts=CONCEPT)
    background = "blue"
    for shape in world.SHAPES:
        kept, note = apply_filter(_item(shape, colour, position, background), "withhold", settings)
        if shape == "star":
            assert kept is None and note and "withheld" in note and "a star" in note
        else:
            assert kept is not None and note is None, shape
            assert kept.extra["NSFW filter"] == "withhold" and kept.extra["NSFW check"] == "passed"


def test_blur_keeps_a_blurred_picture_and_records_the_decision() -> None:
    item = _item("star", "yellow", "center", "black")
    kept, note = apply_filter(item, "blur", Settings(nsfw_concepts=CONCEPT))
    assert kept is not None and note and "blurred" in note
    assert kept.extra["NSFW filter"] == "blur" and kept.extra["NSFW check"].startswith("flagged (a star")
    import numpy as np

    before, after = np.asarray(item.image, dtype=float), np.asarray(kept.image, dtype=float)
    assert np.abs(np.diff(after, axis=1)).max() < np.abs(np.diff(before, axis=1)).max() / 4


def test_off_checks_nothing_and_on_without_a_checker_is_refused() -> None:
    item = _item("star", "yellow", "center", "black")
    assert apply_filter(item, "off", Settings()) == (item, None)
    with pytest.raises(InvalidRequest, match="no checker is configured"):
        apply_filter(item, "blur", Settings())


def test_concepts_and_thresholds_parse() -> None:
    assert [(c.text, c.threshold) for c in parse_concepts(["a star=0.5", "x"])] == [
        ("a star", 0.5),
        ("x", 0.25),
    ]
    with pytest.raises(InvalidRequest, match="not a number"):
        parse_concepts(["a star=high"])
    verdict = concept_check(
        picture(scene_of("star", "red", "top", "white")), load_clip(), parse_concepts(["a star=0.99"])
    )
    assert not verdict.flagged


def test_a_missing_safety_checker_says_what_is_needed(tmp_path: Path) -> None:
    item = _item("circle", "red", "center", "white")
    with pytest.raises(SfumatoError, match="safety_checker"):
        apply_filter(item, "withhold", Settings(safety_checker=tmp_path))


def test_the_runner_applies_the_request_s_filter_and_records_it(tmp_path: Path) -> None:
    from sfumato.archive.metadata import read_metadata
    from sfumato.jobs.runner import run_request

    # The demo model draws backgrounds reliably: "a blue background" stands in for the filtered concept.
    settings = Settings(data_dir=tmp_path / "data", nsfw_concepts=[BLUE_BACKGROUND])
    blue = GenerationRequest(
        prompt="a red circle on a blue background", steps=8, seed=3, nsfw_filter="withhold"
    )
    withheld = run_request(settings, blue)
    assert withheld.pictures == [] and any("withheld by the NSFW filter" in n for n in withheld.notes)
    white = blue.model_copy(update={"prompt": "a red circle on a white background"})
    kept = run_request(settings, white)
    assert len(kept.pictures) == 1
    metadata = read_metadata(kept.pictures[0].file)
    assert "NSFW filter: withhold" in metadata.parameters and "NSFW check: passed" in metadata.parameters
    assert run_request(settings, white.model_copy(update={"nsfw_filter": None})).pictures  # settings: off
