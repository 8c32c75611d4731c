"""Textual inversion on tiny components: the file is an A1111 embedding, used by name as trained."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors import safe_open

from sfumato.core.errors import InvalidRequest, UnsupportedModel
from sfumato.models.components import Components
from sfumato.models.embeddings import load_embedding
from sfumato.prompts.encoder import encode_prompt
from sfumato.prompts.networks import FolderResolver
from sfumato.training.diffusion import Example, caption_ids, text_conditioning, vectors_in_place
from sfumato.training.textual_inversion import TextualInversionConfig, train_textual_inversion
from sfumato.training.world_examples import concept_examples


def examples(name: str = "sfpink") -> list[Example]:
    return [
        Example(e.image.resize((64, 64)), e.caption) for e in concept_examples(4, colour="pink", name=name)
    ]


def hidden(components: Components, prompt: str, library: Path) -> torch.Tensor:
    cond = encode_prompt(components, prompt, steps=2, resolve=FolderResolver([library]))
    return cond.at(0)[0].embedding.hidden


def test_untrained_embedding_reads_as_its_starting_words(sd1: Components, tmp_path: Path) -> None:
    config = TextualInversionConfig("sfpink", init_text="red circle", vectors=2, steps=0)
    trained = train_textual_inversion(sd1, examples(), config, tmp_path / "embeddings")
    with safe_open(str(trained.path), "pt") as handle:
        assert list(handle.keys()) == ["string_to_param.*"]
        assert handle.metadata()["sd_checkpoint_name"] == "tiny"
    assert torch.equal(
        hidden(sd1, "a sfpink on a white background", tmp_path),
        hidden(sd1, "a red circle on a white background", tmp_path),
    )


def test_trained_vectors_move_and_are_used_as_trained(sd1: Components, tmp_path: Path) -> None:
    before = {k: v.clone() for k, v in sd1.text_encoder.state_dict().items()}
    flags = [p.requires_grad for p in (*sd1.unet.parameters(), *sd1.text_encoder.parameters())]
    config = TextualInversionConfig("sfpink", init_text="red", steps=6, lr=0.05, batch=2)
    trained = train_textual_inversion(sd1, examples(), config, tmp_path / "embeddings")
    assert trained.result.finished and trained.result.step == 6
    loaded = load_embedding(trained.path)
    assert loaded.name == "sfpink" and loaded.tokens == 1
    assert torch.equal(loaded.vectors["clip"], trained.vectors)
    assert not torch.allclose(hidden(sd1, "a sfpink circle", tmp_path), hidden(sd1, "a red circle", tmp_path))
    # what training conditioned the UNet on is what a prompt gets at generation time
    ids, offsets = caption_ids(sd1, ["a sfpink circle"], "sfpink", 1)
    with torch.no_grad(), vectors_in_place(sd1.text_encoder, offsets, trained.vectors):
        during_training = text_conditioning(sd1, ids)
    assert torch.allclose(during_training, hidden(sd1, "a sfpink circle", tmp_path), atol=1e-5)
    # the model itself is left as it was
    assert all(torch.equal(v, before[k]) for k, v in sd1.text_encoder.state_dict().items())
    assert flags == [p.requires_grad for p in (*sd1.unet.parameters(), *sd1.text_encoder.parameters())]


def test_training_resumes_from_its_checkpoint(sd1: Components, tmp_path: Path) -> None:
    def run(steps: int, folder: Path) -> torch.Tensor:
        config = TextualInversionConfig("sfpink", steps=steps, lr=0.05, batch=2, checkpoint_every=2)
        return train_textual_inversion(sd1, examples(), config, folder).vectors

    straight = run(4, tmp_path / "straight")
    run(2, tmp_path / "split")
    assert torch.allclose(run(4, tmp_path / "split"), straight, atol=1e-6)
    assert not torch.allclose(run(2, tmp_path / "short"), straight, atol=1e-6)


def test_captions_must_use_the_word(sd1: Components, tmp_path: Path) -> None:
    with pytest.raises(InvalidRequest, match="do not use the word 'sfpink'") as error:
        train_textual_inversion(sd1, examples("other"), TextualInversionConfig("sfpink", steps=1), tmp_path)
    assert error.value.hint


def test_sdxl_is_refused_with_a_reason(tmp_path: Path) -> None:
    from tiny import tiny_components

    with pytest.raises(UnsupportedModel, match="SDXL"):
        train_textual_inversion(
            tiny_components(sdxl=True), examples(), TextualInversionConfig("sfpink", steps=1), tmp_path
        )
