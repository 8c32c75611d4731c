"""Textual inversion: files load in every layout, are used by name, and misfits are reported."""

from __future__ import annotations

import hashlib
import pickle
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors.torch import save_file

from sfumato.core.errors import UnsafeModelFile
from sfumato.models.components import Components
from sfumato.models.embeddings import load_embedding
from sfumato.prompts.encoder import encode_prompt
from sfumato.prompts.networks import FolderResolver


def token_vectors(encoder: Any, tokenizer: Any, text: str) -> torch.Tensor:
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    table = getattr(encoder, "text_model", encoder).embeddings.token_embedding.weight
    return table[ids].detach().clone()


def encode(components: Components, prompt: str, folder: Path, **kwargs: object) -> torch.Tensor:
    cond = encode_prompt(components, prompt, steps=2, resolve=FolderResolver([folder]), **kwargs)  # type: ignore[arg-type]
    return cond.at(0)[0].embedding.hidden


@pytest.fixture
def library(tmp_path: Path) -> Path:
    (tmp_path / "embeddings").mkdir()
    return tmp_path


@pytest.mark.parametrize("layout", ["emb_params", "string_to_param", "diffusers"])
def test_sd1_embedding_is_used_by_file_name(sd1: Components, library: Path, layout: str) -> None:
    vectors = token_vectors(sd1.text_encoder, sd1.tokenizer, "red circle")  # 2 vectors
    key = {"emb_params": "emb_params", "string_to_param": "string_to_param.*", "diffusers": "<shape>"}[layout]
    save_file({key: vectors}, str(library / "embeddings" / "shapey.safetensors"))
    with_embedding = encode(sd1, "a shapey", library)
    assert torch.allclose(with_embedding, encode(sd1, "a red circle", library), atol=1e-6)
    assert not torch.allclose(with_embedding, encode(sd1, "a shapey", library / "nowhere"))


def test_embedding_weight_applies(sd1: Components, library: Path) -> None:
    save_file(
        {"emb_params": token_vectors(sd1.text_encoder, sd1.tokenizer, "red")},
        str(library / "embeddings" / "reddy.safetensors"),
    )
    assert torch.allclose(
        encode(sd1, "a (reddy:1.4)", library), encode(sd1, "a (red:1.4)", library), atol=1e-6
    )


def test_sdxl_embedding_fills_both_encoders(sdxl: Components, library: Path) -> None:
    assert sdxl.text_encoder_2 is not None
    tensors = {
        "clip_l": token_vectors(sdxl.text_encoder, sdxl.tokenizer, "red"),
        "clip_g": token_vectors(sdxl.text_encoder_2, sdxl.tokenizer, "red"),
    }
    save_file(tensors, str(library / "embeddings" / "xlred.safetensors"))
    assert torch.allclose(
        encode(sdxl, "a xlred circle", library), encode(sdxl, "a red circle", library), atol=1e-6
    )


def test_sdxl_embedding_on_sd1_is_reported(sd1: Components, library: Path) -> None:
    save_file(
        {"clip_l": torch.randn(1, 32), "clip_g": torch.randn(1, 32)},
        str(library / "embeddings" / "xlonly.safetensors"),
    )
    cond = encode_prompt(sd1, "a xlonly", steps=2, resolve=FolderResolver([library]))
    assert any("xlonly" in note and "sdxl" in note and "skipped" in note for note in cond.notes)


def test_sd1_embedding_on_sdxl_only_on_request(sdxl: Components, library: Path) -> None:
    save_file(
        {"emb_params": token_vectors(sdxl.text_encoder, sdxl.tokenizer, "red")},
        str(library / "embeddings" / "oldred.safetensors"),
    )
    cond = encode_prompt(sdxl, "a oldred", steps=2, resolve=FolderResolver([library]))
    assert any("oldred" in note and "CLIP-L" in note for note in cond.notes)
    applied = encode(sdxl, "a oldred", library, sd1_embeddings_on_sdxl=True)
    assert not any(
        "oldred" in note
        for note in encode_prompt(
            sdxl, "a oldred", steps=2, resolve=FolderResolver([library]), sd1_embeddings_on_sdxl=True
        ).notes
    )
    # CLIP-L half now reads "red"; the CLIP-G half does not.
    red = encode(sdxl, "a red", library)
    assert torch.allclose(applied[..., :32], red[..., :32], atol=1e-6)
    assert not torch.allclose(applied[..., 32:], red[..., 32:])


def test_pickled_embedding_is_refused_with_a_hint(sd1: Components, library: Path) -> None:
    path = library / "embeddings" / "old.pt"
    path.write_bytes(pickle.dumps({"string_to_param": {"*": [0.0] * 32}}))
    with pytest.raises(UnsafeModelFile, match="convert"):
        load_embedding(path)
    cond = encode_prompt(sd1, "an old picture", steps=2, resolve=FolderResolver([library]))
    assert any("old" in note and "convert" in note for note in cond.notes)


def test_ti_hash_is_the_file_sha256(library: Path) -> None:
    path = library / "embeddings" / "e.safetensors"
    save_file({"emb_params": torch.ones(1, 32)}, str(path))
    assert load_embedding(path).hash == hashlib.sha256(path.read_bytes()).hexdigest()[:12]
    assert load_embedding(path).architecture.startswith("an unknown model")


def test_words_in_other_folders_are_not_embeddings(sd1: Components, tmp_path: Path) -> None:
    save_file({"emb_params": torch.ones(1, 32)}, str(tmp_path / "circle.safetensors"))
    assert torch.equal(encode(sd1, "a circle", tmp_path), encode(sd1, "a circle", tmp_path / "nowhere"))
