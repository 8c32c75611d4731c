"""Emphasis on text encoders whose output averages to zero: never NaN, never amplified, always said.

The degenerate cases are forced by the final norm's parameters, not left to a CPU's rounding.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sfumato.core.request import GenerationRequest
from sfumato.engine.generate import generate
from sfumato.models.components import Components
from sfumato.prompts.encoder import MEAN_NOT_RESTORED_NOTE, encode_prompt
from tiny import tiny_components


def with_final_norm(weight: float, bias: float) -> Components:
    components = tiny_components(seed=5)
    norm: torch.nn.LayerNorm = getattr(components.text_encoder, "final_layer_norm")  # noqa: B009
    with torch.no_grad():
        norm.weight.fill_(weight)
        norm.bias.fill_(bias)
    return components


@pytest.fixture(scope="module")
def flat() -> Components:
    """Every token of every prompt encodes to exactly zero."""
    return with_final_norm(0.0, 0.0)


@pytest.fixture(scope="module")
def zero_mean() -> Components:
    """Each token's state has a zero mean (LayerNorm weight 1, bias 0): the chunk's mean is rounding noise."""
    return with_final_norm(1.0, 0.0)


def test_flat_encoder_gives_the_unweighted_conditioning_and_a_note(flat: Components) -> None:
    weighted = encode_prompt(flat, "a (red:1.5) cat", steps=4)
    plain = encode_prompt(flat, "a red cat", steps=4)
    hidden = weighted.at(0)[0].embedding.hidden
    assert torch.isfinite(hidden).all()
    assert torch.equal(hidden, plain.at(0)[0].embedding.hidden)
    assert MEAN_NOT_RESTORED_NOTE in weighted.notes
    assert MEAN_NOT_RESTORED_NOTE not in plain.notes


def test_zero_mean_encoder_applies_weights_as_plain_multipliers(zero_mean: Components) -> None:
    weighted = encode_prompt(zero_mean, "(red:1.5) circle", steps=4)
    plain = encode_prompt(zero_mean, "red circle", steps=4).at(0)[0].embedding.hidden
    hidden = weighted.at(0)[0].embedding.hidden
    assert abs(float(plain.mean())) < 1e-3 * float(plain.abs().mean())  # the case really is degenerate
    expected = plain.clone()
    expected[0, 1] *= 1.5
    assert torch.allclose(hidden, expected, rtol=1e-6, atol=1e-7)
    assert MEAN_NOT_RESTORED_NOTE in weighted.notes


@pytest.mark.parametrize("threads", [1, 2, 3])
def test_zero_mean_result_does_not_depend_on_the_thread_count(zero_mean: Components, threads: int) -> None:
    # Summation order changes with the thread count, so the chunk's near-zero mean changes sign and
    # size; the result must not follow it (A1111's ratio would be anything from NaN to huge).
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        weighted = encode_prompt(zero_mean, "(red:1.5) circle", steps=4).at(0)[0].embedding.hidden
        plain = encode_prompt(zero_mean, "red circle", steps=4).at(0)[0].embedding.hidden
    finally:
        torch.set_num_threads(before)
    assert torch.equal(weighted[0, 2:], plain[0, 2:])
    assert torch.allclose(weighted[0, 1], 1.5 * plain[0, 1], rtol=1e-6)


def test_a_flat_encoder_draws_the_same_picture_with_and_without_emphasis(flat: Components) -> None:
    def picture(prompt: str) -> tuple[np.ndarray, list[str]]:
        result = generate(flat, GenerationRequest(prompt=prompt, steps=3, seed=4))
        return np.asarray(result.images[0].image, dtype=np.int16), result.notes

    weighted, notes = picture("a (red:1.5) cat")
    plain, _ = picture("a red cat")
    assert weighted.std() > 1  # a real render, not a black (NaN) picture
    assert np.array_equal(weighted, plain)
    assert MEAN_NOT_RESTORED_NOTE in notes
