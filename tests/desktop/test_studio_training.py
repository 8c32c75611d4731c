"""Generate → Train in the studio: the dialog builds the training request, the job runs in the
studio's queue on the built-in model, the queue shows its loss and the file it wrote, and the new
word is offered by the prompt's completion at once."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from PySide6.QtWidgets import QDialog

from sfumato.prompts.networks import LibraryResolver
from sfumato.training.world_examples import concept_examples

pytestmark = pytest.mark.timeout(300)


def _pictures(folder: Path) -> Path:
    folder.mkdir()
    for index, example in enumerate(concept_examples(4, colour="pink", name="sfpink")):
        example.image.save(folder / f"{index}.png")
        (folder / f"{index}.txt").write_text(example.caption)
    return folder


def test_a_training_queued_from_the_dialog_writes_the_embedding_the_prompt_then_offers(
    window: Any, qtbot: Any, tmp_path: Path
) -> None:
    from sfumato.desktop.ui.training_dialog import TrainingDialog

    assert window.actions_by_name["train"].text() == "Train embedding or LoRA…"
    dialog = TrainingDialog(None, window)
    dialog.folder.setText(str(_pictures(tmp_path / "pink")))
    dialog.name.setText("sfpink")
    dialog.start_words.setText("red")
    dialog.steps.setValue(3)
    dialog.sample_every.setValue(0)
    dialog.accept()
    assert dialog.result() == QDialog.DialogCode.Accepted and dialog.request is not None
    assert (dialog.request.kind, dialog.request.init_text, dialog.request.steps) == ("embedding", "red", 3)

    window.queue_training(dialog.request)
    jobs = window.studio.jobs.jobs
    qtbot.waitUntil(lambda: any(v.state in ("finished", "failed") for v in jobs.values()), timeout=240_000)
    (view,) = jobs.values()
    assert view.state == "finished", view.message
    written = LibraryResolver(window.settings)("embedding", "sfpink")
    assert written is not None and view.output == str(written) and written.is_file()
    assert view.loss is not None and view.loss > 0
    assert "wrote sfpink.safetensors" in window.queue.rows[view.id].status.text()
    assert "sfpink" in window.library_names("embedding")


def test_the_dialog_says_what_is_missing_and_stays_open(window: Any, tmp_path: Path) -> None:
    from sfumato.desktop.ui.training_dialog import TrainingDialog

    dialog = TrainingDialog(None, window)
    dialog.accept()
    assert dialog.request is None and "Choose the folder" in dialog.problem.text()
    dialog.folder.setText(str(tmp_path))
    dialog.name.setText("../escape")
    dialog.accept()
    assert dialog.request is None and "name" in dialog.problem.text()
    dialog.kind.setCurrentIndex(1)  # LoRA: its own learning rate and a trigger word
    assert dialog.learning_rate.value() == pytest.approx(1e-4)
    assert dialog.start_label.text() == "Trigger word"
