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
    settings = Settings()
    window = build_window(settings)
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

    # 6. the model browser: LoRAs and whether they fit the frame's model; the frame's resize handles
    add_library(data / "webui", settings)
    window.tabs.setCurrentWidget(window.models)
    window.models.refresh()
    window.models.select_kind("lora")
    first = window.models.trees["lora"].topLevelItem(0)
    assert first is not None
    window.models.trees["lora"].setCurrentItem(first)
    studio.prompt.update(prompt="a yellow star on a white background")
    cursor = window.prompt.prompt.textCursor()
    cursor.movePosition(cursor.MoveOperation.End)
    window.prompt.prompt.setTextCursor(cursor)
    window.models.use.click()  # "Add to prompt": the LoRA's tag at the cursor
    studio.set_tool(Tool.frame)
    studio.move_frame(48, 0)
    studio.set_frame(Rect(48, 0, 128, 96))
    canvas.resetTransform()
    canvas.zoom(3.0)
    canvas.centerOn(90, 48)
    shoot(app, window, "06-models.png")

    from sfumato.desktop.ui.training_dialog import TrainingDialog

    dialog = TrainingDialog(None, window)  # Generate → Train embedding or LoRA…
    dialog.folder.setText("/home/artist/pictures/mycat")
    dialog.name.setText("mycat")
    dialog.start_words.setText("cat")
    dialog.resize(560, dialog.sizeHint().height())
    dialog.show()
    shoot(app, dialog, "07-train-dialog.png")
    dialog.close()
    window.bridge.stop()


def add_library(root: Path, settings: Any) -> None:
    """A few LoRAs and embeddings (random weights) for the browser: some fit the built-in model
    (128-wide text), some are made for SD1 or SDXL."""
    import torch
    from safetensors.torch import save_file

    from sfumato.models.library import ModelLibrary

    attn = "lora_unet_down_blocks_1_attentions_0_transformer_blocks_0_attn2_to_k"
    loras, embeddings = root / "models" / "Lora", root / "embeddings"
    loras.mkdir(parents=True, exist_ok=True)
    embeddings.mkdir(parents=True, exist_ok=True)
    for name, width in (("demo-inkwash", 128), ("sd15-detail-tweaker", 768), ("xl-pixel-art", 2048)):
        tensors = {
            f"{attn}.lora_down.weight": torch.randn(4, width),
            f"{attn}.lora_up.weight": torch.randn(64, 4),
        }
        save_file(tensors, str(loras / f"{name}.safetensors"))
    for name, width in (("demo-style", 128), ("easynegative", 768)):
        save_file({"emb_params": torch.randn(2, width)}, str(embeddings / f"{name}.safetensors"))
    ModelLibrary(settings).add_folder(root)


if __name__ == "__main__":
    main()
