"""POST /api/train: a training job over the API, with its pictures in the body; progress over the
job events; the finished job names the file written into the library."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from server_helpers import TinyRun, finished_job

from sfumato.core.images import to_data_uri
from sfumato.core.settings import Settings
from sfumato.jobs.run_job import training_run_function
from sfumato.prompts.networks import LibraryResolver
from sfumato.server import create_app
from sfumato.training.world_examples import concept_examples

pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TestClient, Settings]]:
    from tiny import tiny_components

    settings = Settings(data_dir=tmp_path_factory.mktemp("train") / "data")
    tiny = tiny_components()
    train = training_run_function(settings, components_for=lambda _: tiny)
    app = create_app(settings, run=TinyRun(settings), poll_seconds=0.05, train=train)
    with TestClient(app, base_url="http://127.0.0.1:7860") as client:
        yield client, settings


def _pictures(count: int = 4) -> list[dict[str, str]]:
    return [
        {"image": to_data_uri(e.image), "caption": e.caption}
        for e in concept_examples(count, colour="pink", name="sfpink")
    ]


def test_a_training_job_over_the_api(served: tuple[TestClient, Settings]) -> None:
    client, settings = served
    training = {"kind": "embedding", "name": "sfpink", "init_text": "red", "steps": 3, "batch": 2}
    with client.websocket_connect("ws://127.0.0.1:7860/api/events/ws") as ws:
        response = client.post("/api/train", json={"training": training, "pictures": _pictures()})
        assert response.status_code == 202, response.text
        job = response.json()
        assert job["kind"] == "train" and job["training"]["name"] == "sfpink"
        events = []
        while not events or events[-1]["type"] not in ("finished", "failed", "cancelled"):
            events.append(ws.receive_json())
    assert [e["step"] for e in events if e["type"] == "progress"] == [1, 2, 3]
    assert all(e["loss"] > 0 for e in events if e["type"] == "progress")
    assert events[-1]["type"] == "finished", events[-1]
    done = client.get(f"/api/jobs/{job['id']}").json()
    assert done["state"] == "finished", done
    assert done["output"] == str(LibraryResolver(settings)("embedding", "sfpink"))


def test_a_training_job_tells_which_captions_the_interrogator_wrote(
    served: tuple[TestClient, Settings],
) -> None:
    client, _ = served
    pictures = _pictures(3)
    del pictures[0]["caption"], pictures[2]["caption"]
    training = {"kind": "embedding", "name": "sfpink-guessed", "init_text": "red", "steps": 1}
    response = client.post("/api/train", json={"training": training, "pictures": pictures})
    assert response.status_code == 202, response.text
    done = finished_job(client, response.json()["id"])
    assert done["state"] == "finished", done
    assert any(note.startswith("2 pictures had no caption") for note in done["notes"]), done["notes"]


def test_bad_training_requests_are_refused(served: tuple[TestClient, Settings]) -> None:
    client, _ = served
    good = {"kind": "embedding", "name": "other", "steps": 2}
    folder = client.post("/api/train", json={"training": good | {"images": "/etc"}, "pictures": _pictures(1)})
    assert folder.status_code == 422 and "cannot name a folder" in folder.text
    name = client.post("/api/train", json={"training": good | {"name": "../x"}, "pictures": _pictures(1)})
    assert name.status_code == 422 and "name" in name.text
    none = client.post("/api/train", json={"training": good, "pictures": []})
    assert none.status_code == 422
    broken = client.post(
        "/api/train", json={"training": good, "pictures": [{"image": "data:image/png;base64,AAAA"}]}
    )
    assert broken.status_code == 422 and "picture 1" in broken.text
