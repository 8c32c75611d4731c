import os

# Widgets render offscreen: no display is needed, in CI or here.
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from collections.abc import Iterator
from typing import Any

import pytest
from studio_fakes import StudioFakeRun

from sfumato.core.settings import Settings


@pytest.fixture
def fake_run() -> StudioFakeRun:
    return StudioFakeRun(Settings().outputs)


@pytest.fixture
def window(qtbot: Any, fake_run: StudioFakeRun) -> Iterator[Any]:
    """The studio window over a queue whose engine is a fake (no model)."""
    from sfumato.desktop.app import build_window

    studio_window = build_window(Settings(), run=fake_run)
    qtbot.addWidget(studio_window)
    studio_window.resize(1200, 800)
    studio_window.show()
    yield studio_window
    fake_run.gate.set()
    studio_window.bridge.stop()
