"""`models add-folder` on every popular layout: each file listed once, under the kind it really is."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file
from typer.testing import CliRunner

from sfumato.cli.main import app

runner = CliRunner()

# The tensor names that say what a file is (the shapes do not matter to the listing).
CHECKPOINT = {
    "model.diffusion_model.input_blocks.0.0.weight": (4, 4, 1, 1),
    "cond_stage_model.transformer.text_model.embeddings.token_embedding.weight": (8, 4),
}
VAE = {
    "encoder.conv_in.weight": (4, 3, 1, 1),
    "decoder.conv_out.weight": (3, 4, 1, 1),
    "post_quant_conv.weight": (4, 4, 1, 1),
}
LORA = {
    "lora_unet_down_blocks_0_attentions_0_proj_in.lora_down.weight": (2, 4),
    "lora_unet_down_blocks_0_attentions_0_proj_in.lora_up.weight": (4, 2),
}
EMBEDDING = {"string_to_param.*": (2, 8)}
CONTROLNET = {
    "control_model.input_hint_block.0.weight": (4, 3, 1, 1),
    "control_model.zero_convs.0.0.weight": (4, 4, 1, 1),
}
UNET = {"double_blocks.0.img_attn.qkv.weight": (12, 4), "img_in.weight": (4, 4)}
TEXT_ENCODER = {
    "text_model.encoder.layers.0.self_attn.q_proj.weight": (4, 4),
    "text_model.final_layer_norm.weight": (4,),
}
TAESD = {"1.weight": (4, 3, 1, 1), "3.conv.0.weight": (4, 4, 1, 1)}
UPSCALER = {"conv_first.weight": (4, 3, 3, 3), "body.0.rdb1.conv1.weight": (4, 4, 3, 3)}


def write(path: Path, keys: dict[str, tuple[int, ...]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file({key: torch.zeros(shape) for key, shape in keys.items()}, str(path))
    return path


def pickle(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"state_dict": {"w": torch.zeros(2)}}, path)
    return path


def listed(folder: Path) -> set[tuple[str, str]]:
    added = runner.invoke(app, ["models", "add-folder", str(folder)])
    assert added.exit_code == 0, added.output
    shown = runner.invoke(app, ["models", "list", "--json"])
    assert shown.exit_code == 0, shown.output
    entries = [(e["kind"], e["name"]) for e in json.loads(shown.stdout)]
    assert len(entries) == len(set(entries)), entries  # each file once
    return set(entries)


def test_a1111(tmp_path: Path) -> None:
    root = tmp_path / "stable-diffusion-webui"
    write(root / "models" / "Stable-diffusion" / "XL" / "juggernaut.safetensors", CHECKPOINT)
    write(root / "models" / "Lora" / "detail.safetensors", LORA)
    write(root / "models" / "VAE" / "vae-ft-mse.safetensors", VAE)
    write(root / "embeddings" / "easynegative.safetensors", EMBEDDING)
    write(root / "models" / "ControlNet" / "control_canny.safetensors", CONTROLNET)
    pickle(root / "models" / "VAE-approx" / "model.pt")
    write(root / "models" / "ESRGAN" / "4x-UltraSharp.safetensors", UPSCALER)
    assert listed(root) == {
        ("checkpoint", "XL/juggernaut"),
        ("lora", "detail"),
        ("vae", "vae-ft-mse"),
        ("embedding", "easynegative"),
        ("controlnet", "control_canny"),
        ("vae_approx", "model"),
        ("upscaler", "4x-UltraSharp"),
    }


def test_comfyui_with_extra_model_paths(tmp_path: Path) -> None:
    root = tmp_path / "ComfyUI"
    models = root / "models"
    write(models / "checkpoints" / "sd15.safetensors", CHECKPOINT)
    write(models / "loras" / "style.safetensors", LORA)
    write(models / "controlnet" / "depth.safetensors", CONTROLNET)
    write(models / "unet" / "flux1-dev.safetensors", UNET)
    write(models / "clip" / "clip_l.safetensors", TEXT_ENCODER)
    write(models / "vae_approx" / "taesd_decoder.safetensors", TAESD)
    # An A1111 install shared with ComfyUI through extra_model_paths.yaml (ComfyUI's own example).
    webui = tmp_path / "webui"
    write(webui / "models" / "Stable-diffusion" / "dreamshaper.safetensors", CHECKPOINT)
    write(webui / "models" / "Lora" / "ink.safetensors", LORA)
    write(webui / "models" / "LyCORIS" / "loha.safetensors", LORA)
    write(webui / "models" / "VAE" / "kl-f8.safetensors", VAE)
    (root / "extra_model_paths.yaml").write_text(
        "a111:\n"
        "    base_path: ../webui/\n"
        "    checkpoints: models/Stable-diffusion\n"
        "    vae: models/VAE\n"
        "    loras: |\n"
        "         models/Lora\n"
        "         models/LyCORIS\n"
        "    upscale_models: models/ESRGAN\n"  # absent: skipped
        "    embeddings: embeddings\n"
    )
    assert listed(root) == {
        ("checkpoint", "sd15"),
        ("lora", "style"),
        ("controlnet", "depth"),
        ("unet", "flux1-dev"),
        ("text_encoder", "clip_l"),
        ("vae_approx", "taesd_decoder"),
        ("checkpoint", "dreamshaper"),
        ("lora", "ink"),
        ("lora", "loha"),
        ("vae", "kl-f8"),
    }


def test_a_broken_extra_model_paths_is_one_clear_line(tmp_path: Path) -> None:
    root = tmp_path / "ComfyUI"
    (root / "models" / "checkpoints").mkdir(parents=True)
    (root / "extra_model_paths.yaml").write_text("a111:\n  base_path: [unclosed\n")
    added = runner.invoke(app, ["models", "add-folder", str(root)])
    assert added.exit_code == 1
    assert "extra_model_paths.yaml cannot be read as YAML" in added.output and "Traceback" not in added.output


def test_stability_matrix(tmp_path: Path) -> None:
    root = tmp_path / "StabilityMatrix"
    models = root / "Data" / "Models"
    write(models / "StableDiffusion" / "realisticVision.safetensors", CHECKPOINT)
    write(models / "Lora" / "film.safetensors", LORA)
    write(models / "TextualInversion" / "negative_hand.safetensors", EMBEDDING)
    write(models / "VAE" / "orangemix.safetensors", VAE)
    write(models / "ControlNet" / "openpose.safetensors", CONTROLNET)
    write(models / "ESRGAN" / "RealESRGAN_x4plus.safetensors", UPSCALER)
    assert listed(root) == {
        ("checkpoint", "realisticVision"),
        ("lora", "film"),
        ("embedding", "negative_hand"),
        ("vae", "orangemix"),
        ("controlnet", "openpose"),
        ("upscaler", "RealESRGAN_x4plus"),
    }


def test_invokeai_kinds_come_from_the_files(tmp_path: Path) -> None:
    root = tmp_path / "invokeai"
    (root / "invokeai.yaml").parent.mkdir(parents=True)
    (root / "invokeai.yaml").write_text("schema_version: 4.0.2\n")
    models = root / "models"
    write(models / "sd-1" / "main" / "dreamshaper_8.safetensors", CHECKPOINT)
    write(models / "sd-1" / "main" / "misfiled_lora.safetensors", LORA)  # in main/, yet a LoRA
    write(models / "sd-1" / "lora" / "detail.safetensors", LORA)
    write(models / "sd-1" / "embedding" / "bad_prompt.safetensors", EMBEDDING)
    write(models / "sdxl" / "vae" / "sdxl_vae.safetensors", VAE)
    write(models / "sd-1" / "controlnet" / "canny.safetensors", CONTROLNET)
    pickle(models / "sd-1" / "lora" / "old.ckpt")  # unreadable: its folder says LoRA
    assert listed(root) == {
        ("checkpoint", "dreamshaper_8"),
        ("lora", "misfiled_lora"),
        ("lora", "detail"),
        ("embedding", "bad_prompt"),
        ("vae", "sdxl_vae"),
        ("controlnet", "canny"),
        ("lora", "old"),
    }


def test_flat_folder_kinds_come_from_the_files(tmp_path: Path) -> None:
    root = tmp_path / "my-models"
    write(root / "dreamshaper.safetensors", CHECKPOINT)
    write(root / "add_detail.safetensors", LORA)
    write(root / "vae-ft-mse.safetensors", VAE)
    write(root / "easynegative.safetensors", EMBEDDING)
    write(root / "control_canny.safetensors", CONTROLNET)
    write(root / "taesdxl_decoder.safetensors", TAESD)
    write(root / "t5" / "clip_l.safetensors", TEXT_ENCODER)
    pickle(root / "old.ckpt")  # a pickle is never read: listed as a checkpoint, as before
    assert listed(root) == {
        ("checkpoint", "dreamshaper"),
        ("lora", "add_detail"),
        ("vae", "vae-ft-mse"),
        ("embedding", "easynegative"),
        ("controlnet", "control_canny"),
        ("vae_approx", "taesdxl_decoder"),
        ("text_encoder", "t5/clip_l"),
        ("checkpoint", "old"),
    }


@pytest.mark.skipif(not hasattr(os, "symlink"), reason="needs symlinks")
def test_a_symlink_loop_lists_each_file_once(tmp_path: Path) -> None:
    root = tmp_path / "loops"
    write(root / "models" / "Lora" / "a.safetensors", LORA)
    (root / "models" / "Lora" / "up").symlink_to(root / "models")  # models/Lora/up/Lora/up/…
    (root / "models" / "Lora" / "self").symlink_to(root / "models" / "Lora")
    flat = tmp_path / "flat"
    write(flat / "sub" / "b.safetensors", LORA)
    (flat / "sub" / "back").symlink_to(flat)
    (flat / "twin").symlink_to(flat / "sub")
    assert listed(root) == {("lora", "a")}
    both = listed(flat)  # the second folder is listed beside the first
    assert ("lora", "a") in both and len(both) == 2
    assert {name for _, name in both} - {"a"} <= {"sub/b", "twin/b"}


def _a1111_embedding(path: Path, vectors: torch.Tensor, parameter_dict: bool) -> Path:
    params = torch.nn.ParameterDict({"*": torch.nn.Parameter(vectors)}) if parameter_dict else {"*": vectors}
    torch.save(
        {
            "string_to_token": {"*": 265},
            "string_to_param": params,
            "name": "hands",
            "step": 500,
            "sd_checkpoint_name": "sd15",
        },
        path,
    )
    return path


@pytest.mark.parametrize("parameter_dict", [False, True], ids=["a1111", "textual-inversion ParameterDict"])
def test_an_a1111_pt_embedding_converts(tmp_path: Path, parameter_dict: bool) -> None:
    from sfumato.models.embeddings import load_embedding

    vectors = torch.randn(3, 768)
    path = _a1111_embedding(tmp_path / "bad-hands.pt", vectors, parameter_dict)
    converted = runner.invoke(app, ["models", "convert", str(path)])
    assert converted.exit_code == 0, converted.output
    embedding = load_embedding(tmp_path / "bad-hands.safetensors")
    assert torch.equal(embedding.vectors["clip"], vectors)
    assert embedding.trained_on == "sd15"
