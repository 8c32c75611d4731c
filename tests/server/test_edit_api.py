"""POST /api/edit on the demo model: the edited picture and its mask come back, and it is saved."""

from __future__ import annotations

import base64
import io
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from PIL import Image
from server_helpers import TinyRun

from sfumato.core.images import to_data_uri
from sfumato.core.settings import Settings
from sfumato.demo import judge, world
from sfumato.server import create_app

pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TestClient, Settings]]:
    settings = Settings(data_dir=tmp_path_factory.mktemp("edit") / "data")
    app = create_app(settings, run=TinyRun(settings), poll_seconds=0.05)
    with TestClient(app, base_url="http://127.0.0.1:7860") as client:
        yield client, settings


def test_an_edit_over_the_api(served: tuple[TestClient, Settings]) -> None:
    client, settings = served
    picture = world.render(world.Scene((world.SceneObject("circle", "red", "center", "large"),), "white"))
    body = {
        "picture": to_data_uri(picture),
        "source_prompt": "a red circle on a white background",
        "target_prompt": "a blue circle on a white background",
        "steps": 10,
    }
    response = client.post("/api/edit", json=body)
    assert response.status_code == 200, response.text
    result = response.json()
    edited = Image.open(io.BytesIO(base64.b64decode(result["image"]))).convert("RGB")
    assert [(o.colour, o.shape) for o in judge.judge(edited).objects] == [("blue", "circle")]
    assert (settings.outputs / result["path"]).is_file()


def test_bad_edits_are_refused(served: tuple[TestClient, Settings]) -> None:
    client, _ = served
    path = client.post(
        "/api/edit", json={"picture": "/etc/passwd", "source_prompt": "a", "target_prompt": "b"}
    )
    assert path.status_code == 422 and "data: URI" in path.text
    same = client.post(
        "/api/edit",
        json={"picture": "data:image/png;base64,AAAA", "source_prompt": "a", "target_prompt": "a"},
    )
    assert same.status_code == 422 and "the same" in same.text
