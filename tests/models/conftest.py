from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def _library_without_the_builtin_model(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Listings in these tests hold only the files each test writes, unless it asks for the built-in model."""
    if request.node.get_closest_marker("builtin_model") is None:
        from sfumato.models import loading, upscalers

        monkeypatch.setattr(loading, "demo_model_folder", lambda: tmp_path / "no-builtin-model")
        monkeypatch.setattr(upscalers, "demo_upscaler_file", lambda: tmp_path / "no-builtin-upscaler")
