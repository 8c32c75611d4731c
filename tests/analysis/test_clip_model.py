"""Loading a CLIP: the built-in demo CLIP, a user's folder or single file; bad files refused clearly."""

from __future__ import annotations

import json
import pickle
import shutil
from pathlib import Path

import numpy as np
import pytest
from demo_scenes import picture, scene_of

from sfumato.analysis.clip_model import demo_clip_folder, load_clip
from sfumato.core.errors import ModelNotFound, SfumatoError, UnsafeModelFile, UnsupportedModel


def test_the_demo_clip_is_small_and_loads_offline() -> None:
    size = sum(f.stat().st_size for f in demo_clip_folder().glob("*.safetensors"))
    assert size <= 10 * 2**20
    clip = load_clip()
    rows = clip.embed_texts(["a red circle", "a blue square"])
    assert rows.shape == (2, clip.dim) and np.allclose(np.linalg.norm(rows, axis=1), 1, atol=1e-5)


def test_a_folder_and_a_single_file_give_the_same_embeddings(tmp_path: Path) -> None:
    from safetensors.torch import save_file

    folder = tmp_path / "my-clip"
    shutil.copytree(demo_clip_folder(), folder)
    demo = load_clip()
    mine = load_clip(folder)
    scene = picture(scene_of("star", "yellow", "top left", "blue"))
    assert np.allclose(mine.embed_pictures([scene]), demo.embed_pictures([scene]), atol=1e-5)
    state = {k: v.contiguous() for k, v in demo.model.state_dict().items()}
    save_file(state, tmp_path / "clip.safetensors")
    single = load_clip(tmp_path / "clip.safetensors")
    # The single file's heads are guessed from widths: the demo CLIP's 64-wide towers have 4 heads, not 1.
    assert single.embed_pictures([scene]).shape == (1, demo.dim)
    assert single.image_size == demo.image_size


def test_missing_and_incompatible_files_say_what_is_needed(tmp_path: Path) -> None:
    with pytest.raises(ModelNotFound, match="No CLIP at"):
        load_clip(tmp_path / "nowhere")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ModelNotFound, match=r"no .safetensors weights.*config.json \+ model.safetensors"):
        load_clip(empty)
    no_config = tmp_path / "no-config"
    shutil.copytree(demo_clip_folder(), no_config)
    (no_config / "config.json").unlink()
    with pytest.raises(ModelNotFound, match=r"has no config.json"):
        load_clip(no_config)
    other = tmp_path / "other"
    shutil.copytree(demo_clip_folder(), other)
    (other / "config.json").write_text(json.dumps({"model_type": "bert"}))
    with pytest.raises(UnsupportedModel, match="is not a CLIP"):
        load_clip(other)


def test_pickles_are_refused(tmp_path: Path) -> None:
    folder = tmp_path / "pickled"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"model_type": "clip"}))
    (folder / "pytorch_model.bin").write_bytes(pickle.dumps({"x": 1}, protocol=2))
    with pytest.raises(UnsafeModelFile, match="pickle"):
        load_clip(folder)
    disguised = tmp_path / "clip.safetensors"
    disguised.write_bytes(pickle.dumps({"x": 1}, protocol=2))
    with pytest.raises(UnsafeModelFile):
        load_clip(disguised)


def test_an_openclip_file_is_named_as_such(tmp_path: Path) -> None:
    import torch
    from safetensors.torch import save_file

    save_file(
        {
            "visual.conv1.weight": torch.zeros(4, 3, 2, 2),
            "transformer.resblocks.0.ln_1.weight": torch.zeros(4),
        },
        tmp_path / "open_clip.safetensors",
    )
    with pytest.raises(SfumatoError, match="looks like an OpenCLIP checkpoint"):
        load_clip(tmp_path / "open_clip.safetensors")
