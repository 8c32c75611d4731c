"""LoRA training on tiny components: the kohya file does what the trained adapters did."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors import safe_open

from sfumato.core.errors import InvalidRequest
from sfumato.models.components import Components
from sfumato.models.lora import LoraSpec, applied_loras
from sfumato.prompts.encoder import encode_prompt
from sfumato.prompts.networks import no_files
from sfumato.training.diffusion import Example
from sfumato.training.lora_training import (
    TEXT_ATTENTION,
    LoraAdapters,
    LoraTrainingConfig,
    save_lora,
    train_lora,
)
from sfumato.training.world_examples import concept_examples


def examples() -> list[Example]:
    return [Example(e.image.resize((64, 64)), e.caption) for e in concept_examples(4, colour="pink")]


def unet_output(components: Components) -> torch.Tensor:
    generator = torch.Generator().manual_seed(0)
    latents = torch.randn(1, 4, 8, 8, generator=generator)
    text = torch.randn(1, 77, 32, generator=generator)
    with torch.no_grad():
        return components.unet(latents, 10, encoder_hidden_states=text).sample


def text(components: Components) -> torch.Tensor:
    return encode_prompt(components, "a pink circle", steps=2, resolve=no_files).at(0)[0].embedding.hidden


@pytest.mark.parametrize("alpha", [None, 2.0])
def test_saved_file_applies_what_the_adapters_computed(
    sd1: Components, tmp_path: Path, alpha: float | None
) -> None:
    # Linear attention projections and 3x3 / 1x1 convolutions (LoCon) alike
    config = LoraTrainingConfig(
        "x", rank=3, alpha=alpha, unet_targets=("attn2.to_k", "to_out.0", "conv1", "proj_in")
    )
    adapters = LoraAdapters(sd1, config)
    assert any(layer.weight.dim() == 4 and layer.weight.shape[-1] == 3 for layer in adapters.targets.values())
    with torch.no_grad():
        for parameter in adapters.module["up"].parameters():
            parameter.normal_(0, 0.1)
    before = unet_output(sd1)
    with adapters.hooked():
        hooked = unet_output(sd1)
    assert torch.equal(unet_output(sd1), before)
    path = save_lora(tmp_path / "x.safetensors", adapters, config, sd1, step=0)
    with applied_loras(sd1, [LoraSpec(path)]) as applied:
        merged = unet_output(sd1)
    assert applied[0].layers == len(adapters.targets)
    assert (hooked - before).abs().mean() > 1e-3
    assert torch.allclose(merged, hooked, atol=1e-4)


def test_trained_lora_changes_the_model_only_while_applied(sd1: Components, tmp_path: Path) -> None:
    before_state = {k: v.clone() for k, v in sd1.unet.state_dict().items()}
    before, before_text = unet_output(sd1), text(sd1)
    config = LoraTrainingConfig(
        "pinkish",
        rank=2,
        steps=4,
        lr=0.02,
        batch=2,
        unet_targets=("attn2.to_k", "attn2.to_v"),
        text_encoder_targets=TEXT_ATTENTION,
    )
    trained = train_lora(sd1, examples(), config, tmp_path)
    assert trained.result.finished and trained.path == tmp_path / "pinkish.safetensors"
    with safe_open(str(trained.path), "pt") as handle:
        keys = set(handle.keys())
        metadata = handle.metadata()
    assert {key.split("_")[1] for key in keys} == {"unet", "te"}
    assert all(key.endswith((".lora_down.weight", ".lora_up.weight", ".alpha")) for key in keys)
    assert metadata["ss_network_dim"] == "2" and metadata["ss_sd_model_name"] == "tiny"
    assert all(torch.equal(v, before_state[k]) for k, v in sd1.unet.state_dict().items())
    with applied_loras(sd1, [LoraSpec(trained.path)]):
        assert not torch.allclose(unet_output(sd1), before, atol=1e-5)
        assert not torch.allclose(text(sd1), before_text, atol=1e-5)
    assert torch.equal(unet_output(sd1), before) and torch.equal(text(sd1), before_text)


def test_targets_that_match_nothing_are_an_error(sd1: Components, tmp_path: Path) -> None:
    with pytest.raises(InvalidRequest, match="No layer") as error:
        train_lora(
            sd1, examples(), LoraTrainingConfig("x", unet_targets=("no_such_layer",), steps=1), tmp_path
        )
    assert error.value.hint
