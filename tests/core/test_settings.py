from __future__ import annotations

from pathlib import Path

import pytest

from sfumato.core.settings import Settings


def test_config_file_then_environment_then_explicit_values(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "config.toml"
    config.write_text('default_model = "from-file"\npreview_every = 3\nport = 9000\n')
    monkeypatch.setenv("SFUMATO_CONFIG", str(config))
    monkeypatch.setenv("SFUMATO_PORT", "9100")
    settings = Settings()
    assert (settings.default_model, settings.preview_every, settings.port) == ("from-file", 3, 9100)
    assert Settings(preview_every=7).preview_every == 7


def test_outputs_default_inside_the_data_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SFUMATO_DATA_DIR", str(tmp_path))
    assert Settings().outputs == tmp_path / "outputs"
    monkeypatch.setenv("SFUMATO_OUTPUT_DIR", str(tmp_path / "pics"))
    assert Settings().outputs == tmp_path / "pics"


def test_importing_sfumato_turns_hugging_face_offline() -> None:
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "TRANSFORMERS_"))}
    script = "import os, sfumato; print(os.environ['HF_HUB_OFFLINE'], os.environ['TRANSFORMERS_OFFLINE'])"
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["1", "1"]
