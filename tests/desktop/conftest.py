import os

# Widgets render offscreen: no display is needed, in CI or here.
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import gc
from collections.abc import Iterator
from typing import Any

import pytest
from studio_fakes import StudioFakeRun

from sfumato.core.settings import Settings


@pytest.fixture(scope="module", autouse=True)
def only_new_objects_are_collected() -> Iterator[None]:
    """What existed before the module (torch, diffusers, earlier tests) is frozen out of the garbage
    collector while it runs, so the collection after each test scans only what the module made: a full
    collection over everything takes most of a second here, times 112 tests."""
    gc.freeze()
    yield
    gc.unfreeze()


@pytest.fixture(autouse=True)
def qt_garbage_goes_on_the_main_thread(qapp: Any, only_new_objects_are_collected: None) -> Iterator[None]:
    """Windows and dialogs a test leaves are deleted and collected here, on the GUI thread. Left to the
    garbage collector, they can be collected later on an engine thread of another test, and Qt objects
    deleted off the GUI thread crash the process (seen: a segfault "Garbage-collecting" in a model load)."""
    yield
    from PySide6.QtCore import QCoreApplication, QEvent

    QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)
    gc.collect()


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
