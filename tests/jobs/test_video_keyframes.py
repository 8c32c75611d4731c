"""`sfumato video keyframes`: the EbSynth project folder, the preview video, and bad input (demo model)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image, ImageDraw

from sfumato.archive.video import open_clip, write_mp4
from sfumato.core.errors import InvalidRequest
from sfumato.core.request import GenerationRequest
from sfumato.core.settings import Settings
from sfumato.engine.keyframes import KeyframeChoice, consistency_ratio, parse_frame_list
from sfumato.jobs.video_keyframes import run_keyframes

pytestmark = pytest.mark.timeout(300)


def _frame(index: int, size: tuple[int, int] = (96, 96)) -> Image.Image:
    picture = Image.new("RGB", size, (30, 60, 220))
    cx, cy = 30 + 2 * index, 48
    ImageDraw.Draw(picture).ellipse((cx - 14, cy - 14, cx + 14, cy + 14), fill=(220, 30, 30))
    return picture


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("clip") / "drift.mp4"
    write_mp4(path, (_frame(i) for i in range(12)), 12.0)
    return path


def _request(**fields: object) -> GenerationRequest:
    return GenerationRequest.model_validate(
        {"prompt": "a red circle on a blue background", "seed": 3, "steps": 4, "denoising_strength": 0.5}
        | fields
    )


def _settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data")


def test_a_video_becomes_an_ebsynth_project_with_a_preview(clip: Path, tmp_path: Path) -> None:
    folder = tmp_path / "project"
    result = run_keyframes(
        _settings(tmp_path), open_clip(clip), KeyframeChoice(every=5), _request(frozen_noise=True), folder
    )
    assert result.keyframes == [1, 6, 11]
    assert sorted(p.name for p in (folder / "video").iterdir()) == [f"{n:04d}.png" for n in range(1, 13)]
    assert sorted(p.name for p in (folder / "keys").iterdir()) == ["0001.png", "0006.png", "0011.png"]
    for key in (folder / "keys").iterdir():
        with Image.open(key) as picture:
            assert picture.size == (96, 96)
    readme = (folder / "README.txt").read_text()
    assert "video/[####].png" in readme and "keys/[####].png" in readme and "EbSynth" in readme
    assert result.consistency is not None and f"{result.consistency:.3f}" in readme
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temp folder left

    with av.open(str(folder / "preview.mp4")) as container:
        frames = [f.to_image() for f in container.decode(container.streams.video[0])]
    assert len(frames) == 12 and frames[0].size == (192, 96)  # source | stylised keyframe
    stylised = np.asarray(frames[7])[:, 96:].astype(float)
    with Image.open(folder / "keys" / "0006.png") as key6:
        assert np.abs(stylised - np.asarray(key6, dtype=float)).mean() < 12  # frame 8 shows keyframe 6

    from sfumato.archive.metadata import read_metadata

    recipe = read_metadata(result.pictures[1]).request  # the archive keeps frozen_noise in the recipe
    assert recipe is not None and recipe.frozen_noise and recipe.seed == 3


def test_a_folder_of_frames_and_a_list_of_keyframes(tmp_path: Path) -> None:
    frames = tmp_path / "frames"
    frames.mkdir()
    for i in range(5):
        _frame(i, (104, 96)).save(frames / f"f{i:02d}.png")
    folder = tmp_path / "project"
    result = run_keyframes(
        _settings(tmp_path), open_clip(frames), KeyframeChoice(frames=(2, 5)), _request(), folder
    )
    assert result.keyframes == [2, 5]
    assert sorted(p.name for p in (folder / "keys").iterdir()) == ["0002.png", "0005.png"]
    with Image.open(folder / "keys" / "0005.png") as picture:
        assert picture.size == (104, 96)


def test_scene_changes_pick_the_first_frame_of_each_scene(tmp_path: Path) -> None:
    frames = tmp_path / "frames"
    frames.mkdir()
    for i in range(6):
        picture = _frame(i) if i < 3 else Image.new("RGB", (96, 96), (240, 240, 40))
        picture.save(frames / f"{i:03d}.png")
    folder = tmp_path / "project"
    result = run_keyframes(
        _settings(tmp_path), open_clip(frames), KeyframeChoice(scene_changes=True), _request(), folder
    )
    assert result.keyframes == [1, 4]


def test_bad_input_is_a_clear_error_and_writes_nothing(clip: Path, tmp_path: Path) -> None:
    text = tmp_path / "notes.txt"
    text.write_text("not a video\n" * 50)
    with pytest.raises(InvalidRequest, match="is not a video"):
        open_clip(text)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(InvalidRequest, match="holds no frames"):
        open_clip(empty)
    with pytest.raises(InvalidRequest, match="--every 0"):
        KeyframeChoice(every=0)
    with pytest.raises(InvalidRequest, match="exactly one"):
        KeyframeChoice(every=5, scene_changes=True)
    with pytest.raises(InvalidRequest, match="not frame numbers"):
        parse_frame_list("1,x")
    folder = tmp_path / "project"
    with pytest.raises(InvalidRequest, match="12 frames, so keyframe"):
        run_keyframes(
            _settings(tmp_path), open_clip(clip), KeyframeChoice(frames=(1, 40)), _request(), folder
        )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty", "notes.txt"]


def test_consistency_ratio() -> None:
    still = [Image.new("RGB", (8, 8), (0, 0, 0))] * 3
    moving = [Image.new("RGB", (8, 8), (v, v, v)) for v in (0, 51, 102)]
    assert consistency_ratio(moving, moving) == pytest.approx(1.0)
    assert consistency_ratio(moving, [Image.new("RGB", (8, 8), (v, v, v)) for v in (0, 102, 204)]) == (
        pytest.approx(2.0)
    )
    assert consistency_ratio(still, moving) is None and consistency_ratio(moving[:1], moving[:1]) is None


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SFUMATO_DATA_DIR": str(cwd / "data"), "OMP_NUM_THREADS": "1"}
    return subprocess.run(
        [str(Path(sys.executable).parent / "sfumato"), *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=240,
    )


@pytest.mark.slow
def test_cli_prints_the_consistency(clip: Path, tmp_path: Path) -> None:
    folder = tmp_path / "project"
    done = _cli(
        "video", "keyframes", str(clip), "--every", "6", "--frozen-noise", "--prompt", "a red circle",
        "--steps", "3", "--seed", "1", "--out", str(folder), cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == str(folder)
    assert "2 keyframe(s) stylised for EbSynth; consistency" in " ".join(done.stderr.split())
    assert (folder / "keys" / "0007.png").is_file()


def test_cli_refuses_every_zero(clip: Path, tmp_path: Path) -> None:
    refused = _cli("video", "keyframes", str(clip), "--every", "0", "--prompt", "x", cwd=tmp_path)
    assert refused.returncode == 1
    assert refused.stderr.strip().splitlines() == [
        "error: --every 0 picks no frames. Give a keyframe interval of 1 or more frames."
    ]
