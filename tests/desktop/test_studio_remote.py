"""The studio over another machine's `sfumato serve` (URL + token), instead of the engine in-process."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from studio_fakes import StudioFakeRun, live_server

from sfumato.core.settings import Settings
from sfumato.desktop.model.preferences import Preferences, save_preferences
from sfumato.jobs.remote import RemoteError, RemoteServer

TOKEN = "s3cret-token-for-the-test"


@pytest.fixture
def server(tmp_path: Path) -> Any:
    from sfumato.server.app import create_app
    from sfumato.server.context import ServerConfig

    settings = Settings(data_dir=tmp_path / "server")  # another machine: its own outputs and archive
    run = StudioFakeRun(settings.outputs, settings)
    app = create_app(
        settings, config=ServerConfig(listen="127.0.0.1", port=0, token=TOKEN), run=run, poll_seconds=0.1
    )
    with live_server(app) as url:
        yield url, settings, run


def test_a_frame_job_runs_on_the_remote_server_and_its_pictures_come_home(server: Any, qtbot: Any) -> None:
    from sfumato.desktop.app import build_window

    url, _, run = server
    settings = Settings()
    save_preferences(settings, Preferences(remote_url=url, remote_token=TOKEN))
    window = build_window(settings)
    qtbot.addWidget(window)
    try:
        window.studio.prompt.update(prompt="a red circle", steps=3, batch_size=2)
        job_id = window.generate()
        assert job_id is not None
        jobs = window.studio.jobs
        qtbot.waitUntil(
            lambda: jobs.jobs[job_id].state in ("finished", "failed", "cancelled"), timeout=20_000
        )
        view = jobs.jobs[job_id]
        assert view.state == "finished", view.message
        assert [r.prompt for r in run.requests] == ["a red circle"]  # the server's engine drew it
        assert view.preview is not None  # previews came over the event stream
        assert len(view.variants) == 2
        for variant in view.variants:
            assert variant.path.is_relative_to(settings.outputs) and variant.path.is_file()
            assert variant.recipe is not None and variant.recipe["prompt"] == "a red circle"
        with Image.open(view.variants[1].path) as picture:
            assert picture.size == (96, 96) and picture.getpixel((0, 0)) == (40, 200, 40)
        layer = window.apply_variant()
        assert layer is not None and layer.recipe is not None
        # the pictures are in this machine's archive, so the gallery finds them
        window.gallery.search.setText("red circle")
        window.gallery.refresh()
        assert window.gallery.pictures.count() == 2
    finally:
        window.bridge.stop()


def test_a_wrong_token_or_address_is_a_clear_error(server: Any) -> None:
    url, _, _ = server
    with pytest.raises(RemoteError, match="refused GET /api/health: HTTP 401"):
        RemoteServer(url, "wrong").json("GET", "/api/health")
    with pytest.raises(RemoteError, match="is not a server address"):
        RemoteServer("gpu-box:7860")
    with pytest.raises(RemoteError, match="cannot be reached"):
        RemoteServer("http://127.0.0.1:9", timeout=2).json("GET", "/api/health")


def test_a_training_from_the_studio_runs_on_the_remote_server_into_its_library(
    server: Any, qtbot: Any, tmp_path: Path
) -> None:
    from sfumato.desktop.app import build_window
    from sfumato.desktop.ui.training_dialog import TrainingDialog
    from sfumato.prompts.networks import LibraryResolver
    from sfumato.training.world_examples import concept_examples

    url, server_settings, _ = server
    folder = tmp_path / "pink"
    folder.mkdir()
    for index, example in enumerate(concept_examples(3, colour="pink", name="sfpink")):
        example.image.save(folder / f"{index}.png")
        (folder / f"{index}.txt").write_text(example.caption)
    settings = Settings()
    save_preferences(settings, Preferences(remote_url=url, remote_token=TOKEN))
    window = build_window(settings)
    qtbot.addWidget(window)
    try:
        dialog = TrainingDialog(None, window)
        dialog.folder.setText(str(folder))
        dialog.name.setText("sfpink")
        dialog.steps.setValue(2)
        dialog.sample_every.setValue(0)
        dialog.accept()
        assert dialog.request is not None
        window.queue_training(dialog.request)
        jobs = window.studio.jobs.jobs
        qtbot.waitUntil(
            lambda: any(v.state in ("finished", "failed") for v in jobs.values()), timeout=240_000
        )
        (view,) = jobs.values()
        assert view.state == "finished", view.message
        on_server = LibraryResolver(server_settings)("embedding", "sfpink")
        assert on_server is not None and view.output == str(on_server) and on_server.is_file()
        assert view.loss is not None  # the loss came over the server's event stream
        assert LibraryResolver(settings)("embedding", "sfpink") is None  # the file is the server's
    finally:
        window.bridge.stop()
