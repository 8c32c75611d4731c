from __future__ import annotations

import json
from pathlib import Path

import pytest

from tiny import SCHEDULER_CONFIG, tiny_components


@pytest.fixture(scope="session")
def tiny_model_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random SD1-like model saved as a diffusers folder, as a user would have one."""
    folder = tmp_path_factory.mktemp("models") / "tiny-sd"
    components = tiny_components()
    components.unet.save_pretrained(folder / "unet")
    components.vae.save_pretrained(folder / "vae")
    components.text_encoder.save_pretrained(folder / "text_encoder")
    (folder / "scheduler").mkdir()
    scheduler = dict(SCHEDULER_CONFIG, _class_name="PNDMScheduler")
    (folder / "scheduler" / "scheduler_config.json").write_text(json.dumps(scheduler))
    index = {
        "_class_name": "StableDiffusionPipeline",
        "unet": ["diffusers", "UNet2DConditionModel"],
        "vae": ["diffusers", "AutoencoderKL"],
        "text_encoder": ["transformers", "CLIPTextModel"],
        "tokenizer": ["transformers", "CLIPTokenizer"],
        "scheduler": ["diffusers", "PNDMScheduler"],
    }
    (folder / "model_index.json").write_text(json.dumps(index))
    return folder
