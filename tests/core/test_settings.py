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

    import sfumato  # noqa: F401

    assert os.environ["HF_HUB_OFFLINE"] == "1" and os.environ["TRANSFORMERS_OFFLINE"] == "1"
