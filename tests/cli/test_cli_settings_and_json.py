"""Settings mistakes are one line (never a traceback), `sfumato config` says where each value comes
from, and under --json every command answers in JSON, errors included."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from sfumato.cli.main import app

SFUMATO = str(Path(sys.executable).parent / "sfumato")
runner = CliRunner()


def run(args: list[str], config: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """The real command in a process of its own, as a user runs it."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith("SFUMATO_")}
    environ |= {"SFUMATO_CONFIG": str(config), "SFUMATO_DATA_DIR": str(config.parent / "data"), **env}
    return subprocess.run(
        [SFUMATO, *args], capture_output=True, text=True, env=environ, check=False, timeout=120
    )


def one_clear_line(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 1, done
    assert "Traceback" not in done.stderr + done.stdout
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), done.stderr
    return lines[0]


@pytest.mark.parametrize(
    ("content", "env", "expected"),
    [
        ("port = \n", {}, "is not valid TOML"),
        ("prot = 8000\n", {}, "unknown setting 'prot'. Did you mean 'port'?"),
        ("", {"SFUMATO_PORT": "eighty"}, "port: Input should be a valid integer"),
        ("", {"SFUMATO_MODEL_FOLDERS": "[/models"}, "SFUMATO_MODEL_FOLDERS is not valid JSON"),
        ("preview_every = -1\n", {}, "preview_every: Input should be greater than or equal to 0"),
    ],
    ids=["malformed-toml", "unknown-key", "bad-env-number", "bad-env-list", "out-of-range"],
)
def test_bad_settings_are_one_line(tmp_path: Path, content: str, env: dict[str, str], expected: str) -> None:
    config = tmp_path / "config.toml"
    config.write_text(content)
    line = one_clear_line(run(["archive", "list"], config, **env))
    assert expected in line
    if env:
        assert f"(from {next(iter(env))})" in line or "is not valid JSON" in line


def test_config_shows_every_setting_and_where_it_comes_from(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text('port = 8000\nmodel_folders = ["/srv/models"]\n')
    done = run(["config", "--json"], config, SFUMATO_HOST="0.0.0.0", SFUMATO_TOKEN="s3cret")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    settings = report["settings"]
    assert report["config_file"] == str(config) and report["config_file_exists"] is True
    assert settings["port"] == {"value": 8000, "source": str(config)}
    assert settings["model_folders"] == {"value": ["/srv/models"], "source": str(config)}
    assert settings["host"] == {"value": "0.0.0.0", "source": "SFUMATO_HOST"}
    assert settings["precision"] == {"value": "auto", "source": "default"}
    assert settings["token"] == {"value": "(set)", "source": "SFUMATO_TOKEN"}
    assert "s3cret" not in done.stdout

    table = run(["config"], config, SFUMATO_TOKEN="s3cret")
    assert table.returncode == 0 and "SFUMATO_TOKEN" in table.stdout and "s3cret" not in table.stdout


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (["generate", "--json"], "Give a prompt"),
        (["info", "missing.png", "--json"], "does not exist"),
        (["archive", "show", "999", "--json"], "No picture with id 999"),
        (["models", "identify", "missing.safetensors", "--json"], "does not exist"),
        (["models", "add-folder", "no-such-folder", "--json"], "is not a folder"),
    ],
)
def test_errors_under_json_are_json_on_stdout(args: list[str], error: str) -> None:
    result = runner.invoke(app, args)
    assert result.exit_code == 1
    answer = json.loads(result.stdout)
    assert set(answer) == {"error", "hint"} and error in answer["error"]
    assert result.stderr == ""


def test_usage_errors_under_json_are_json() -> None:
    result = runner.invoke(app, ["img2img", "a cat", "--json"])  # --init is required
    assert result.exit_code == 2
    answer = json.loads(result.stdout)
    assert "--init" in answer["error"] and answer["hint"] == "See --help."


def test_errors_without_json_stay_one_line_on_stderr() -> None:
    result = runner.invoke(app, ["info", "missing.png"])
    assert result.exit_code == 1 and result.stdout == ""
    assert result.stderr.startswith("error: ") and "does not exist" in result.stderr


@pytest.mark.parametrize(
    "command",
    [
        ["generate"],
        ["img2img"],
        ["inpaint"],
        ["outpaint"],
        ["fix-crop"],
        ["upscale"],
        ["xyz"],
        ["info"],
        ["config"],
        ["archive", "list"],
        ["archive", "search"],
        ["archive", "show"],
        ["archive", "rebuild"],
        ["models", "list"],
        ["models", "add-folder"],
        ["models", "convert"],
        ["models", "identify"],
        ["prompt", "explain"],
        ["train", "demo"],
        ["train", "export"],
    ],
)
def test_every_command_that_prints_results_has_json(command: list[str]) -> None:
    shown = runner.invoke(app, [*command, "--help"], env={"COLUMNS": "200"})
    assert shown.exit_code == 0, shown.output
    assert "--json" in shown.stdout
