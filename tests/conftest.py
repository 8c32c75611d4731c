import os

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
