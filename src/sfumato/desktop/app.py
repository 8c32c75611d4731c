"""Starting the studio: settings, the queue with its worker, the window."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

from sfumato.core.settings import Settings
from sfumato.jobs.run_job import TrainFunction
from sfumato.jobs.warm_up import import_engine
from sfumato.jobs.worker import RunFunction

ICON = Path(__file__).parent / "resources" / "sfumato-studio.svg"


def build_window(settings: Settings, run: RunFunction | None = None, train: TrainFunction | None = None):
    """The window over a started queue; ``run`` and ``train`` replace the engine (tests)."""
    from sfumato.desktop.model.frame import Frame
    from sfumato.desktop.model.preferences import apply_preferences, load_preferences
    from sfumato.desktop.model.studio import Studio
    from sfumato.desktop.ui.jobs_bridge import JobsBridge, studio_queue
    from sfumato.desktop.ui.window import StudioWindow

    preferences = load_preferences(settings)
    settings = apply_preferences(settings, preferences)
    studio = Studio(settings.outputs)
    if preferences.frame_side:
        studio.frame = Frame(0, 0, preferences.frame_side, preferences.frame_side)
    studio.prompt.model = preferences.model
    studio.nsfw_filter = preferences.nsfw_filter
    studio.blocklists = list(settings.blocklists)
    if run is None and preferences.remote_url:
        from sfumato.archive.index import ArchiveIndex
        from sfumato.jobs.remote import RemoteServer, remote_run_function, remote_train_function

        server = RemoteServer(preferences.remote_url, preferences.remote_token)
        run = remote_run_function(server, ArchiveIndex.from_settings(settings))
        train = train or remote_train_function(server)
    elif run is None:
        from sfumato.jobs.local import runner_run_function

        run = runner_run_function(settings)
    bridge = JobsBridge(studio_queue(settings, run, train=train), studio.jobs)
    window = StudioWindow(settings, bridge, studio)
    bridge.setParent(
        window
    )  # deleted with the window, on the GUI thread, never by a garbage collection elsewhere
    window.engine = run
    bridge.start()
    return window


def open_studio(files: Sequence[str] = ()):
    """The application set up and the window shown with ``files`` open; None when it cannot start."""
    from PySide6.QtGui import QIcon
    from PySide6.QtWidgets import QApplication, QMessageBox

    from sfumato.core.errors import SfumatoError

    app = QApplication.instance() or QApplication(["sfumato-studio"])
    assert isinstance(app, QApplication)
    app.setApplicationName("Sfumato Studio")
    app.setDesktopFileName("sfumato-studio")
    app.setWindowIcon(QIcon(str(ICON)))
    splash = _splash()
    import_engine()
    try:
        window = build_window(Settings())
    except SfumatoError as error:
        splash.close()
        QMessageBox.critical(None, "Sfumato Studio", str(error))
        return None
    for path in files:
        window.open_path(Path(path))
    window.show()
    splash.finish(window)
    return window


USAGE = """usage: sfumato-studio [FILE ...]

Sfumato Studio, the canvas app. FILE: canvases (.ora, .psd) or pictures to open.

  --help        this text
  --smoke-test  start, make one picture with the built-in model in the frame, print where it
                was saved, and quit (checks an installation or a standalone bundle)
  --install-desktop-entry
                Linux: add Sfumato Studio (this executable) to the applications menu, then quit
"""


def main(argv: Sequence[str] | None = None) -> int:
    from PySide6.QtWidgets import QApplication

    args = list(sys.argv if argv is None else argv)
    if "--help" in args[1:] or "-h" in args[1:]:
        print(USAGE, end="")
        return 0
    if "--smoke-test" in args[1:]:
        return smoke_test()
    if "--install-desktop-entry" in args[1:]:
        from sfumato.desktop.install import install_desktop_entry

        for path in install_desktop_entry():
            print(f"Wrote {path}")
        return 0
    app = QApplication.instance() or QApplication(args)
    window = open_studio(args[1:])
    return app.exec() if window is not None else 1


def smoke_test(timeout: float = 300.0) -> int:
    """The window built over the real engine, one picture made in the frame; 0 when it was saved."""
    import time

    from PySide6.QtWidgets import QApplication

    app = QApplication.instance() or QApplication(["sfumato-studio"])
    import_engine()
    window = build_window(Settings())
    try:
        window.studio.prompt.update(
            prompt="a red circle at the top left on a white background", steps=20, batch_size=1, seed=1
        )
        job_id = window.generate()
        if job_id is None:
            print("smoke test: could not queue a job:", window.statusBar().currentMessage())
            return 1
        view = window.studio.jobs.jobs[job_id]
        deadline = time.monotonic() + timeout
        while view.state not in ("finished", "failed", "cancelled") and time.monotonic() < deadline:
            app.processEvents()
            time.sleep(0.02)
        saved = [str(variant.path) for variant in view.variants]
        print(f"smoke test: job {view.state}", *saved, view.message)
        return 0 if view.state == "finished" and saved else 1
    finally:
        window.bridge.stop()


def _splash():
    from PySide6.QtCore import Qt
    from PySide6.QtGui import QColor, QPixmap
    from PySide6.QtWidgets import QApplication, QSplashScreen

    pixmap = QPixmap(420, 160)
    pixmap.fill(QColor(40, 40, 46))
    splash = QSplashScreen(pixmap)
    splash.showMessage(
        "Sfumato Studio\n\nLoading the engine…", Qt.AlignmentFlag.AlignCenter, QColor(230, 230, 230)
    )
    splash.show()
    QApplication.processEvents()
    return splash


if __name__ == "__main__":
    raise SystemExit(main())
