from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from hostile import one_line_error
from sfumato.cli.main import app
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


@pytest.mark.parametrize(
    ("content", "said"),
    [
        (b'port = "abc"', "The settings are invalid: port: Input should be a valid integer"),
        (b"port = 1e999", "port: Input should be a finite number"),
        (b"model_folders = 3", "model_folders: Input should be a valid list"),
        (b"default_model = ", "is not valid TOML"),
        (b"\xff\xfe", "it is not UTF-8 text"),
        (b"a = " + b"[" * 5000 + b"]" * 5000, "nested too deeply"),
    ],
)
def test_a_hostile_config_file_is_one_line_naming_it(
    content: bytes, said: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "config.toml"
    config.write_bytes(content)
    monkeypatch.setenv("SFUMATO_CONFIG", str(config))
    for command in (["models", "list"], ["archive", "list"], ["generate", "x"]):
        result = CliRunner().invoke(app, command)
        assert result.exit_code == 1, result.output
        assert one_line_error(result.output), result.output
        assert said in result.output and str(config) in " ".join(result.output.split())
