"""Textual inversion and LoRA on SDXL's refiner: its one (OpenCLIP) encoder takes what SDXL's second takes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from safetensors.torch import save_file
from tiny_ldm import TinyModel, build_tiny

from sfumato.core.errors import UnsupportedModel
from sfumato.core.request import GenerationRequest
from sfumato.engine.generate import generate
from sfumato.models.components import Components
from sfumato.models.embeddings import Embedding, vectors_for
from sfumato.models.loading import load_checkpoint
from sfumato.models.lora import LoraSpec, applied_loras
from sfumato.prompts.encoder import encode_prompt
from sfumato.prompts.networks import FolderResolver, no_files

LORA_TARGETS = (
    "attn1.to_q",
    "attn2.to_k",
    "attn2.to_v",
    "attn1.to_out.0",
    "self_attn.q_proj",
    "self_attn.v_proj",
)


@pytest.fixture(scope="module")
def refiner(tmp_path_factory: pytest.TempPathFactory) -> Components:
    tiny = build_tiny("sdxl-refiner", tmp_path_factory.mktemp("refiner-config"))
    path = tiny.write(tmp_path_factory.mktemp("refiner") / "sd_xl_refiner_tiny.safetensors")
    return load_checkpoint(path, config_dir=tiny.config_dir)


@pytest.fixture(scope="module")
def sdxl_base(tmp_path_factory: pytest.TempPathFactory) -> TinyModel:
    return build_tiny("sdxl", tmp_path_factory.mktemp("sdxl-config"))


@pytest.fixture
def library(tmp_path: Path) -> Path:
    (tmp_path / "embeddings").mkdir()
    return tmp_path


def text_model(components: Components) -> Any:
    encoder: Any = components.text_encoder
    return encoder.text_model


def token_vectors(components: Components, text: str) -> torch.Tensor:
    ids = components.tokenizer(text, add_special_tokens=False)["input_ids"]
    return text_model(components).embeddings.token_embedding.weight[ids].detach().clone()


def encoded(
    components: Components, prompt: str, folder: Path, **kwargs: Any
) -> tuple[torch.Tensor, torch.Tensor]:
    cond = encode_prompt(components, prompt, steps=2, resolve=FolderResolver([folder]), **kwargs)
    (part,) = cond.at(0)
    assert part.embedding.pooled is not None
    return part.embedding.hidden, part.embedding.pooled


def encoder_inputs(components: Components, prompt: str, folder: Path) -> torch.Tensor:
    """What the refiner's transformer layers read for ``prompt``: token vectors (embeddings put in) + positions."""
    seen: list[torch.Tensor] = []
    embeddings = text_model(components).embeddings
    handle = embeddings.register_forward_hook(
        lambda module, args, output: seen.append(output.detach().clone())
    )
    try:
        encode_prompt(components, prompt, steps=2, resolve=FolderResolver([folder]))
    finally:
        handle.remove()
    return seen[0][0]


def test_sdxl_embedding_puts_its_clip_g_vectors_in_the_refiner_prompt(
    refiner: Components, library: Path
) -> None:
    generator = torch.Generator().manual_seed(5)
    clip_g = torch.randn(2, 64, generator=generator)
    clip_l = torch.randn(2, 32, generator=generator)  # SDXL's CLIP-L half, which the refiner lacks
    save_file({"clip_l": clip_l, "clip_g": clip_g}, str(library / "embeddings" / "xlshape.safetensors"))

    with_embedding = encoder_inputs(refiner, "a xlshape, sharp", library)
    plain = encoder_inputs(refiner, "a red circle, sharp", library)  # "red circle": 2 tokens too

    # BOS, "a", then the embedding's two vectors: only those positions differ, and they hold clip_g
    changed = (with_embedding != plain).any(dim=-1).nonzero().flatten().tolist()
    assert changed == [2, 3]
    positions = text_model(refiner).embeddings.position_embedding.weight[2:4].detach()
    torch.testing.assert_close(with_embedding[2:4], clip_g + positions, atol=1e-6, rtol=0)
    hidden, _ = encoded(refiner, "a xlshape, sharp", library)
    plain_hidden, _ = encoded(refiner, "a red circle, sharp", library)
    assert torch.equal(hidden[0, :2], plain_hidden[0, :2])  # causal: tokens before it are untouched
    assert not torch.allclose(hidden[0, 2:], plain_hidden[0, 2:], atol=1e-3)
    assert not any(
        "xlshape" in note
        for note in encode_prompt(refiner, "a xlshape", steps=2, resolve=FolderResolver([library])).notes
    )


def test_sdxl_embedding_of_known_words_reads_as_those_words_on_the_refiner(
    refiner: Components, library: Path
) -> None:
    tensors = {"clip_l": torch.zeros(2, 32), "clip_g": token_vectors(refiner, "red circle")}
    save_file(tensors, str(library / "embeddings" / "xlredcircle.safetensors"))

    hidden, pooled = encoded(refiner, "a xlredcircle on grey", library)
    expected_hidden, expected_pooled = encoded(refiner, "a red circle on grey", library)

    torch.testing.assert_close(hidden, expected_hidden, atol=1e-6, rtol=0)
    torch.testing.assert_close(pooled, expected_pooled, atol=1e-6, rtol=0)


@pytest.mark.parametrize("on_request", [False, True])
def test_sd1_embedding_on_the_refiner_is_reported_as_skipped(
    refiner: Components, library: Path, on_request: bool
) -> None:
    save_file({"emb_params": torch.randn(1, 32)}, str(library / "embeddings" / "oldred.safetensors"))

    cond = encode_prompt(
        refiner, "a oldred", steps=2, resolve=FolderResolver([library]), sd1_embeddings_on_sdxl=on_request
    )
    hidden, _ = encoded(refiner, "a oldred", library, sd1_embeddings_on_sdxl=on_request)
    without, _ = encoded(refiner, "a oldred", library / "nowhere")

    (note,) = [note for note in cond.notes if "oldred" in note]
    assert "skipped" in note and "refiner" in note and "32-wide" in note
    assert torch.equal(hidden, without)  # nothing was put in


def test_full_size_sd1_embedding_names_clip_l_as_the_reason(refiner: Components) -> None:
    embedding = Embedding("oldstyle", {"clip": torch.zeros(2, 768)})

    vectors, why = vectors_for(embedding, refiner, sd1_on_sdxl=True)

    assert vectors is None and why is not None
    assert "made for sd1" in why and "sdxl-refiner" in why and "CLIP-L" in why and "clip_g" in why


def kohya_lora(unet: Any, encoders: dict[str, Any], *, seed: int, rank: int = 4) -> dict[str, torch.Tensor]:
    """A kohya-format LoRA on attention projections, named as sd-scripts names them."""
    generator = torch.Generator().manual_seed(seed)
    tensors: dict[str, torch.Tensor] = {}
    named = [("lora_unet_", unet.named_modules())]
    named += [(prefix + "_", encoder.named_modules()) for prefix, encoder in encoders.items()]
    for prefix, modules in named:
        for name, module in modules:
            if not name.endswith(LORA_TARGETS):
                continue
            key = prefix + name.replace(".", "_")
            out_features, in_features = module.weight.shape
            tensors[f"{key}.lora_down.weight"] = torch.randn(rank, in_features, generator=generator) * 0.3
            tensors[f"{key}.lora_up.weight"] = torch.randn(out_features, rank, generator=generator) * 0.3
            tensors[f"{key}.alpha"] = torch.tensor(rank / 2)
    return tensors


def picture(components: Components) -> np.ndarray:
    request = GenerationRequest(
        prompt="a red circle", negative_prompt="blurry", steps=3, seed=3, sampler="Euler", width=64, height=64
    )
    return np.asarray(generate(components, request).images[0].image.convert("RGB"), dtype=np.int16)


def weights(components: Components) -> dict[str, torch.Tensor]:
    unet = {f"unet.{k}": v.clone() for k, v in components.unet.state_dict().items()}
    return unet | {f"te.{k}": v.clone() for k, v in components.text_encoder.state_dict().items()}


def prompt_hidden(components: Components) -> torch.Tensor:
    return encode_prompt(components, "a red circle", steps=2, resolve=no_files).at(0)[0].embedding.hidden


@pytest.mark.parametrize("encoder_prefix", ["lora_te2", "lora_te"])
def test_refiner_lora_changes_the_picture_and_is_removed_exactly(
    refiner: Components, tmp_path: Path, encoder_prefix: str
) -> None:
    tensors = kohya_lora(refiner.unet, {encoder_prefix: refiner.text_encoder}, seed=1)
    path = tmp_path / "refiner_style.safetensors"
    save_file(tensors, str(path))
    encoder_layers = sum(key.startswith(encoder_prefix + "_") and key.endswith("alpha") for key in tensors)
    before_picture, before_weights, before_text = picture(refiner), weights(refiner), prompt_hidden(refiner)

    with applied_loras(refiner, [LoraSpec(path, unet_weight=0.0, text_encoder_weight=1.0)]):
        text_only = prompt_hidden(refiner)
        text_only_changed = [k for k, v in weights(refiner).items() if not torch.equal(v, before_weights[k])]
    with applied_loras(refiner, [LoraSpec(path, 0.8, 0.8)]) as applied:
        during_picture = picture(refiner)

    # every layer of the file found its place: the encoder's in text_encoder, the rest in the UNet
    assert applied[0].layers == sum(key.endswith("alpha") for key in tensors) and applied[0].notes == []
    assert encoder_layers == 2 * 2 and len(text_only_changed) == encoder_layers
    assert all(key.startswith("te.") for key in text_only_changed)
    assert not torch.allclose(text_only, before_text, atol=1e-4)
    assert np.abs(during_picture - before_picture).max() > 0
    after = weights(refiner)
    assert all(torch.equal(after[key], value) for key, value in before_weights.items())
    assert np.array_equal(picture(refiner), before_picture)


def test_sdxl_base_lora_on_the_refiner_is_refused_and_leaves_it_untouched(
    refiner: Components, sdxl_base: TinyModel, tmp_path: Path
) -> None:
    refiner_lora = tmp_path / "refiner_style.safetensors"
    save_file(kohya_lora(refiner.unet, {"lora_te2": refiner.text_encoder}, seed=1), str(refiner_lora))
    base_lora = tmp_path / "xl_style.safetensors"
    encoders = {"lora_te1": sdxl_base.text_encoder, "lora_te2": sdxl_base.text_encoder_2}
    save_file(kohya_lora(sdxl_base.unet, encoders, seed=2), str(base_lora))
    before = weights(refiner)

    both = [LoraSpec(refiner_lora), LoraSpec(base_lora)]
    expected = "made for sdxl, but the model is sdxl-refiner"
    with pytest.raises(UnsupportedModel, match=expected) as error, applied_loras(refiner, both):
        pass

    assert "xl_style" in str(error.value) and "switch model" in str(error.value)
    after = weights(refiner)
    assert all(torch.equal(after[key], value) for key, value in before.items())


@pytest.mark.parametrize(("width", "made_for"), [(2048, "sdxl"), (768, "sd1")])
def test_wrong_lora_names_the_model_its_cross_attention_was_made_for(
    refiner: Components, tmp_path: Path, width: int, made_for: str
) -> None:
    key = "lora_unet_down_blocks_1_attentions_0_transformer_blocks_0_attn2_to_k"
    path = tmp_path / "other.safetensors"
    save_file(
        {f"{key}.lora_down.weight": torch.zeros(4, width), f"{key}.lora_up.weight": torch.zeros(64, 4)},
        str(path),
    )

    expected = f"made for {made_for}, but the model is sdxl-refiner"
    with pytest.raises(UnsupportedModel, match=expected), applied_loras(refiner, [LoraSpec(path)]):
        pass
