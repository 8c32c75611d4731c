from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch
from engine_pictures import pixels

from sfumato.core.errors import Cancelled, InvalidRequest
from sfumato.core.events import CancelToken, StepProgress
from sfumato.core.request import SAMPLERS, GenerationRequest
from sfumato.engine.generate import generate
from sfumato.models.components import Components


def request(**fields: Any) -> GenerationRequest:
    base: dict[str, Any] = {"prompt": "a red circle", "negative_prompt": "blurry", "steps": 3, "seed": 7}
    return GenerationRequest(**(base | fields))


def only_picture(components: Components, **fields: Any) -> np.ndarray:
    result = generate(components, request(**fields))
    assert len(result.images) == 1
    return pixels(result.images[0].image)


@pytest.mark.parametrize("sampler", SAMPLERS)
def test_every_sampler_makes_a_picture(sd1: Components, sampler: str) -> None:
    result = generate(sd1, request(sampler=sampler))
    picture = pixels(result.images[0].image)
    assert picture.shape == (64, 64, 3)
    assert picture.std() > 1  # not a flat colour: the VAE decoded real latents
    assert result.images[0].recipe.sampler == sampler


@pytest.mark.parametrize(
    ("sampler", "schedule"),
    [("Euler", "Karras"), ("DPM++ 2M", "Exponential"), ("Heun", "SGM Uniform"), ("UniPC", "Karras")],
)
def test_schedule_types_change_the_picture(sd1: Components, sampler: str, schedule: str) -> None:
    automatic = only_picture(sd1, sampler=sampler, schedule_type="Automatic")
    other = only_picture(sd1, sampler=sampler, schedule_type=schedule)
    assert np.abs(automatic - other).max() > 0


def test_impossible_schedule_is_reported_in_notes(sd1: Components) -> None:
    result = generate(sd1, request(sampler="Euler a", schedule_type="Karras"))
    assert any("Karras" in note for note in result.notes)


def test_same_request_gives_identical_pixels(sd1: Components) -> None:
    first = only_picture(sd1, sampler="Euler a")
    again = only_picture(sd1, sampler="Euler a")
    assert np.array_equal(first, again)


def test_different_seeds_give_different_pictures(sd1: Components) -> None:
    assert np.abs(only_picture(sd1, seed=1) - only_picture(sd1, seed=2)).mean() > 1


@pytest.mark.parametrize("sampler", ["Euler", "Euler a", "DPM++ 2M SDE"])
def test_picture_i_of_a_batch_is_the_single_run_with_seed_plus_i(sd1: Components, sampler: str) -> None:
    batch = generate(sd1, request(sampler=sampler, seed=100, batch_size=3))
    assert [image.recipe.seed for image in batch.images] == [100, 101, 102]
    for image in batch.images:
        alone = only_picture(sd1, sampler=sampler, seed=image.recipe.seed)
        assert np.abs(pixels(image.image) - alone).max() <= 2  # batched UNet arithmetic differs a little


def test_batch_count_continues_the_seeds(sd1: Components) -> None:
    result = generate(sd1, request(seed=5, batch_size=2, batch_count=2))
    assert [image.recipe.seed for image in result.images] == [5, 6, 7, 8]
    assert [image.index for image in result.images] == [0, 1, 2, 3]
    last = only_picture(sd1, seed=8)
    assert np.abs(pixels(result.images[3].image) - last).max() <= 2


def test_recipe_alone_reproduces_its_picture(sd1: Components) -> None:
    result = generate(
        sd1, request(seed=-1, variation_seed=-1, variation_strength=0.3, batch_size=2, width=None)
    )
    image = result.images[1]
    recipe = image.recipe
    assert recipe.seed != -1 and recipe.variation_seed != -1
    assert (recipe.width, recipe.height, recipe.batch_size, recipe.batch_count) == (64, 64, 1, 1)
    assert image.model == sd1.info
    again = generate(sd1, recipe).images[0]
    assert np.abs(pixels(again.image) - pixels(image.image)).max() <= 2


def test_variation_seed(sd1: Components) -> None:
    plain = only_picture(sd1, seed=1)
    none = only_picture(sd1, seed=1, variation_seed=2, variation_strength=0.0)
    full = only_picture(sd1, seed=1, variation_seed=2, variation_strength=1.0)
    half = only_picture(sd1, seed=1, variation_seed=2, variation_strength=0.5)
    other = only_picture(sd1, seed=2)
    assert np.array_equal(plain, none)
    # Euler adds no noise after the start, so full strength is the variation seed's picture.
    assert np.abs(full - other).max() <= 1
    assert np.abs(half - plain).mean() > 0.5 and np.abs(half - other).mean() > 0.5


def test_variation_seeds_of_a_batch_go_up_with_the_seed(sd1: Components) -> None:
    result = generate(sd1, request(seed=1, variation_seed=50, variation_strength=0.5, batch_size=2))
    assert [image.recipe.variation_seed for image in result.images] == [50, 51]


def test_progress_every_step_with_previews(sd1: Components) -> None:
    events: list[StepProgress] = []
    generate(sd1, request(steps=4, batch_count=2), on_progress=events.append, preview_every=2)
    assert [(e.step, e.batch) for e in events] == [(s, b) for b in range(2) for s in range(1, 5)]
    assert all(e.steps == 4 and e.batches == 2 for e in events)
    previews = [e for e in events if e.preview is not None]
    assert [e.step for e in previews] == [2, 4, 2, 4]
    assert previews[0].preview is not None and previews[0].preview.size == (64, 64)
    assert events[-1].fraction == 1.0


def test_no_previews_when_preview_every_is_zero(sd1: Components) -> None:
    events: list[StepProgress] = []
    generate(sd1, request(steps=3), on_progress=events.append, preview_every=0)
    assert len(events) == 3 and all(e.preview is None for e in events)


@pytest.mark.parametrize("sampler", ["Heun", "DPM2 a", "PLMS"])
def test_second_order_and_warm_up_samplers_report_the_requested_steps(sd1: Components, sampler: str) -> None:
    events: list[StepProgress] = []
    generate(sd1, request(sampler=sampler, steps=4), on_progress=events.append)
    assert [e.step for e in events] == [1, 2, 3, 4]


def test_cancel_at_step_two_raises_and_returns_nothing(sd1: Components) -> None:
    token = CancelToken()
    seen: list[int] = []

    def cancel_at_two(event: StepProgress) -> None:
        seen.append(event.step)
        if event.step == 2:
            token.cancel()

    with pytest.raises(Cancelled):
        generate(sd1, request(steps=5, batch_count=2), on_progress=cancel_at_two, cancel=token)
    assert seen == [1, 2]


def test_skip_ends_the_batch_and_goes_on(sd1: Components) -> None:
    token = CancelToken()
    seen: list[tuple[int, int]] = []

    def skip_at_two(event: StepProgress) -> None:
        seen.append((event.batch, event.step))
        if event == StepProgress(2, 5, 0, 2):
            token.skip()

    result = generate(sd1, request(steps=5, batch_count=2), on_progress=skip_at_two, cancel=token)
    assert seen == [(0, 1), (0, 2), *[(1, s) for s in range(1, 6)]]
    assert len(result.images) == 2
    full = only_picture(sd1, steps=5)
    assert np.abs(pixels(result.images[0].image) - full).mean() > 0.5  # a half-done picture


def test_native_size_when_no_size_given(sd1: Components) -> None:
    result = generate(sd1, request(width=None, height=None))
    assert result.images[0].image.size == (sd1.native_size, sd1.native_size)


def test_other_sizes(sd1: Components) -> None:
    result = generate(sd1, request(width=96, height=64))
    assert result.images[0].image.size == (96, 64)


def test_sdxl(sdxl: Components) -> None:
    result = generate(sdxl, request(batch_size=2, seed=3, sampler="Euler a"))
    assert len(result.images) == 2
    alone = generate(sdxl, request(seed=4, sampler="Euler a")).images[0]
    assert np.abs(pixels(result.images[1].image) - pixels(alone.image)).max() <= 2


def test_sdxl_time_ids_follow_the_picture_size(sdxl: Components) -> None:
    seen: list[torch.Tensor] = []

    def grab(module: Any, args: Any, kwargs: dict[str, Any]) -> None:
        seen.append(kwargs["added_cond_kwargs"]["time_ids"])

    handle = sdxl.unet.register_forward_pre_hook(grab, with_kwargs=True)
    try:
        generate(sdxl, request(width=96, height=64, steps=1))
    finally:
        handle.remove()
    assert seen[0].tolist() == [[64, 96, 0, 0, 64, 96]] * 2


def count_unet_calls(components: Components, **fields: Any) -> int:
    calls = 0

    def count(module: Any, args: Any) -> None:
        nonlocal calls
        calls += 1

    handle = components.unet.register_forward_pre_hook(count)
    try:
        generate(components, request(**fields))
    finally:
        handle.remove()
    return calls


def test_guidance_is_one_unet_call_per_step_when_token_lengths_match(sd1: Components) -> None:
    assert count_unet_calls(sd1, steps=3) == 3


def test_long_prompt_is_guided_with_separate_calls(sd1: Components) -> None:
    long_prompt = " ".join(["a red circle on a blue ground"] * 20)  # > 75 tokens: two chunks
    assert count_unet_calls(sd1, steps=3, prompt=long_prompt) == 6


def test_cfg_one_skips_the_negative_prompt(sd1: Components) -> None:
    assert count_unet_calls(sd1, steps=3, cfg_scale=1.0) == 3
    a = only_picture(sd1, cfg_scale=1.0, negative_prompt="one thing")
    b = only_picture(sd1, cfg_scale=1.0, negative_prompt="something else")
    assert np.array_equal(a, b)


def test_nan_from_a_half_precision_vae_is_decoded_again_in_float32(monkeypatch: pytest.MonkeyPatch) -> None:
    from tiny import tiny_components

    components = tiny_components()
    vae: Any = components.vae
    vae.to(torch.bfloat16)
    real_decode = vae.decode

    def decode(latents: torch.Tensor, **kwargs: Any) -> Any:
        out = real_decode(latents, **kwargs)
        if latents.dtype == torch.bfloat16:
            return (torch.full_like(out[0], float("nan")),)
        return out

    monkeypatch.setattr(components.vae, "decode", decode)
    result = generate(components, request())
    assert any("float32" in note for note in result.notes)
    assert pixels(result.images[0].image).std() > 1
    assert components.vae.dtype == torch.bfloat16


def test_lcm_with_too_many_steps_is_a_clear_error(sd1: Components) -> None:
    with pytest.raises(InvalidRequest, match="LCM sampler runs at most 50 steps"):
        generate(sd1, request(sampler="LCM", steps=60))
