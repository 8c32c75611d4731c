"""frozen_noise and noise_per_position: which noise each picture of a job draws (tiny random model)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from sfumato.core.images import to_data_uri
from sfumato.core.request import GenerationRequest
from sfumato.engine.generate import generate
from sfumato.engine.seeds import ImageNoise, batch_noise, positional_noise
from sfumato.models.components import Components


def _picture(seed: int, size: tuple[int, int] = (64, 64)) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8))


def test_frozen_batch_draws_the_same_starting_and_encode_noise_for_every_picture() -> None:
    frozen = batch_noise((4, 8, 8), 7, 0, 0.0, 3, 3, frozen=True)
    assert all(torch.equal(n.noise, frozen[0].noise) for n in frozen)
    draws = [n.draw((1, 4, 8, 8)) for n in frozen]
    assert all(torch.equal(d, draws[0]) for d in draws)
    assert not torch.equal(draws[0], frozen[0].noise)  # the encode noise is a draw of its own

    thawed = batch_noise((4, 8, 8), 7, 0, 0.0, 3, 3)
    assert not torch.equal(thawed[0].noise, thawed[1].noise)
    assert torch.equal(frozen[0].noise, batch_noise((4, 8, 8), 7, 0, 0.0, 0, 1)[0].noise)  # seed + 0


def test_noise_per_position_is_the_same_where_sizes_overlap() -> None:
    small = batch_noise((4, 12, 10), 7, 0, 0.0, 0, 1, per_position=True)[0]
    large = batch_noise((4, 20, 28), 7, 0, 0.0, 0, 1, per_position=True)[0]
    assert torch.equal(small.noise, large.noise[:, :, :12, :10])
    assert torch.equal(small.draw((4, 12, 10)), large.draw((4, 20, 28))[:, :, :12, :10])
    field = positional_noise((4, 20, 28), 7)
    assert abs(float(field.mean())) < 0.1 and abs(float(field.std()) - 1) < 0.1
    assert not torch.equal(positional_noise((4, 8, 8), 7), positional_noise((4, 8, 8), 8))
    assert not torch.equal(field[:, :8, :8], field[:, 8:16, 8:16])  # blocks are independent


def _encode_noises(monkeypatch: pytest.MonkeyPatch) -> list[torch.Tensor]:
    seen: list[torch.Tensor] = []
    draw = ImageNoise.draw

    def recording(self: ImageNoise, shape: tuple[int, ...]) -> torch.Tensor:
        value = draw(self, shape)
        seen.append(value.clone())
        return value

    monkeypatch.setattr(ImageNoise, "draw", recording)
    return seen


def test_frozen_keyframes_are_encoded_with_the_same_noise(
    sd1: Components, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sfumato.jobs.video_keyframes import Keyframe, KeyframeProject, keyframe_requests

    frames = [_picture(1), _picture(2), _picture(3)]
    keys = [Keyframe(i + 1, f) for i, f in enumerate(frames)]
    project = KeyframeProject(
        folder=Path("unused"), work=Path("unused"), fps=24.0, frame_count=3, keyframes=keys
    )
    for frozen in (True, False):
        seen = _encode_noises(monkeypatch)
        requests = keyframe_requests(
            project, GenerationRequest(prompt="a cat", seed=11, steps=4, frozen_noise=frozen)
        )
        for request in requests:
            generate(sd1, request)
        assert len(seen) == 3
        same = [torch.equal(seen[0], s) for s in seen[1:]]
        assert same == ([True, True] if frozen else [False, False])
        assert [r.seed for r in requests] == ([11, 11, 11] if frozen else [11, 12, 13])


def test_frozen_batch_renders_identical_pictures_and_recipes(sd1: Components) -> None:
    frame = to_data_uri(_picture(4))
    base = GenerationRequest(prompt="a cat", init_image=frame, steps=4, seed=5, batch_size=2)
    frozen = generate(sd1, base.model_copy(update={"frozen_noise": True})).images
    assert np.array_equal(np.asarray(frozen[0].image), np.asarray(frozen[1].image))
    assert [i.recipe.seed for i in frozen] == [5, 5] and frozen[1].recipe.frozen_noise
    alone = generate(sd1, frozen[1].recipe).images[0]  # the recipe reproduces the picture
    assert np.array_equal(np.asarray(alone.image), np.asarray(frozen[1].image))
    thawed = generate(sd1, base).images
    assert not np.array_equal(np.asarray(thawed[0].image), np.asarray(thawed[1].image))
    assert np.array_equal(np.asarray(thawed[0].image), np.asarray(frozen[0].image))
