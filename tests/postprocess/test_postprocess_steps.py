"""The runner's post-processing steps: run after each picture, kept in the recipe, written in the infotext."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from sfumato.core.errors import InvalidRequest
from sfumato.core.postprocess import DetailStep, PostprocessStep, RestoreFacesStep, UpscaleStep
from sfumato.core.request import GenerationRequest
from sfumato.core.settings import Settings
from sfumato.jobs.runner import run_request
from upscaler_files import compact_state, write


@pytest.fixture(scope="module")
def tiny():
    from tiny import tiny_components

    return tiny_components()


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    write(tmp_path / "models" / "upscale_models" / "2x-tiny.safetensors", compact_state())
    return Settings(data_dir=tmp_path / "data", model_folders=[tmp_path / "models"], max_canvas_side=512)


def _request(*steps: PostprocessStep, **fields: object) -> GenerationRequest:
    data = {"prompt": "a red circle", "width": 64, "height": 64, "steps": 2, "seed": 3, "sampler": "Euler"}
    return GenerationRequest.model_validate(
        {**data, **fields, "postprocess": [s.model_dump() for s in steps]}
    )  # type: ignore[attr-defined]


def _saved_files(settings: Settings) -> list[Path]:
    return [p for p in settings.outputs.rglob("*") if p.is_file()] if settings.outputs.exists() else []


def test_steps_run_after_each_picture_and_stay_in_the_recipe(tiny, settings: Settings) -> None:
    request = _request(
        UpscaleStep(upscaler="2x-tiny", scale=2), UpscaleStep(upscaler="Lanczos", width=160), batch_size=2
    )
    output = run_request(settings, request, components=tiny)
    assert len(output.pictures) == 2
    for picture in output.pictures:
        with Image.open(picture.file) as saved:
            assert saved.size == (160, 160)
            text = saved.info["parameters"]
            recipe = json.loads(saved.info["sfumato"])["request"]
        assert "Size: 64x64" in text
        assert "Postprocess upscaler: Lanczos" in text and "Postprocess upscale to: 160x0" in text
        assert [s["upscaler"] for s in recipe["postprocess"]] == ["2x-tiny", "Lanczos"]
    again = run_request(settings, output.pictures[1].item.recipe, components=tiny)
    with Image.open(again.pictures[0].file) as one, Image.open(output.pictures[1].file) as two:
        assert one.tobytes() == two.tobytes()  # the recipe reproduces the post-processed picture


@pytest.mark.parametrize("step", [RestoreFacesStep(), DetailStep()], ids=["restore_faces", "detail"])
def test_steps_sfumato_cannot_run_are_refused_before_rendering(
    tiny, settings: Settings, step: PostprocessStep
) -> None:
    from sfumato.postprocess.steps import step_functions

    if step.kind in step_functions():
        pytest.skip("this step is available")
    with pytest.raises(InvalidRequest, match=f"post-processing step '{step.kind}' is not available"):
        run_request(settings, _request(step), components=tiny)
    assert _saved_files(settings) == []


def test_an_upscale_past_the_maximum_size_is_refused_before_rendering(tiny, settings: Settings) -> None:
    with pytest.raises(InvalidRequest, match="would be 1024x1024 pixels; the maximum is 512"):
        run_request(
            settings,
            _request(UpscaleStep(upscaler="2x-tiny", scale=2), UpscaleStep(scale=8)),
            components=tiny,
        )
    assert _saved_files(settings) == []


def test_an_unknown_upscaler_is_a_clear_error(tiny, settings: Settings) -> None:
    from sfumato.core.errors import ModelNotFound

    with pytest.raises(ModelNotFound, match="No upscaler named 'R-ESRGAN 4x\\+'"):
        run_request(settings, _request(UpscaleStep(upscaler="R-ESRGAN 4x+")), components=tiny)
    assert _saved_files(settings) == []
