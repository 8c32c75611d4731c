"""Prompt -> conditioning: chunks, weights, clip skip, SDXL, schedules, AND."""

from __future__ import annotations

import pytest
import torch

from sfumato.models.components import Components
from sfumato.prompts.encoder import chunk_runs, encode_prompt
from sfumato.prompts.parser import Run


def hidden(components: Components, prompt: str, **kwargs: object) -> torch.Tensor:
    return encode_prompt(components, prompt, steps=4, **kwargs).at(0)[0].embedding.hidden  # type: ignore[arg-type]


def reference(components: Components, prompt: str) -> torch.Tensor:
    ids = components.tokenizer(prompt, padding="max_length", max_length=77, return_tensors="pt").input_ids
    with torch.no_grad():
        return components.text_encoder(ids)[0]


def test_plain_prompt_matches_the_text_encoder(sd1: Components) -> None:
    assert torch.equal(hidden(sd1, "a red circle"), reference(sd1, "a red circle"))


def test_empty_prompt_is_one_chunk(sd1: Components) -> None:
    assert torch.equal(hidden(sd1, ""), reference(sd1, ""))


def lengths(components: Components, runs: list[Run]) -> list[int]:
    return [len(chunk.ids) for chunk in chunk_runs(components.tokenizer, runs)]


def test_chunks_of_75_tokens(sd1: Components) -> None:
    words = "cat " * 160
    assert lengths(sd1, [Run(words)]) == [75, 75, 10]
    out = hidden(sd1, words)
    assert out.shape == (1, 77 * 3, 32)
    assert torch.equal(out[:, 154:], reference(sd1, "cat " * 10))


def test_comma_backtracking_moves_the_last_phrase(sd1: Components) -> None:
    # 70 one-token words, a comma, then a phrase of 10 tokens: the phrase moves to chunk 2 whole.
    prompt = "cat " * 70 + ", " + "dog " * 10
    chunks = chunk_runs(sd1.tokenizer, [Run(prompt)])
    assert [len(chunk.ids) for chunk in chunks] == [71, 10]
    far = "cat " * 30 + ", " + "dog " * 50  # comma too far back (more than 20 tokens): plain cut
    assert [len(chunk.ids) for chunk in chunk_runs(sd1.tokenizer, [Run(far)])] == [75, 6]


def test_break_starts_a_new_chunk(sd1: Components) -> None:
    out = hidden(sd1, "a red circle BREAK a blue square")
    assert out.shape == (1, 154, 32)
    assert torch.equal(out[:, 77:], reference(sd1, "a blue square"))
    assert lengths(sd1, [Run("a"), Run("BREAK", is_break=True), Run("BREAK", is_break=True), Run("b")]) == [
        1,
        0,
        1,
    ]


def test_two_thousand_token_prompt(sd1: Components) -> None:
    prompt = "cat " * 2000
    out = hidden(sd1, prompt)
    assert out.shape == (1, 77 * 27, 32)
    assert torch.isfinite(out).all()


def test_weights_reach_the_embeddings_a1111_way(sd1: Components) -> None:
    plain = hidden(sd1, "red circle")
    weighted = hidden(sd1, "(red:1.5) circle")
    ratio = weighted / plain
    # Every token is rescaled by the same mean-restoring factor; "red" (position 1) by 1.5 more.
    factor = ratio[0, 2, 0]
    assert torch.allclose(ratio[0, 1], 1.5 * factor, rtol=1e-4)
    assert torch.allclose(ratio[0, 2:], factor.expand_as(ratio[0, 2:]), rtol=1e-4)
    assert torch.allclose(weighted.mean(), plain.mean(), rtol=1e-5)
    assert torch.equal(hidden(sd1, "(red:1) circle"), plain)


def test_negative_weight_flips_the_token(sd1: Components) -> None:
    plain = hidden(sd1, "red circle")
    flipped = hidden(sd1, "(red:-1) circle", emphasis="none")
    assert torch.allclose(flipped[0, 1], -plain[0, 1])
    assert torch.equal(flipped[0, 2], plain[0, 2])


def test_comfy_weights_move_away_from_the_empty_prompt(sd1: Components) -> None:
    plain = hidden(sd1, "red circle")
    empty = reference(sd1, "")
    weighted = hidden(sd1, "(red:1.5) circle", emphasis="comfy")
    assert torch.allclose(weighted[0, 1], empty[0, 1] + 1.5 * (plain[0, 1] - empty[0, 1]), atol=1e-5)
    assert torch.allclose(weighted[0, 2], plain[0, 2], atol=1e-6)


def test_clip_skip_reads_an_earlier_layer(sd1: Components) -> None:
    ids = sd1.tokenizer("a red circle", padding="max_length", max_length=77, return_tensors="pt").input_ids
    with torch.no_grad():
        out = sd1.text_encoder(ids, output_hidden_states=True)
        expected = getattr(sd1.text_encoder, "final_layer_norm")(out.hidden_states[-2])  # noqa: B009
    skipped = hidden(sd1, "a red circle", clip_skip=2)
    assert torch.allclose(skipped, expected)
    assert not torch.allclose(skipped, hidden(sd1, "a red circle"))


def test_sdxl_uses_both_encoders_and_the_pooled_output(sdxl: Components) -> None:
    assert sdxl.tokenizer_2 is not None and sdxl.text_encoder_2 is not None
    cond = encode_prompt(sdxl, "a red circle", steps=4)
    embedding = cond.at(0)[0].embedding
    ids_l = sdxl.tokenizer("a red circle", padding="max_length", max_length=77, return_tensors="pt").input_ids
    ids_g = sdxl.tokenizer_2(
        "a red circle", padding="max_length", max_length=77, return_tensors="pt"
    ).input_ids
    with torch.no_grad():
        out_l = sdxl.text_encoder(ids_l, output_hidden_states=True)
        out_g = sdxl.text_encoder_2(ids_g, output_hidden_states=True)
    assert embedding.hidden.shape == (1, 77, 64)
    assert torch.allclose(
        embedding.hidden, torch.cat([out_l.hidden_states[-2], out_g.hidden_states[-2]], dim=-1)
    )
    assert embedding.pooled is not None
    assert torch.allclose(embedding.pooled, out_g.text_embeds)
    long = encode_prompt(sdxl, "a red circle BREAK a blue square", steps=4).at(0)[0].embedding
    assert long.hidden.shape == (1, 154, 64)
    assert long.pooled is not None and torch.allclose(long.pooled, out_g.text_embeds)  # first chunk's


def test_sdxl_ignores_clip_skip_and_says_so(sdxl: Components) -> None:
    cond = encode_prompt(sdxl, "a red circle", steps=4, clip_skip=2)
    assert torch.equal(cond.at(0)[0].embedding.hidden, hidden(sdxl, "a red circle"))
    assert any("Clip skip" in note for note in cond.notes)


def test_schedule_switches_text_and_encodes_each_text_once(sd1: Components) -> None:
    cond = encode_prompt(sd1, "[red|blue] circle", steps=6)
    red, blue = reference(sd1, "red circle"), reference(sd1, "blue circle")
    seen = [cond.at(step)[0].embedding.hidden for step in range(6)]
    assert [torch.equal(h, red) for h in seen] == [True, True, False, True, False, True]
    assert torch.equal(seen[2], blue)
    assert len({id(h) for h in seen}) == 2
    edit = encode_prompt(sd1, "[red:blue:0.5] circle", steps=4)
    assert [(entry.start, entry.end) for entry in edit.schedule] == [(0, 3), (3, 4)]


def test_and_parts_carry_their_weights(sd1: Components) -> None:
    parts = encode_prompt(sd1, "a red circle :1.5 AND a blue square :-0.5", steps=4).at(0)
    assert [part.weight for part in parts] == [1.5, -0.5]
    assert torch.equal(parts[1].embedding.hidden, reference(sd1, " a blue square"))


def test_padding_to_the_longer_prompt(sd1: Components) -> None:
    short = encode_prompt(sd1, "a", steps=2)
    padded = short.padded_to(154)
    assert padded.max_tokens == 154
    assert torch.equal(padded.at(0)[0].embedding.hidden[:, 77:], reference(sd1, ""))


@pytest.mark.parametrize("prompt", ["(", "[a:b:c:d]", "AND", "\\", "[[[|]]]", "BREAK"])
def test_malformed_prompts_still_encode(sd1: Components, prompt: str) -> None:
    cond = encode_prompt(sd1, prompt, steps=3)
    assert all(torch.isfinite(part.embedding.hidden).all() for entry in cond.schedule for part in entry.parts)
