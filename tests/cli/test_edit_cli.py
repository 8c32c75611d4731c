"""`sfumato edit` and `sfumato invert` on the demo model, and their one-line errors."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from sfumato.demo import judge, world

SFUMATO = str(Path(sys.executable).parent / "sfumato")
pytestmark = pytest.mark.timeout(300)


def _run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SFUMATO_DATA_DIR": str(cwd / "data"), "OMP_NUM_THREADS": "1"}
    return subprocess.run([SFUMATO, *args], capture_output=True, text=True, env=env, cwd=cwd, timeout=240)


@pytest.fixture()
def picture(tmp_path: Path) -> Path:
    path = tmp_path / "circle.png"
    world.render(world.Scene((world.SceneObject("circle", "red", "center", "large"),), "white")).save(path)
    return path


@pytest.mark.slow
def test_edit_saves_the_changed_picture(picture: Path, tmp_path: Path) -> None:
    done = _run(
        "edit", str(picture), "--from", "a red circle on a white background",
        "--to", "a blue circle on a white background", "--steps", "10", "-o", str(tmp_path / "out"), cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    saved = Path(done.stdout.strip())
    assert saved.parent == tmp_path / "out" / "edits"
    with Image.open(saved) as edited:
        assert "Edit from: a red circle on a white background" in edited.info["parameters"]
        assert [(o.colour, o.shape) for o in judge.judge(edited.convert("RGB")).objects] == [
            ("blue", "circle")
        ]


@pytest.mark.slow
def test_invert_prints_the_reconstruction(picture: Path, tmp_path: Path) -> None:
    done = _run(
        "invert",
        str(picture),
        "--prompt",
        "a red circle on a white background",
        "--steps",
        "10",
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("reconstruction PSNR ")
    assert float(done.stdout.split()[2]) >= 30


def test_edit_errors_are_one_line(picture: Path, tmp_path: Path) -> None:
    same = _run("edit", str(picture), "--from", "a red circle", "--to", "a red circle", cwd=tmp_path)
    assert same.returncode == 1
    assert same.stderr.strip().splitlines() == [
        "error: Invalid edit: request: the source and target prompts are the same, so nothing would change; "
        "change a word."
    ]
    missing = _run("edit", str(tmp_path / "nope.png"), "--from", "a", "--to", "b", cwd=tmp_path)
    assert missing.returncode == 1 and "could not be opened" in missing.stderr
    assert len(missing.stderr.strip().splitlines()) == 1
