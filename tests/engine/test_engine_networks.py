"""LoRAs named in the prompt reach the picture for one job only; embeddings and their hashes too."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from engine_pictures import pixels
from safetensors.torch import save_file

from sfumato.core.errors import Cancelled, ModelNotFound, UnsupportedModel
from sfumato.core.events import CancelToken, StepProgress
from sfumato.core.request import GenerationRequest
from sfumato.engine.generate import generate
from sfumato.models.components import Components
from sfumato.models.embeddings import file_sha256
from sfumato.models.lora import lora_hash
from sfumato.prompts.networks import FolderResolver


def shape_of(module: Any) -> tuple[int, int]:
    return int(module.weight.shape[0]), int(module.weight.shape[1])


def kohya_lora(components: Components, *, seed: int, width: int | None = None) -> dict[str, torch.Tensor]:
    """A kohya-format LoRA on the UNet's attention and the text encoder's q/v projections.

    ``width`` makes the text-encoder part for another model (e.g. 768 for SD1).
    """
    generator = torch.Generator().manual_seed(seed)
    tensors: dict[str, torch.Tensor] = {}

    def add(name: str, out_features: int, in_features: int) -> None:
        tensors[f"{name}.lora_down.weight"] = torch.randn(4, in_features, generator=generator) * 0.5
        tensors[f"{name}.lora_up.weight"] = torch.randn(out_features, 4, generator=generator) * 0.5
        tensors[f"{name}.alpha"] = torch.tensor(4.0)

    if width is None:
        for name, module in components.unet.named_modules():
            if name.endswith(("attn1.to_q", "attn2.to_k", "attn2.to_v", "attn1.to_out.0")):
                add("lora_unet_" + name.replace(".", "_"), *shape_of(module))
    for name, module in components.text_encoder.named_modules():
        if name.endswith(("self_attn.q_proj", "self_attn.v_proj")):
            out_features, in_features = shape_of(module) if width is None else (width, width)
            add("lora_te_text_model_" + name.replace(".", "_"), out_features, in_features)
    return tensors


@pytest.fixture
def folder(tmp_path: Path, sd1: Components) -> Path:
    """An A1111-like model folder with a LoRA ``style`` and an embedding ``shapey``."""
    (tmp_path / "Lora").mkdir()
    (tmp_path / "embeddings").mkdir()
    save_file(kohya_lora(sd1, seed=1), str(tmp_path / "Lora" / "style.safetensors"))
    vectors = torch.randn(2, 32, generator=torch.Generator().manual_seed(3)) * 2
    save_file({"emb_params": vectors}, str(tmp_path / "embeddings" / "shapey.safetensors"))
    return tmp_path


def run(components: Components, folder: Path, **fields: Any) -> Any:
    base: dict[str, Any] = {"prompt": "a red circle", "negative_prompt": "blurry", "steps": 3, "seed": 7}
    return generate(components, GenerationRequest(**(base | fields)), resolve=FolderResolver([folder]))


def picture(result: Any) -> np.ndarray:
    return pixels(result.images[0].image)


def test_lora_in_the_prompt_changes_the_picture_for_that_job_only(sd1: Components, folder: Path) -> None:
    plain = picture(run(sd1, folder))
    styled = run(sd1, folder, prompt="a red circle <lora:style:0.8>")
    assert np.abs(picture(styled) - plain).mean() > 1
    after = picture(run(sd1, folder))
    assert np.array_equal(after, plain)
    expected = f"style: {lora_hash(folder / 'Lora' / 'style.safetensors')}"
    assert styled.images[0].extra["Lora hashes"] == expected
    assert styled.images[0].recipe.prompt == "a red circle <lora:style:0.8>"


def test_lora_weight_scales_its_effect(sd1: Components, folder: Path) -> None:
    plain = picture(run(sd1, folder))
    weak = picture(run(sd1, folder, prompt="a red circle <lora:style:0.2>"))
    strong = picture(run(sd1, folder, prompt="a red circle <lora:style:1>"))
    assert 0 < np.abs(weak - plain).mean() < np.abs(strong - plain).mean()


def test_every_picture_of_the_job_carries_the_hashes(sd1: Components, folder: Path) -> None:
    result = run(sd1, folder, prompt="shapey <lora:style:1>", batch_size=2, batch_count=2)
    assert len(result.images) == 4
    assert all(set(image.extra) == {"Lora hashes", "TI hashes"} for image in result.images)


def test_the_model_is_restored_after_a_cancelled_job(sd1: Components, folder: Path) -> None:
    plain = picture(run(sd1, folder))
    token = CancelToken()

    def cancel_at_first_step(progress: StepProgress) -> None:
        token.cancel()

    request = GenerationRequest(
        prompt="a red circle <lora:style:1>", negative_prompt="blurry", steps=3, seed=7
    )
    with pytest.raises(Cancelled):
        generate(
            sd1, request, on_progress=cancel_at_first_step, cancel=token, resolve=FolderResolver([folder])
        )
    assert np.array_equal(picture(run(sd1, folder)), plain)


def test_a_missing_lora_is_an_error_naming_it_and_where_it_looked(sd1: Components, folder: Path) -> None:
    with pytest.raises(ModelNotFound) as error:
        run(sd1, folder, prompt="a red circle <lora:nowhere:1> <lora:style:1>")
    assert "'nowhere'" in error.value.message and str(folder) in error.value.message
    assert "'style'" not in error.value.message
    assert error.value.hint


def test_a_lora_for_another_model_is_an_error_and_changes_nothing(sd1: Components, folder: Path) -> None:
    plain = picture(run(sd1, folder))
    save_file(kohya_lora(sd1, seed=2, width=768), str(folder / "Lora" / "sd1real.safetensors"))
    with pytest.raises(UnsupportedModel, match="sd1real was made for sd1"):
        run(sd1, folder, prompt="a red circle <lora:style:1> <lora:sd1real:1>")
    assert np.array_equal(picture(run(sd1, folder)), plain)


def test_a_lora_in_the_negative_prompt_is_not_applied_and_says_so(sd1: Components, folder: Path) -> None:
    plain = picture(run(sd1, folder))
    result = run(sd1, folder, negative_prompt="blurry <lora:style:1>")
    assert np.array_equal(picture(result), plain)
    assert any("<lora:style:1> in the negative prompt" in note for note in result.notes)
    assert "Lora hashes" not in result.images[0].extra


def test_unsupported_network_kinds_are_noted(sd1: Components, folder: Path) -> None:
    result = run(sd1, folder, prompt="a red circle <hypernet:anime:1>")
    assert any("'hypernet' networks are not supported" in note for note in result.notes)


def test_embedding_in_prompt_and_negative_prompt_is_used_and_hashed(sd1: Components, folder: Path) -> None:
    digest = file_sha256(folder / "embeddings" / "shapey.safetensors")[:12]
    as_text = picture(run(sd1, folder / "elsewhere", prompt="a shapey circle"))
    used = run(sd1, folder, prompt="a shapey circle")
    assert np.abs(picture(used) - as_text).mean() > 1
    assert used.images[0].extra == {"TI hashes": f"shapey: {digest}"}
    negative = run(sd1, folder, prompt="a red circle", negative_prompt="blurry, shapey")
    assert negative.images[0].extra == {"TI hashes": f"shapey: {digest}"}


def test_sdxl_lora_and_embedding_reach_the_picture(sdxl: Components, tmp_path: Path) -> None:
    (tmp_path / "loras").mkdir()
    (tmp_path / "embeddings").mkdir()
    generator = torch.Generator().manual_seed(5)
    tensors: dict[str, torch.Tensor] = {}
    for prefix, encoder in (("lora_te1", sdxl.text_encoder), ("lora_te2", sdxl.text_encoder_2)):
        assert encoder is not None
        for name, _ in encoder.named_modules():
            if name.endswith("self_attn.q_proj"):
                flat = name if name.startswith("text_model.") else "text_model." + name
                key = f"{prefix}_{flat.replace('.', '_')}"
                tensors[f"{key}.lora_down.weight"] = torch.randn(2, 32, generator=generator)
                tensors[f"{key}.lora_up.weight"] = torch.randn(32, 2, generator=generator)
    save_file(tensors, str(tmp_path / "loras" / "xl.safetensors"))
    save_file(
        {
            "clip_l": torch.randn(1, 32, generator=generator) * 2,
            "clip_g": torch.randn(1, 32, generator=generator) * 2,
        },
        str(tmp_path / "embeddings" / "xlword.safetensors"),
    )
    plain = picture(run(sdxl, tmp_path, prompt="a red circle"))
    both = run(sdxl, tmp_path, prompt="a red xlword circle <lora:xl:1>")
    assert np.abs(picture(both) - plain).mean() > 1
    assert set(both.images[0].extra) == {"Lora hashes", "TI hashes"}
    assert np.array_equal(picture(run(sdxl, tmp_path, prompt="a red circle")), plain)
