"""spandrel imports without torchvision, leaves no stand-in behind, and uses a real torchvision when present."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from sfumato.models.spandrel_import import InterpolationMode, normalize, rotate


def _run(code: str, extra_path: Path | None = None) -> str:
    env_path = [str(extra_path)] if extra_path else []
    prelude = f"import sys; sys.path[:0] = {env_path!r}\n"
    done = subprocess.run(
        [sys.executable, "-c", prelude + textwrap.dedent(code)], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


@pytest.mark.parametrize("mode", [InterpolationMode.NEAREST, InterpolationMode.BILINEAR])
@pytest.mark.parametrize(("angle", "turns"), [(90.0, 1), (-90.0, -1), (180.0, 2)])
def test_rotate_turns_counter_clockwise_like_torchvision(
    mode: InterpolationMode, angle: float, turns: int
) -> None:
    picture = torch.arange(2 * 3 * 6 * 6, dtype=torch.float32).reshape(2, 3, 6, 6)
    expected = torch.rot90(picture, turns, dims=(-2, -1))
    assert torch.allclose(rotate(picture, torch.tensor(angle), mode), expected, atol=1e-3)


def test_rotate_fills_what_comes_from_outside() -> None:
    picture = torch.ones(1, 1, 9, 9)
    turned = rotate(picture, 45.0, InterpolationMode.BILINEAR, fill=2.0)
    assert turned[0, 0, 0, 0] == pytest.approx(2.0)  # a corner comes from outside the picture
    assert turned[0, 0, 4, 4] == pytest.approx(1.0)


def test_normalize_is_per_channel() -> None:
    picture = torch.rand(1, 3, 4, 4)
    out = normalize(picture, [0.5, 0.25, 0.0], [0.5, 0.5, 2.0])
    assert torch.allclose(out[0, 1], (picture[0, 1] - 0.25) / 0.5)
    assert torch.allclose(out[0, 2], picture[0, 2] / 2.0)


def test_spandrel_imports_and_no_fake_torchvision_is_left_behind() -> None:
    out = _run(
        """
        import sys
        from sfumato.models.spandrel_import import import_spandrel
        spandrel = import_spandrel()
        from spandrel import ModelLoader, MAIN_REGISTRY
        from transformers import CLIPTextModel  # still imports: it never saw a torchvision
        import transformers.utils.import_utils as iu
        print(len(MAIN_REGISTRY), "torchvision" in sys.modules, iu.is_torchvision_available())
        """
    )
    architectures, left_behind, transformers_sees_it = out.split()
    assert int(architectures) > 20
    assert left_behind == "False"
    assert transformers_sees_it == "False"


def test_a_real_torchvision_is_used_where_it_imports(tmp_path: Path) -> None:
    functional = tmp_path / "torchvision" / "transforms" / "functional.py"
    functional.parent.mkdir(parents=True)
    (tmp_path / "torchvision" / "__init__.py").write_text("REAL = True\n")
    (functional.parent / "__init__.py").write_text("")
    functional.write_text(
        "import enum\nclass InterpolationMode(enum.Enum):\n    BILINEAR = 'bilinear'\n"
        "def rotate(*a, **k): raise RuntimeError\ndef normalize(x, mean, std): return x\n"
    )
    out = _run(
        """
        import sys
        from sfumato.models.spandrel_import import import_spandrel
        import_spandrel()
        import spandrel.architectures.RestoreFormer as rf
        print(getattr(sys.modules.get("torchvision"), "REAL", False), rf.tv_normalize.__module__)
        """,
        extra_path=tmp_path,
    )
    assert out == "True torchvision.transforms.functional"
