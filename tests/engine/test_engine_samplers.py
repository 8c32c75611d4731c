from __future__ import annotations

from typing import Any

import pytest

from sfumato.core.errors import InvalidRequest
from sfumato.core.request import SAMPLERS, SCHEDULE_TYPES
from sfumato.engine.samplers import SAMPLER_SPECS, make_scheduler, resolve_schedule
from tiny import SCHEDULER_CONFIG

V_PRED = dict(SCHEDULER_CONFIG, prediction_type="v_prediction", beta_end=0.02)

EXPECTED = {
    "Euler": "EulerDiscreteScheduler",
    "Euler a": "EulerAncestralDiscreteScheduler",
    "Heun": "HeunDiscreteScheduler",
    "LMS": "LMSDiscreteScheduler",
    "DPM2": "KDPM2DiscreteScheduler",
    "DPM2 a": "KDPM2AncestralDiscreteScheduler",
    "DPM++ 2M": "DPMSolverMultistepScheduler",
    "DPM++ 2M SDE": "DPMSolverMultistepScheduler",
    "DPM++ SDE": "DPMSolverSinglestepScheduler",
    "DDIM": "DDIMScheduler",
    "PLMS": "PNDMScheduler",
    "UniPC": "UniPCMultistepScheduler",
    "LCM": "LCMScheduler",
    "DPM++ 2S a": "DPMSolverSinglestepScheduler",
    "DPM++ 2M SDE Heun": "DPMSolverMultistepScheduler",
    "DPM++ 3M SDE": "DPMSolverMultistepScheduler",
    "DPM fast": "DPMSolverSinglestepScheduler",
    "DPM adaptive": "DPMSolverMultistepScheduler",
    "Restart": "HeunDiscreteScheduler",
    "DDIM CFG++": "DDIMScheduler",
}


def config(sampler: str, schedule: str, model_config: dict[str, Any]) -> Any:
    scheduler: Any = make_scheduler(sampler, schedule, model_config)
    return scheduler.config


def test_every_request_sampler_has_a_scheduler() -> None:
    assert set(SAMPLER_SPECS) == set(SAMPLERS) == set(EXPECTED)


@pytest.mark.parametrize("sampler", SAMPLERS)
@pytest.mark.parametrize("schedule", SCHEDULE_TYPES)
def test_scheduler_keeps_the_models_betas_and_prediction_type(sampler: str, schedule: str) -> None:
    scheduler: Any = make_scheduler(sampler, schedule, V_PRED)
    assert type(scheduler).__name__ == EXPECTED[sampler]
    assert scheduler.config["prediction_type"] == "v_prediction"
    assert scheduler.config["beta_end"] == 0.02
    assert scheduler.config["beta_schedule"] == "scaled_linear"
    scheduler.set_timesteps(5)
    assert len(scheduler.timesteps) >= 5


def test_dpm_2m_variants() -> None:
    assert config("DPM++ 2M", "Automatic", SCHEDULER_CONFIG)["algorithm_type"] == "dpmsolver++"
    assert config("DPM++ 2M SDE", "Karras", SCHEDULER_CONFIG)["algorithm_type"] == "sde-dpmsolver++"
    assert config("PLMS", "Automatic", SCHEDULER_CONFIG)["skip_prk_steps"] is True


@pytest.mark.parametrize(
    ("sampler", "schedule", "key", "value"),
    [
        ("Euler", "Karras", "use_karras_sigmas", True),
        ("Euler", "Exponential", "use_exponential_sigmas", True),
        ("Euler", "SGM Uniform", "timestep_spacing", "trailing"),
        ("DPM++ 2M", "Automatic", "use_karras_sigmas", True),  # A1111's default for DPM++ 2M
        ("DPM++ 2M SDE", "Automatic", "use_exponential_sigmas", True),
        ("Euler", "Automatic", "use_karras_sigmas", False),
        ("Euler", "Automatic", "timestep_spacing", "leading"),  # the model's own
        ("DDIM", "SGM Uniform", "timestep_spacing", "trailing"),
    ],
)
def test_schedule_types(sampler: str, schedule: str, key: str, value: object) -> None:
    assert config(sampler, schedule, SCHEDULER_CONFIG)[key] == value


def test_a_model_config_cannot_force_karras_on_automatic() -> None:
    karras_model = dict(SCHEDULER_CONFIG, use_karras_sigmas=True)
    assert config("Euler", "Automatic", karras_model)["use_karras_sigmas"] is False


@pytest.mark.parametrize(
    ("sampler", "schedule"), [("Euler a", "Karras"), ("DDIM", "Exponential"), ("LCM", "Karras")]
)
def test_impossible_schedule_falls_back_with_a_note(sampler: str, schedule: str) -> None:
    effective, note = resolve_schedule(sampler, schedule)
    assert effective == "Automatic"
    assert note is not None and sampler in note and schedule in note
    assert type(make_scheduler(sampler, schedule, SCHEDULER_CONFIG)).__name__ == EXPECTED[sampler]


def test_possible_schedule_has_no_note() -> None:
    assert resolve_schedule("Euler", "Karras") == ("Karras", None)


@pytest.mark.parametrize(("sampler", "schedule"), [("Euler b", "Automatic"), ("Euler", "Quadratic")])
def test_unknown_names_are_clear_errors(sampler: str, schedule: str) -> None:
    with pytest.raises(InvalidRequest, match="Choose one of"):
        make_scheduler(sampler, schedule, SCHEDULER_CONFIG)
