"""A1111's face restoration fields: restore_faces on txt2img/img2img and /sdapi/v1/face-restorers."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient
from server_helpers import TinyRun, finished_job

from sfumato.core.postprocess import RestoreFacesStep
from sfumato.core.settings import Settings
from sfumato.server import create_app
from sfumato.server.a1111.convert import txt2img_request
from sfumato.server.a1111.schemas import Txt2ImgRequest
from sfumato.server.catalog import ModelEntry, StaticCatalog


def test_restore_faces_becomes_a_restore_step_with_a1111s_options() -> None:
    plain = txt2img_request(Txt2ImgRequest(prompt="a face"))
    assert plain.postprocess == []
    asked = txt2img_request(
        Txt2ImgRequest(
            prompt="a face",
            restore_faces=True,
            override_settings={"face_restoration_model": "CodeFormer", "code_former_weight": 0.3},
        )
    )
    assert asked.postprocess == [RestoreFacesStep(model="CodeFormer", codeformer_weight=0.3)]
    assert txt2img_request(Txt2ImgRequest(restore_faces=True)).postprocess == [RestoreFacesStep()]


def test_face_restorers_lists_the_families_and_where_a_file_is(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data")
    catalog = StaticCatalog(
        [ModelEntry(name="GFPGANv1.4", filename="GFPGAN/GFPGANv1.4.safetensors", kind="restorer")]
    )
    app = create_app(settings, run=TinyRun(settings), catalog=catalog, poll_seconds=0.05)
    with TestClient(app, base_url="http://127.0.0.1:7860") as client:
        listed = client.get("/sdapi/v1/face-restorers").json()
    assert listed == [
        {"name": "GFPGAN", "cmd_dir": "GFPGAN"},
        {"name": "RestoreFormer", "cmd_dir": None},
        {"name": "CodeFormer", "cmd_dir": None},
    ]


def test_sfumatos_api_runs_the_anatomy_gate_and_the_detailer_on_the_demo_model(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data")
    app = create_app(settings, poll_seconds=0.05)
    request = {
        "prompt": "a red circle",
        "seed": 4,
        "steps": 15,
        "anatomy_gate": {"budget": 3},
        "postprocess": [{"kind": "detail", "target": "face", "denoising_strength": 0.3}],
    }
    with TestClient(app, base_url="http://127.0.0.1:7860") as client:
        refused = client.post(
            "/api/jobs",
            json={"request": {**request, "postprocess": [{"kind": "detail", "detector": "/etc/x.onnx"}]}},
        )
        assert refused.status_code == 422 and "not accepted over the network" in refused.text
        submitted = client.post("/api/jobs", json={"request": request})
        assert submitted.status_code == 202, submitted.text
        job = finished_job(client, submitted.json()["id"])
        assert job["state"] == "finished", job
    parameters = job["images"][0]["infotext"]
    # Measured: seed 4 set aside, seed 100007 passed.
    assert "Anatomy gate: seed 4 set aside; 1 re-render; passed" in parameters
    assert "ADetailer model: face (auto)" in parameters
    recipe = job["images"][0]["recipe"]
    assert recipe["seed"] != 4 and recipe["postprocess"][0]["kind"] == "detail"


def test_sfumatos_api_restores_the_faces_of_a_picture(tmp_path: Path) -> None:
    import base64
    import io

    from PIL import Image

    from sfumato.core.images import to_data_uri

    settings = Settings(data_dir=tmp_path / "data", model_folders=[tmp_path / "models"])
    app = create_app(settings, run=TinyRun(settings), poll_seconds=0.05)
    flat = Image.new("RGB", (64, 64), (10, 120, 200))
    with TestClient(app, base_url="http://127.0.0.1:7860") as client:
        answer = client.post("/api/restore-faces", json={"image": to_data_uri(flat)})
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert body["faces"] == [] and body["notes"] == ["No face was found, so no face was restored."]
        with Image.open(io.BytesIO(base64.b64decode(body["image"]))) as back:
            assert back.size == (64, 64) and back.getpixel((5, 5)) == (10, 120, 200)
        from skimage import data

        missing = client.post(
            "/api/restore-faces", json={"image": to_data_uri(Image.fromarray(data.astronaut()))}
        )
        assert missing.status_code == 404 and "No GFPGAN face-restorer file" in missing.text
        bad = client.post("/api/restore-faces", json={"image": to_data_uri(flat), "visibility": 2})
        assert bad.status_code == 422
