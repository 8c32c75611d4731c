"""A1111's face restoration fields: restore_faces on txt2img/img2img and /sdapi/v1/face-restorers."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient
from server_helpers import TinyRun

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
