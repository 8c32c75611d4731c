"""A diffusers folder's parts read straight from their safetensors equal what from_pretrained makes."""

from __future__ import annotations

import shutil
from pathlib import Path

import torch
from diffusers import AutoencoderKL, UNet2DConditionModel
from safetensors.torch import load_file, save_file
from transformers import CLIPTextModel

from sfumato.models.folder_parts import diffusers_part, transformers_part
from sfumato.models.loading import demo_model_folder


def same_weights(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    left, right = a.state_dict(), b.state_dict()
    return left.keys() == right.keys() and all(torch.equal(left[k], right[k]) for k in left)


def test_the_built_in_models_parts_equal_from_pretrained() -> None:
    folder = demo_model_folder()
    common = {"local_files_only": True, "torch_dtype": torch.float32}
    for cls, sub in ((UNet2DConditionModel, "unet"), (AutoencoderKL, "vae")):
        direct = diffusers_part(cls, folder / sub, dtype=torch.float32)
        assert direct is not None and same_weights(
            direct, cls.from_pretrained(str(folder), subfolder=sub, **common)
        )
        written: dict = cls.load_config(str(folder / sub))  # pyright: ignore[reportAssignmentType]
        assert all(direct.config[key] == value for key, value in written.items() if not key.startswith("_"))
    encoder = transformers_part(CLIPTextModel, folder / "text_encoder", dtype=torch.float32)
    reference = CLIPTextModel.from_pretrained(
        str(folder / "text_encoder"), dtype=torch.float32, local_files_only=True
    )
    assert encoder is not None and same_weights(encoder, reference)
    ids = torch.tensor([[49406, 320, 736, 2898, 49407]])
    with torch.no_grad():
        assert torch.equal(encoder(ids).last_hidden_state, reference(ids).last_hidden_state)


def test_a_file_with_keys_the_module_does_not_have_is_left_to_from_pretrained(tmp_path: Path) -> None:
    unet = tmp_path / "unet"
    shutil.copytree(demo_model_folder() / "unet", unet)
    weights = unet / "diffusion_pytorch_model.safetensors"
    tensors = load_file(str(weights))
    tensors["legacy.attention.query.weight"] = torch.zeros(2)
    save_file(tensors, str(weights))
    assert diffusers_part(UNet2DConditionModel, unet, dtype=torch.float32) is None
    (unet / "diffusion_pytorch_model.safetensors").rename(unet / "diffusion_pytorch_model.fp16.safetensors")
    assert diffusers_part(UNet2DConditionModel, unet, dtype=torch.float32) is None
