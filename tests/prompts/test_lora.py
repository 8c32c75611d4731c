"""LoRA: applied with weights to UNet and text encoder, several at once, removed bit-exactly."""

from __future__ import annotations

import hashlib
import struct
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors.torch import save_file

from sfumato.core.errors import UnsupportedModel
from sfumato.models.components import Components
from sfumato.models.lora import LoraSpec, applied_loras, format_hashes, lora_hash
from sfumato.prompts.encoder import encode_prompt
from sfumato.prompts.networks import no_files


def kohya_lora(
    components: Components, *, seed: int, rank: int = 4, text_encoder: bool = True, prefix_te: str = "lora_te"
) -> dict[str, torch.Tensor]:
    """A kohya-format LoRA on the attention projections, as sd-scripts names them."""
    generator = torch.Generator().manual_seed(seed)
    tensors: dict[str, torch.Tensor] = {}

    def add(name: str, module: Any) -> None:
        weight: torch.Tensor = module.weight
        out_features, in_features = weight.shape[0], weight.shape[1]
        tensors[f"{name}.lora_down.weight"] = torch.randn(rank, in_features, generator=generator) * 0.3
        tensors[f"{name}.lora_up.weight"] = torch.randn(out_features, rank, generator=generator) * 0.3
        tensors[f"{name}.alpha"] = torch.tensor(float(rank) / 2)

    for name, module in components.unet.named_modules():
        if name.endswith(("attn1.to_q", "attn2.to_k", "attn2.to_v", "attn1.to_out.0")):
            add("lora_unet_" + name.replace(".", "_"), module)
    if text_encoder:
        for name, module in components.text_encoder.named_modules():
            if name.endswith(("self_attn.q_proj", "self_attn.v_proj")):
                add(f"{prefix_te}_text_model_" + name.replace(".", "_"), module)
    return tensors


def write(tensors: dict[str, torch.Tensor], path: Path, metadata: dict[str, str] | None = None) -> Path:
    save_file(tensors, str(path), metadata=metadata)
    return path


def unet_output(components: Components) -> torch.Tensor:
    generator = torch.Generator().manual_seed(0)
    latents = torch.randn(1, 4, 8, 8, generator=generator)
    text = torch.randn(1, 77, 32, generator=generator)
    with torch.no_grad():
        return components.unet(latents, 10, encoder_hidden_states=text).sample


def state(components: Components) -> dict[str, torch.Tensor]:
    return {
        k: v.clone()
        for k, v in {
            **components.unet.state_dict(),
            **{f"te.{k}": v for k, v in components.text_encoder.state_dict().items()},
        }.items()
    }


def text(components: Components) -> torch.Tensor:
    return encode_prompt(components, "a red circle", steps=2, resolve=no_files).at(0)[0].embedding.hidden


def test_lora_changes_the_unet_and_is_removed_bit_exactly(sd1: Components, tmp_path: Path) -> None:
    path = write(kohya_lora(sd1, seed=1), tmp_path / "style.safetensors")
    before, before_state, before_text = unet_output(sd1), state(sd1), text(sd1)
    with applied_loras(sd1, [LoraSpec(path, 0.8, 0.8)]) as applied:
        during = unet_output(sd1)
        assert not torch.allclose(during, before, atol=1e-4)
        assert not torch.allclose(text(sd1), before_text, atol=1e-4)
        assert applied[0].layers > 0 and applied[0].notes == []
    assert torch.equal(unet_output(sd1), before)
    after = state(sd1)
    assert all(torch.equal(after[key], value) for key, value in before_state.items())


def test_weights_scale_the_effect(sd1: Components, tmp_path: Path) -> None:
    path = write(kohya_lora(sd1, seed=1), tmp_path / "style.safetensors")
    before = unet_output(sd1)
    with applied_loras(sd1, [LoraSpec(path, 0.0, 0.0)]):
        assert torch.equal(unet_output(sd1), before)
    with applied_loras(sd1, [LoraSpec(path, 0.2, 0.0)]):
        small = (unet_output(sd1) - before).abs().mean()
    with applied_loras(sd1, [LoraSpec(path, 1.0, 0.0)]):
        large = (unet_output(sd1) - before).abs().mean()
        assert torch.equal(
            text(sd1), encode_prompt(sd1, "a red circle", steps=2, resolve=no_files).at(0)[0].embedding.hidden
        )
    assert 0 < small < large


def test_several_loras_at_once_then_restored(sd1: Components, tmp_path: Path) -> None:
    a = write(kohya_lora(sd1, seed=1), tmp_path / "a.safetensors")
    b = write(kohya_lora(sd1, seed=2), tmp_path / "b.safetensors")
    before = unet_output(sd1)
    with applied_loras(sd1, [LoraSpec(a)]):
        only_a = unet_output(sd1)
    with applied_loras(sd1, [LoraSpec(a), LoraSpec(b)]) as applied:
        both = unet_output(sd1)
        assert len(applied) == 2
    assert not torch.allclose(both, only_a, atol=1e-4)
    assert torch.equal(unet_output(sd1), before)


def test_lora_restored_after_an_error_inside_the_job(sd1: Components, tmp_path: Path) -> None:
    path = write(kohya_lora(sd1, seed=1), tmp_path / "a.safetensors")
    before = unet_output(sd1)
    with pytest.raises(RuntimeError), applied_loras(sd1, [LoraSpec(path)]):
        raise RuntimeError("the job failed")
    assert torch.equal(unet_output(sd1), before)


def test_lora_for_another_architecture_is_a_clear_error(
    sd1: Components, sdxl: Components, tmp_path: Path
) -> None:
    path = write(
        kohya_lora(sdxl, seed=1, prefix_te="lora_te1")
        | {
            "lora_te2_text_model_encoder_layers_0_self_attn_q_proj.lora_down.weight": torch.zeros(4, 32),
            "lora_te2_text_model_encoder_layers_0_self_attn_q_proj.lora_up.weight": torch.zeros(32, 4),
        },
        tmp_path / "xl.safetensors",
    )
    before = unet_output(sd1)
    with (
        pytest.raises(UnsupportedModel, match="made for sdxl") as error,
        applied_loras(sd1, [LoraSpec(path)]),
    ):
        pass
    assert error.value.hint
    assert torch.equal(unet_output(sd1), before)


def test_not_a_lora_is_a_clear_error(sd1: Components, tmp_path: Path) -> None:
    path = write({"emb_params": torch.ones(1, 32)}, tmp_path / "x.safetensors")
    with pytest.raises(UnsupportedModel, match="no LoRA weights"), applied_loras(sd1, [LoraSpec(path)]):
        pass


def test_lora_hashes_as_a1111_writes_them(tmp_path: Path) -> None:
    path = write({"a.lora_down.weight": torch.ones(1, 2)}, tmp_path / "a.safetensors")
    data = path.read_bytes()
    (length,) = struct.unpack("<Q", data[:8])
    assert lora_hash(path) == hashlib.sha256(data[8 + length :]).hexdigest()[:12]
    stamped = write(
        {"a.lora_down.weight": torch.ones(1, 2)},
        tmp_path / "b.safetensors",
        {"sshs_model_hash": "abcdef0123456789"},
    )
    assert lora_hash(stamped) == "abcdef012345"
    assert format_hashes([("a", "0123456789ab"), ("b", "ba9876543210")]) == "a: 0123456789ab, b: ba9876543210"
