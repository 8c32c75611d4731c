"""A1111 sampler and schedule-type names, turned into diffusers schedulers.

The mapping follows diffusers' own table (docs/source/en/api/schedulers/overview.md):
Karras -> ``use_karras_sigmas``, Exponential -> ``use_exponential_sigmas``,
SGM Uniform -> ``timestep_spacing="trailing"``. "Automatic" is what A1111 picks for the
sampler (Karras for DPM++ 2M, DPM++ SDE, DPM2 and DPM2 a; Exponential for DPM++ 2M SDE;
the model's own schedule for the rest).

A schedule type a scheduler cannot do (Karras with Euler a, DDIM, PLMS or LCM, for
example) falls back to the sampler's own schedule; :func:`resolve_schedule` says so in a
note that the engine passes on to the user. A1111 ignores the schedule type for these
samplers as well, so requests written for it keep working.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sfumato.core.errors import InvalidRequest
from sfumato.core.request import SAMPLERS, SCHEDULE_TYPES

if TYPE_CHECKING:
    from diffusers import SchedulerMixin

KARRAS, EXPONENTIAL, SGM_UNIFORM, AUTOMATIC = "Karras", "Exponential", "SGM Uniform", "Automatic"


@dataclass(frozen=True)
class SamplerSpec:
    scheduler: str  # diffusers class name
    options: tuple[tuple[str, Any], ...] = ()
    automatic: str | None = None  # the schedule type A1111's "Automatic" means for this sampler
    schedules: frozenset[str] = frozenset()  # schedule types the scheduler can do besides its own


_SIGMA_SCHEDULES = frozenset({KARRAS, EXPONENTIAL, SGM_UNIFORM})

SAMPLER_SPECS: dict[str, SamplerSpec] = {
    "Euler": SamplerSpec("EulerDiscreteScheduler", schedules=_SIGMA_SCHEDULES),
    "Euler a": SamplerSpec("EulerAncestralDiscreteScheduler", schedules=frozenset({SGM_UNIFORM})),
    "Heun": SamplerSpec("HeunDiscreteScheduler", schedules=_SIGMA_SCHEDULES),
    "LMS": SamplerSpec("LMSDiscreteScheduler", schedules=_SIGMA_SCHEDULES),
    "DPM2": SamplerSpec("KDPM2DiscreteScheduler", automatic=KARRAS, schedules=_SIGMA_SCHEDULES),
    "DPM2 a": SamplerSpec("KDPM2AncestralDiscreteScheduler", automatic=KARRAS, schedules=_SIGMA_SCHEDULES),
    "DPM++ 2M": SamplerSpec(
        "DPMSolverMultistepScheduler",
        (("algorithm_type", "dpmsolver++"), ("solver_order", 2)),
        automatic=KARRAS,
        schedules=_SIGMA_SCHEDULES,
    ),
    "DPM++ 2M SDE": SamplerSpec(
        "DPMSolverMultistepScheduler",
        (("algorithm_type", "sde-dpmsolver++"), ("solver_order", 2)),
        automatic=EXPONENTIAL,
        schedules=_SIGMA_SCHEDULES,
    ),
    # diffusers' table maps DPM++ SDE to its single-step DPM-Solver++ (no torchsde needed).
    "DPM++ SDE": SamplerSpec(
        "DPMSolverSinglestepScheduler",
        (("algorithm_type", "dpmsolver++"), ("solver_order", 2), ("lower_order_final", True)),
        automatic=KARRAS,
        schedules=frozenset({KARRAS, EXPONENTIAL}),
    ),
    "DDIM": SamplerSpec("DDIMScheduler", schedules=frozenset({SGM_UNIFORM})),
    "PLMS": SamplerSpec("PNDMScheduler", (("skip_prk_steps", True),), schedules=frozenset({SGM_UNIFORM})),
    "UniPC": SamplerSpec("UniPCMultistepScheduler", schedules=_SIGMA_SCHEDULES),
    "LCM": SamplerSpec("LCMScheduler", schedules=frozenset({SGM_UNIFORM})),
}

# Settings a schedule type controls; all are reset so a model config that sets one cannot leak through.
_SCHEDULE_KEYS = ("use_karras_sigmas", "use_exponential_sigmas", "use_beta_sigmas")


def resolve_schedule(sampler: str, schedule_type: str) -> tuple[str, str | None]:
    """The schedule type that will actually run, and a note for the user when it is not the one asked."""
    spec = _spec(sampler)
    if schedule_type not in SCHEDULE_TYPES:
        raise InvalidRequest(
            f"Unknown schedule type {schedule_type!r}.", f"Choose one of: {', '.join(SCHEDULE_TYPES)}."
        )
    if schedule_type == AUTOMATIC:
        return (spec.automatic or AUTOMATIC), None
    if schedule_type in spec.schedules:
        return schedule_type, None
    note = (
        f"The {sampler} sampler cannot use the {schedule_type} schedule; "
        f"it ran with its own schedule (Automatic) instead."
    )
    return AUTOMATIC, note


def make_scheduler(sampler: str, schedule_type: str, scheduler_config: dict[str, Any]) -> SchedulerMixin:
    """A fresh diffusers scheduler for an A1111 sampler name and schedule type.

    The model's betas, prediction type and timestep offsets come from ``scheduler_config``.
    """
    import diffusers

    spec = _spec(sampler)
    schedule, _ = resolve_schedule(sampler, schedule_type)
    cls = getattr(diffusers, spec.scheduler)
    accepted = set(inspect.signature(cls.__init__).parameters)
    config = {k: v for k, v in scheduler_config.items() if k in accepted and not k.startswith("_")}
    config.update(spec.options)
    for key in _SCHEDULE_KEYS:
        if key in accepted:
            config[key] = False
    if schedule == KARRAS:
        config["use_karras_sigmas"] = True
    elif schedule == EXPONENTIAL:
        config["use_exponential_sigmas"] = True
    elif schedule == SGM_UNIFORM:
        config["timestep_spacing"] = "trailing"
    return cls(**{k: v for k, v in config.items() if k in accepted})


def _spec(sampler: str) -> SamplerSpec:
    spec = SAMPLER_SPECS.get(sampler)
    if spec is None:
        raise InvalidRequest(f"Unknown sampler {sampler!r}.", f"Choose one of: {', '.join(SAMPLERS)}.")
    return spec


def partway_timesteps(scheduler: Any, steps: int, steps_run: int, device: Any) -> Any:
    """The schedule of ``steps`` with only its last ``steps_run`` steps (img2img's denoising strength)."""
    scheduler.set_timesteps(steps, device=device)
    begin = (steps - steps_run) * int(getattr(scheduler, "order", 1))
    if hasattr(scheduler, "set_begin_index"):
        scheduler.set_begin_index(begin)
    return scheduler.timesteps[begin:]
