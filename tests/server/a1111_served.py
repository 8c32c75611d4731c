"""An A1111-compatible server on tiny models whose run honours the VAE a request names (as the real
runner does), with a VAE and a styles.csv of its own, for the A1111 field and replay tests."""

from __future__ import annotations

import base64
import dataclasses
import io
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
from fastapi.testclient import TestClient
from PIL import Image
from server_helpers import TINY_CATALOG, TinyRun

from sfumato.core.events import CancelToken, ProgressCallback
from sfumato.core.request import GenerationRequest
from sfumato.core.settings import Settings
from sfumato.jobs.model import SavedImage
from sfumato.server import create_app
from sfumato.server.catalog import ModelEntry, StaticCatalog

HEADERS = {"host": "127.0.0.1:7860"}
VAE = ModelEntry(name="tiny-vae", filename="tiny-vae.safetensors", kind="vae", hash="5555555555")
CATALOG = StaticCatalog([*TINY_CATALOG.entries, VAE])
STYLES_CSV = (
    "name,prompt,negative_prompt\n"
    '"Cinematic","cinematic still of {prompt}, film grain","cartoon"\n'
    '"Red","red","blue"\n'
)


class VaeTinyRun(TinyRun):
    """TinyRun whose requests may name ``tiny-vae``: another random VAE, swapped in for the job."""

    def __init__(self, settings: Settings, step_delay: float = 0.0) -> None:
        from tiny import tiny_components

        super().__init__(settings, step_delay)
        self.vae = tiny_components(seed=7).vae
        self.requests: list[GenerationRequest] = []

    def __call__(
        self, request: GenerationRequest, *, on_progress: ProgressCallback, cancel: CancelToken
    ) -> Sequence[SavedImage]:
        self.requests.append(request)
        name = request.model or "tiny"
        base = self.models[name]
        if request.vae == VAE.name:
            self.models[name] = dataclasses.replace(
                base, vae=self.vae, info=dataclasses.replace(base.info, vae_name=VAE.name, vae_hash=VAE.hash)
            )
        try:
            return super().__call__(request, on_progress=on_progress, cancel=cancel)
        finally:
            self.models[name] = base


@dataclasses.dataclass
class Served:
    client: TestClient
    run: VaeTinyRun
    settings: Settings

    def post(self, path: str, payload: dict[str, Any]) -> Any:
        return self.client.post("/sdapi/v1/" + path, json=payload)

    def picture(self, path: str, payload: dict[str, Any]) -> np.ndarray:
        answer = self.post(path, payload)
        assert answer.status_code == 200, answer.text
        return pixels(answer.json()["images"][0])


@contextmanager
def served_app(home: Path) -> Iterator[Served]:
    (home / "data").mkdir(parents=True, exist_ok=True)
    (home / "data" / "styles.csv").write_text(STYLES_CSV, "utf-8")
    settings = Settings(data_dir=home / "data")
    run = VaeTinyRun(settings)
    app = create_app(settings, run=run, catalog=CATALOG, poll_seconds=0.02)
    with TestClient(app, headers=HEADERS) as client:
        yield Served(client, run, settings)


def b64(image: Image.Image, format: str = "PNG") -> str:
    buffer = io.BytesIO()
    image.save(buffer, format=format)
    return base64.b64encode(buffer.getvalue()).decode()


def pixels(data: str) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(data))).convert("RGB"), dtype=np.float32)
