"""A1111's samplers and schedule types that had no diffusers scheduler: each renders a finite, non-black
picture on a tiny model, and the schedules give the sigmas their names promise."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from sfumato.core.request import SAMPLERS, SCHEDULE_TYPES, GenerationRequest
from sfumato.engine.generate import generate
from sfumato.engine.samplers import custom_sigmas, make_scheduler, partway_timesteps, resolve_schedule
from tiny import SCHEDULER_CONFIG, tiny_components

NEW_SAMPLERS = (
    "DPM++ 2S a",
    "DPM++ 2M SDE Heun",
    "DPM++ 3M SDE",
    "DPM fast",
    "DPM adaptive",
    "Restart",
    "DDIM CFG++",
)
NEW_SCHEDULES = (
    "Uniform",
    "Polyexponential",
    "KL Optimal",
    "Align Your Steps",
    "Simple",
    "Normal",
    "DDIM",
    "Beta",
)
# Schedules that are the same schedule by their definitions (A1111's too), on Euler and an SD config.
SAME = [
    {"Exponential", "Polyexponential"},  # polyexponential at A1111's default rho 1
    {"Uniform", "Normal"},
    {"Simple", "SGM Uniform"},
    {"Automatic", "DDIM"},  # SD's own schedule is DDIM's stride
]


@pytest.fixture(scope="module")
def components() -> Any:
    return tiny_components(seed=0)


def _sigmas(sampler: str, schedule: str, steps: int = 12) -> np.ndarray:
    scheduler: Any = make_scheduler(sampler, schedule, SCHEDULER_CONFIG)
    partway_timesteps(scheduler, steps, steps, "cpu", sampler=sampler, schedule_type=schedule)
    return scheduler.sigmas.numpy()


def test_every_a1111_name_is_known() -> None:
    assert set(NEW_SAMPLERS) <= set(SAMPLERS) and set(NEW_SCHEDULES) <= set(SCHEDULE_TYPES)
    assert len(SAMPLERS) == 20 and len(SCHEDULE_TYPES) == 12  # A1111 1.10's lists


@pytest.mark.parametrize("sampler", NEW_SAMPLERS)
def test_each_new_sampler_renders_a_picture(components: Any, sampler: str) -> None:
    request = GenerationRequest(prompt="a cat", seed=4, steps=4, width=64, height=64, sampler=sampler)
    result = generate(components, request, preview_every=0)
    picture = np.asarray(result.images[0].image, dtype=np.float32)
    assert np.isfinite(picture).all() and picture.mean() > 5 and picture.std() > 1
    _, note = resolve_schedule(sampler, "Automatic")
    if note is not None:  # an approximation is said, in the picture's notes
        assert note in result.notes


@pytest.mark.parametrize("schedule", NEW_SCHEDULES)
@pytest.mark.parametrize("sampler", ["Euler", "DPM++ 2M"])
def test_each_new_schedule_renders_a_picture(components: Any, sampler: str, schedule: str) -> None:
    request = GenerationRequest(
        prompt="a cat", seed=4, steps=5, width=64, height=64, sampler=sampler, schedule_type=schedule
    )
    picture = np.asarray(generate(components, request, preview_every=0).images[0].image, dtype=np.float32)
    assert np.isfinite(picture).all() and picture.mean() > 5 and picture.std() > 1
    assert resolve_schedule(sampler, schedule) == (schedule, None)  # run as asked, no fallback


def test_distinct_schedules_give_distinct_sigmas() -> None:
    sigmas = {schedule: _sigmas("Euler", schedule) for schedule in SCHEDULE_TYPES}
    for first in SCHEDULE_TYPES:
        for second in SCHEDULE_TYPES:
            if first >= second:
                continue
            same = any({first, second} <= group for group in SAME)
            close = sigmas[first].shape == sigmas[second].shape and np.allclose(
                sigmas[first], sigmas[second], rtol=1e-3
            )
            assert close == same, (first, second)


def test_schedules_fall_in_their_own_shape() -> None:
    kl = _sigmas("Euler", "KL Optimal")[:-1]
    angles = np.arctan(kl)
    # KL optimal: evenly spaced in atan(sigma), up to the whole timesteps it runs on
    assert np.allclose(np.diff(angles), np.diff(angles).mean(), atol=0.02)
    ays = _sigmas("Euler", "Align Your Steps", steps=10)[:-1]
    reference = custom_sigmas("Align Your Steps", 10, _model_sigmas())
    assert np.allclose(ays, reference, rtol=0.02)
    beta = _sigmas("Euler", "Beta")[:-1]
    # A1111's beta(0.6, 0.6): steps crowd at both ends, wider in the middle
    gaps = -np.diff(beta)
    assert gaps[len(gaps) // 2] > gaps[0] and gaps[len(gaps) // 2] > gaps[-1]


def _model_sigmas() -> np.ndarray:
    scheduler: Any = make_scheduler("Euler", "Automatic", SCHEDULER_CONFIG)
    alphas = scheduler.alphas_cumprod.numpy().astype(np.float64)
    return ((1 - alphas) / alphas) ** 0.5


def test_sdxl_align_your_steps_is_its_own() -> None:
    model = _model_sigmas()
    assert not np.allclose(
        custom_sigmas("Align Your Steps", 10, model), custom_sigmas("Align Your Steps", 10, model, sdxl=True)
    )


@pytest.mark.parametrize(
    ("sampler", "key", "value"),
    [
        ("DPM++ 2M SDE Heun", "solver_type", "heun"),
        ("DPM++ 3M SDE", "solver_order", 3),
        ("DPM++ 2S a", "algorithm_type", "sde-dpmsolver++"),
    ],
)
def test_sampler_settings(sampler: str, key: str, value: object) -> None:
    scheduler: Any = make_scheduler(sampler, "Automatic", SCHEDULER_CONFIG)
    assert scheduler.config[key] == value


def test_img2img_with_a_listed_schedule_starts_partway(components: Any) -> None:
    scheduler: Any = make_scheduler("Euler", "Align Your Steps", SCHEDULER_CONFIG)
    full = partway_timesteps(scheduler, 10, 10, "cpu", sampler="Euler", schedule_type="Align Your Steps")
    scheduler = make_scheduler("Euler", "Align Your Steps", SCHEDULER_CONFIG)
    half = partway_timesteps(scheduler, 10, 5, "cpu", sampler="Euler", schedule_type="Align Your Steps")
    assert list(half) == list(full[5:])
