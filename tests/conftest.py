import json
import os
from pathlib import Path

os.environ["HF_HUB_OFFLINE"] = "1"

import pytest
import torch

# CI runs the suite at 1 thread and again at 2 (SFUMATO_TEST_THREADS=2): a test that passes only for one
# summation order of the CPU fails one of the runs.
torch.set_num_threads(int(os.environ.get("SFUMATO_TEST_THREADS", "1")))


@pytest.fixture(autouse=True)
def _isolated_settings(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test sees empty user folders: no config file, data dir in a temp folder."""
    home = tmp_path_factory.mktemp("sfumato-home")
    monkeypatch.setenv("SFUMATO_CONFIG", str(home / "config.toml"))
    monkeypatch.setenv("SFUMATO_DATA_DIR", str(home / "data"))


@pytest.fixture(scope="session")
def tiny_model_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random SD1-like model saved as a diffusers folder, as a user would have one."""
    from tiny import SCHEDULER_CONFIG, tiny_components

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
