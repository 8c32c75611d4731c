"""LyCORIS LoHa and LoKr (and LoCon with a Tucker core): their weight updates match peft's
implementation of the same decompositions, and they reach the model like any LoRA."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors.torch import save_file
from torch import nn

from sfumato.models.components import Components
from sfumato.models.lora import LoraSpec, applied_loras, module_delta

peft = pytest.importorskip("peft")


class Tiny(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(12, 8)
        self.conv = nn.Conv2d(8, 6, 3, padding=1)


def peft_layers(config: Any) -> dict[str, Any]:
    torch.manual_seed(0)
    model = peft.get_peft_model(Tiny(), config)
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if "hada_" in name or "lokr_" in name:
                parameter.copy_(torch.randn(parameter.shape, generator=generator) * 0.5)
    return {name: model.base_model.model.get_submodule(name) for name in ("lin", "conv")}


def file_tensors(layer: Any, alpha: float) -> dict[str, torch.Tensor]:
    """The layer's factors named as a LyCORIS file names them."""
    tensors = {"alpha": torch.tensor(alpha)}
    for name, parameter in layer.named_parameters():
        if name.endswith(".default") and ("hada_" in name or "lokr_" in name):
            tensors[name.removesuffix(".default")] = parameter.detach().clone()
    return tensors


@pytest.mark.parametrize("tucker", [False, True])
def test_loha_delta_matches_peft(tucker: bool) -> None:
    config = peft.LoHaConfig(r=3, alpha=5, target_modules=["lin", "conv"], use_effective_conv2d=tucker)
    for name, layer in peft_layers(config).items():
        tensors = {f"m.{k}": v for k, v in file_tensors(layer, 5.0).items()}
        assert ("m.hada_t1" in tensors) == (tucker and name == "conv")
        delta = module_delta(tensors, "m", "loha").reshape(layer.get_base_layer().weight.shape)
        assert torch.allclose(delta, layer.get_delta_weight("default"), atol=1e-5), name


@pytest.mark.parametrize(("decompose_both", "tucker"), [(False, False), (True, False), (True, True)])
def test_lokr_delta_matches_peft(decompose_both: bool, tucker: bool) -> None:
    config = peft.LoKrConfig(
        r=1,
        alpha=3,
        target_modules=["lin", "conv"],
        decompose_both=decompose_both,
        use_effective_conv2d=tucker,
    )
    compared = []
    for name, layer in peft_layers(config).items():
        tensors = {f"m.{k}": v for k, v in file_tensors(layer, 3.0).items()}
        if "m.lokr_w1_b" not in tensors and "m.lokr_w2_b" not in tensors:
            continue  # no rank in the file: LyCORIS then scales by 1, peft by alpha / r
        delta = module_delta(tensors, "m", "lokr").reshape(layer.get_base_layer().weight.shape)
        assert torch.allclose(delta, layer.get_delta_weight("default"), atol=1e-5), (name, sorted(tensors))
        compared.append(sorted(k.removeprefix("m.") for k in tensors))
    print(compared)
    assert compared
    assert any("lokr_t2" in keys for keys in compared) == tucker


def test_deltas_by_hand_on_small_tensors() -> None:
    w1a, w1b = torch.tensor([[1.0], [2.0]]), torch.tensor([[3.0, 4.0]])
    w2a, w2b = torch.tensor([[1.0], [-1.0]]), torch.tensor([[0.5, 2.0]])
    loha = {
        "m.hada_w1_a": w1a,
        "m.hada_w1_b": w1b,
        "m.hada_w2_a": w2a,
        "m.hada_w2_b": w2b,
        "m.alpha": torch.tensor(0.5),
    }
    # (w1a @ w1b) = [[3, 4], [6, 8]]; (w2a @ w2b) = [[.5, 2], [-.5, -2]]; alpha / rank = 0.5
    assert torch.equal(module_delta(loha, "m", "loha"), torch.tensor([[0.75, 4.0], [-1.5, -8.0]]))
    lokr = {
        "m.lokr_w1": torch.tensor([[1.0, 2.0]]),
        "m.lokr_w2": torch.tensor([[1.0], [3.0]]),
        "m.alpha": torch.tensor(4.0),
    }
    # whole factors: no rank, scale 1; kron([[1, 2]], [[1], [3]]) = [[1, 2], [3, 6]]
    assert torch.equal(module_delta(lokr, "m", "lokr"), torch.tensor([[1.0, 2.0], [3.0, 6.0]]))
    down, mid, up = torch.randn(2, 4, 1, 1), torch.randn(2, 2, 3, 3), torch.randn(5, 2, 1, 1)
    locon = {"m.lora_down.weight": down, "m.lora_mid.weight": mid, "m.lora_up.weight": up}
    expected = torch.zeros(5, 4, 3, 3)
    for o in range(5):
        for c in range(4):
            expected[o, c] = sum(
                up[o, i, 0, 0] * mid[i, j] * down[j, c, 0, 0] for i in range(2) for j in range(2)
            )
    assert torch.allclose(module_delta(locon, "m", "lora"), expected, atol=1e-5)


def test_loha_and_lokr_files_reach_the_unet_and_are_removed(sd1: Components, tmp_path: Path) -> None:
    generator = torch.Generator().manual_seed(0)
    to_k = "down_blocks.1.attentions.0.transformer_blocks.0.attn2.to_k"
    weight: torch.Tensor = sd1.unet.get_submodule(to_k).weight  # pyright: ignore[reportAssignmentType]
    out_features, in_features = int(weight.shape[0]), int(weight.shape[1])
    base = "lora_unet_" + to_k.replace(".", "_")

    def randn(*shape: int) -> torch.Tensor:
        return torch.randn(*shape, generator=generator)

    loha = {
        f"{base}.hada_w1_a": randn(out_features, 2),
        f"{base}.hada_w1_b": randn(2, in_features),
        f"{base}.hada_w2_a": randn(out_features, 2),
        f"{base}.hada_w2_b": randn(2, in_features),
        f"{base}.alpha": torch.tensor(1.0),
    }
    lokr = {
        f"{base}.lokr_w1": randn(4, 4),
        f"{base}.lokr_w2_a": randn(out_features // 4, 2),
        f"{base}.lokr_w2_b": randn(2, in_features // 4),
        f"{base}.alpha": torch.tensor(2.0),
    }
    original = weight.detach().clone()
    for name, tensors in (("loha", loha), ("lokr", lokr)):
        path = tmp_path / f"{name}.safetensors"
        save_file(tensors, str(path))
        with applied_loras(sd1, [LoraSpec(path, unet_weight=0.5)]) as applied:
            assert applied[0].layers == 1
            expected = original + 0.5 * module_delta(tensors, base, name).reshape(weight.shape)
            assert torch.allclose(weight, expected, atol=1e-5)
        assert torch.equal(weight, original)


def test_a_loha_for_another_model_is_a_clear_error(sd1: Components, tmp_path: Path) -> None:
    from sfumato.core.errors import UnsupportedModel

    base = "lora_te_text_model_encoder_layers_0_self_attn_q_proj"
    tensors = {
        f"{base}.hada_w1_a": torch.ones(1024, 2),
        f"{base}.hada_w1_b": torch.ones(2, 1024),
        f"{base}.hada_w2_a": torch.ones(1024, 2),
        f"{base}.hada_w2_b": torch.ones(2, 1024),
    }
    save_file(tensors, str(tmp_path / "sd2.safetensors"))
    with (
        pytest.raises(UnsupportedModel, match="made for sd2, but the model is sd1"),
        applied_loras(sd1, [LoraSpec(tmp_path / "sd2.safetensors")]),
    ):
        pass
