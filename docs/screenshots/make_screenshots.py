"""Screenshots of Sfumato Studio in its main states, made with the real engine and the built-in model.

Starts the app offscreen (no display needed) with a fresh data folder, drives it through its
actions as a user would, and saves PNGs beside this script:

    QT_QPA_PLATFORM=offscreen .venv/bin/python docs/screenshots/make_screenshots.py
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).parent
SIZE = (1400, 880)


def wait(app: Any, done: Any, timeout: float = 300.0) -> None:
    start = time.monotonic()
    while not done():
        app.processEvents()
        time.sleep(0.01)
        if time.monotonic() - start > timeout:
            raise TimeoutError("the job did not finish")


def shoot(app: Any, window: Any, name: str) -> None:
    for _ in range(5):
        app.processEvents()
    window.grab().save(str(HERE / name))
    print("saved", HERE / name)


def generate(app: Any, window: Any) -> None:
    job_id = window.generate()
    assert job_id is not None, window.statusBar().currentMessage()
    wait(app, lambda: window.studio.jobs.jobs[job_id].state in ("finished", "failed", "cancelled"))
    print(window.studio.jobs.jobs[job_id].state, window.studio.jobs.jobs[job_id].message)


def main() -> None:
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    data = Path(tempfile.mkdtemp(prefix="sfumato-screens-"))
    os.environ["SFUMATO_DATA_DIR"] = str(data)
    os.environ["SFUMATO_CONFIG"] = str(data / "none.toml")
    sys.path.insert(0, str(HERE.parents[1] / "src"))

    from PySide6.QtWidgets import QApplication

    from sfumato.core.settings import Settings
    from sfumato.desktop.app import build_window
    from sfumato.desktop.model.document import Rect
    from sfumato.desktop.model.studio import Tool
    from sfumato.jobs.warm_up import import_engine

    app = QApplication(["sfumato-studio"])
    import_engine()
    window = build_window(Settings())
    window.resize(*SIZE)
    window.show()
    studio, canvas = window.studio, window.canvas

    # 1. a fresh canvas: the frame, and what Generate will do there
    studio.move_frame(0, 0)
    canvas.resetTransform()
    canvas.zoom(4.0)
    canvas.centerOn(48, 48)
    studio.prompt.update(prompt="a red circle at the top left on a white background", seed=1, batch_size=4)
    shoot(app, window, "01-empty-canvas.png")

    # 2. variants of the first picture, stepped through on the canvas
    generate(app, window)
    studio.step_variant(1)
    shoot(app, window, "02-variants.png")
    studio.step_variant(-1)
    window.apply_variant()

    # 3. a mask painted over the bottom right, the prompt weighted, the frame ready to inpaint
    studio.set_selection(Rect(56, 56, 40, 40))
    window.fill_mask_from_selection()
    studio.set_selection(None)
    studio.set_tool(Tool.brush)
    studio.prompt.update(
        prompt="a large (blue square:1.3) at the bottom right on a white background",
        negative_prompt="red",
        denoising_strength=1.0,
    )
    window.tabs.setCurrentWidget(window.layers)
    text = window.prompt.prompt
    cursor = text.textCursor()
    start = text.toPlainText().index("blue square")
    cursor.setPosition(start)
    cursor.setPosition(start + len("blue square"), cursor.MoveMode.KeepAnchor)
    text.setTextCursor(cursor)
    shoot(app, window, "03-mask-and-frame.png")

    # 4. the inpainted result applied; the frame moved over the edge to extend the picture
    generate(app, window)
    window.apply_variant()
    mask = studio.active_mask()
    if mask is not None:
        studio.document.set(mask.id, "visible", False)
    studio.set_tool(Tool.frame)
    studio.move_frame(48, 0)
    studio.prompt.update(
        prompt="a yellow star on a white background", negative_prompt="", denoising_strength=0.75
    )
    canvas.resetTransform()
    canvas.zoom(3.5)
    canvas.centerOn(72, 48)
    shoot(app, window, "04-outpaint-frame.png")

    # 5. the gallery over the archive, searched by prompt
    window.tabs.setCurrentWidget(window.gallery)
    window.gallery.search.setText("blue square")
    window.gallery.refresh()
    shoot(app, window, "05-gallery.png")
    window.bridge.stop()


if __name__ == "__main__":
    main()
