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

A1111's other schedule types:

- Uniform and Normal: timesteps evenly spaced from the last to the first (``"linspace"``); A1111's
  two are the same schedule too.
- Simple: every (1000 / steps)-th of the model's own sigmas from the top (``"trailing"``), which is
  also what SGM Uniform runs here.
- DDIM: A1111's DDIM stride, from timestep 1 up (``"leading"`` with ``steps_offset=1``).
- Polyexponential: at A1111's default rho of 1 it is the exponential schedule, and runs as such.
- Beta: ``use_beta_sigmas`` (alpha = beta = 0.6, as A1111).
- KL Optimal: sigma = tan of evenly spaced angles from atan(sigma max) to atan(sigma min).
- Align Your Steps: NVIDIA's 10-step timesteps of diffusers' ``AysSchedules`` (SD or SDXL),
  interpolated in log sigma for other step counts, as A1111 does.

The last two are handed to the scheduler as a list of its own (whole) timesteps, which only the
samplers whose scheduler takes one can use (Euler, Heun, the DPM++ family, Restart).

A1111 samplers with no faithful diffusers counterpart run on the closest scheduler, and the
picture's notes say so: DPM++ 2S a on the single-step SDE DPM-Solver++ (order 2), DPM fast on the
single-step DPM-Solver++ of order 3, DPM adaptive on the multistep DPM-Solver++ of order 3 (for the
asked number of steps; no adaptive step size), Restart on Heun (without its restart noise), and DDIM
CFG++ on DDIM with ordinary guidance.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sfumato.core.errors import InvalidRequest
from sfumato.core.request import SAMPLERS, SCHEDULE_TYPES, GenerationRequest

if TYPE_CHECKING:
    from diffusers import SchedulerMixin

KARRAS, EXPONENTIAL, SGM_UNIFORM, AUTOMATIC = "Karras", "Exponential", "SGM Uniform", "Automatic"
UNIFORM, POLYEXPONENTIAL, KL_OPTIMAL, AYS = "Uniform", "Polyexponential", "KL Optimal", "Align Your Steps"
SIMPLE, NORMAL, DDIM_SCHEDULE, BETA = "Simple", "Normal", "DDIM", "Beta"
# Schedule types that are a timestep spacing of the model's own schedule.
_SPACINGS = {
    SGM_UNIFORM: "trailing",
    SIMPLE: "trailing",
    UNIFORM: "linspace",
    NORMAL: "linspace",
    DDIM_SCHEDULE: "leading",
}
# Schedule types that are a sigma setting of the scheduler.
_SIGMA_OPTIONS = {
    KARRAS: "use_karras_sigmas",
    EXPONENTIAL: "use_exponential_sigmas",
    POLYEXPONENTIAL: "use_exponential_sigmas",
    BETA: "use_beta_sigmas",
}
# Schedule types given to the scheduler as a list of its own timesteps or sigmas.
_CUSTOM = frozenset({KL_OPTIMAL, AYS})


@dataclass(frozen=True)
class SamplerSpec:
    scheduler: str  # diffusers class name
    options: tuple[tuple[str, Any], ...] = ()
    automatic: str | None = None  # the schedule type A1111's "Automatic" means for this sampler
    schedules: frozenset[str] = frozenset()  # schedule types the scheduler can do besides its own
    note: str | None = None  # how it differs from A1111's sampler of that name, when it does


_SIGMA_SCHEDULES = frozenset({KARRAS, EXPONENTIAL, POLYEXPONENTIAL, BETA, *_SPACINGS, *_CUSTOM})
_SPACING_ONLY = frozenset(_SPACINGS)

SAMPLER_SPECS: dict[str, SamplerSpec] = {
    "Euler": SamplerSpec("EulerDiscreteScheduler", schedules=_SIGMA_SCHEDULES),
    "Euler a": SamplerSpec("EulerAncestralDiscreteScheduler", schedules=_SPACING_ONLY),
    "Heun": SamplerSpec("HeunDiscreteScheduler", schedules=_SIGMA_SCHEDULES),
    "LMS": SamplerSpec("LMSDiscreteScheduler", schedules=_SIGMA_SCHEDULES - _CUSTOM),
    "DPM2": SamplerSpec("KDPM2DiscreteScheduler", automatic=KARRAS, schedules=_SIGMA_SCHEDULES - _CUSTOM),
    "DPM2 a": SamplerSpec(
        "KDPM2AncestralDiscreteScheduler", automatic=KARRAS, schedules=_SIGMA_SCHEDULES - _CUSTOM
    ),
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
        schedules=_SIGMA_SCHEDULES - _SPACING_ONLY,
    ),
    "DDIM": SamplerSpec("DDIMScheduler", schedules=_SPACING_ONLY),
    "PLMS": SamplerSpec("PNDMScheduler", (("skip_prk_steps", True),), schedules=_SPACING_ONLY),
    "UniPC": SamplerSpec("UniPCMultistepScheduler", schedules=_SIGMA_SCHEDULES - _CUSTOM),
    "LCM": SamplerSpec("LCMScheduler", schedules=frozenset({SGM_UNIFORM, SIMPLE})),
    "DPM++ 2S a": SamplerSpec(
        "DPMSolverSinglestepScheduler",
        (("algorithm_type", "sde-dpmsolver++"), ("solver_order", 2), ("lower_order_final", True)),
        schedules=_SIGMA_SCHEDULES - _SPACING_ONLY,
        note="DPM++ 2S a ran as the single-step SDE DPM-Solver++ of order 2, the closest diffusers has.",
    ),
    "DPM++ 2M SDE Heun": SamplerSpec(
        "DPMSolverMultistepScheduler",
        (("algorithm_type", "sde-dpmsolver++"), ("solver_order", 2), ("solver_type", "heun")),
        automatic=EXPONENTIAL,
        schedules=_SIGMA_SCHEDULES,
    ),
    "DPM++ 3M SDE": SamplerSpec(
        "DPMSolverMultistepScheduler",
        (("algorithm_type", "sde-dpmsolver++"), ("solver_order", 3)),
        automatic=EXPONENTIAL,
        schedules=_SIGMA_SCHEDULES,
    ),
    "DPM fast": SamplerSpec(
        "DPMSolverSinglestepScheduler",
        (("algorithm_type", "dpmsolver++"), ("solver_order", 3), ("lower_order_final", True)),
        schedules=_SIGMA_SCHEDULES - _SPACING_ONLY,
        note="DPM fast ran as the single-step DPM-Solver++ of order 3, the closest diffusers has.",
    ),
    "DPM adaptive": SamplerSpec(
        "DPMSolverMultistepScheduler",
        (("algorithm_type", "dpmsolver++"), ("solver_order", 3)),
        schedules=_SIGMA_SCHEDULES,
        note="DPM adaptive ran as the multistep DPM-Solver++ of order 3 for the asked steps "
        "(no adaptive step size), the closest diffusers has.",
    ),
    "Restart": SamplerSpec(
        "HeunDiscreteScheduler",
        automatic=KARRAS,
        schedules=_SIGMA_SCHEDULES,
        note="Restart ran as Heun without its restart noise, the closest diffusers has.",
    ),
    "DDIM CFG++": SamplerSpec(
        "DDIMScheduler",
        schedules=_SPACING_ONLY,
        note="DDIM CFG++ ran as DDIM with ordinary guidance, the closest diffusers has.",
    ),
}

# Settings a schedule type controls; all are reset so a model config that sets one cannot leak through.
_SCHEDULE_KEYS = ("use_karras_sigmas", "use_exponential_sigmas", "use_beta_sigmas")


def resolve_schedule(sampler: str, schedule_type: str) -> tuple[str, str | None]:
    """The schedule type that will actually run, and a note for the user when the sampler or the
    schedule is not exactly the one asked."""
    spec = _spec(sampler)
    if schedule_type not in SCHEDULE_TYPES:
        raise InvalidRequest(
            f"Unknown schedule type {schedule_type!r}.", f"Choose one of: {', '.join(SCHEDULE_TYPES)}."
        )
    if schedule_type == AUTOMATIC:
        return (spec.automatic or AUTOMATIC), spec.note
    if schedule_type in spec.schedules:
        return schedule_type, spec.note
    note = (
        f"The {sampler} sampler cannot use the {schedule_type} schedule; "
        f"it ran with its own schedule (Automatic) instead."
    )
    return AUTOMATIC, f"{spec.note} {note}" if spec.note else note


def make_scheduler(sampler: str, schedule_type: str, scheduler_config: dict[str, Any]) -> SchedulerMixin:
    """A fresh diffusers scheduler for an A1111 sampler name and schedule type.

    The model's betas, prediction type and timestep offsets come from ``scheduler_config``.
    KL Optimal and Align Your Steps also need :func:`partway_timesteps` told the schedule.
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
    if schedule in _SIGMA_OPTIONS:
        config[_SIGMA_OPTIONS[schedule]] = True
    elif schedule in _SPACINGS:
        config["timestep_spacing"] = _SPACINGS[schedule]
        if schedule == DDIM_SCHEDULE:
            config["steps_offset"] = 1
    if schedule == BETA:
        config |= {"beta_a": 0.6, "beta_b": 0.6} if "beta_a" in accepted else {}
    return cls(**{k: v for k, v in config.items() if k in accepted})


def _spec(sampler: str) -> SamplerSpec:
    spec = SAMPLER_SPECS.get(sampler)
    if spec is None:
        raise InvalidRequest(f"Unknown sampler {sampler!r}.", f"Choose one of: {', '.join(SAMPLERS)}.")
    return spec


def _model_sigmas(scheduler: Any) -> Any:
    """The model's sigma at each of its training timesteps (ascending with the timestep)."""
    import numpy as np

    alphas = np.asarray(scheduler.alphas_cumprod, dtype=np.float64)
    return ((1 - alphas) / alphas) ** 0.5


def _sigmas_to_timesteps(sigmas: Any, model_sigmas: Any) -> list[int]:
    """Whole, strictly falling timesteps nearest in log sigma (a scheduler's timesteps are whole)."""
    import numpy as np

    log_model = np.log(model_sigmas)
    continuous = np.interp(np.log(sigmas), log_model, np.arange(len(model_sigmas)))
    timesteps: list[int] = []
    for t in np.rint(continuous).astype(int):
        value = int(t) if not timesteps else min(int(t), timesteps[-1] - 1)
        timesteps.append(value)
    low = len(timesteps) - 1  # a tail pushed below 0 is spread over the lowest timesteps instead
    return [max(value, low - i) for i, value in enumerate(timesteps)]


def custom_sigmas(schedule_type: str, steps: int, model_sigmas: Any, sdxl: bool = False) -> Any:
    """The ``steps`` sigmas (highest first, without the final 0) of KL Optimal or Align Your Steps."""
    import numpy as np

    low, high = float(model_sigmas[0]), float(model_sigmas[-1])
    if schedule_type == KL_OPTIMAL:
        return np.tan(np.linspace(np.arctan(high), np.arctan(low), steps))
    from diffusers.schedulers import AysSchedules

    reference = AysSchedules["StableDiffusionXLTimesteps" if sdxl else "StableDiffusionTimesteps"]
    log_sigmas = np.log(model_sigmas[np.asarray(reference)])
    if steps == len(reference):
        return np.exp(log_sigmas)
    # A1111's log-linear interpolation of the 10-step schedule to other step counts.
    positions = np.linspace(0, 1, len(reference))
    return np.exp(np.interp(np.linspace(0, 1, steps), positions, log_sigmas))


def _set_timesteps(scheduler: Any, steps: int, device: Any, schedule_type: str | None, sdxl: bool) -> None:
    if schedule_type not in _CUSTOM:
        scheduler.set_timesteps(steps, device=device)
        return
    assert schedule_type is not None
    model_sigmas = _model_sigmas(scheduler)
    sigmas = custom_sigmas(schedule_type, steps, model_sigmas, sdxl)
    scheduler.set_timesteps(device=device, timesteps=_sigmas_to_timesteps(sigmas, model_sigmas))


def partway_timesteps(
    scheduler: Any,
    steps: int,
    steps_run: int,
    device: Any,
    *,
    sampler: str | None = None,
    schedule_type: str = AUTOMATIC,
    sdxl: bool = False,
) -> Any:
    """The schedule of ``steps`` with only its last ``steps_run`` steps (img2img's denoising strength).

    ``sampler`` and ``schedule_type`` say which schedule runs when it is one the scheduler is given
    as a list (KL Optimal, Align Your Steps); ``sdxl`` picks that model family's Align Your Steps.
    """
    schedule = resolve_schedule(sampler, schedule_type)[0] if sampler is not None else None
    _set_timesteps(scheduler, steps, device, schedule, sdxl)
    begin = (steps - steps_run) * int(getattr(scheduler, "order", 1))
    if hasattr(scheduler, "set_begin_index"):
        scheduler.set_begin_index(begin)
    return scheduler.timesteps[begin:]


def step_options(request: GenerationRequest) -> dict[str, Any]:
    """The sampler settings a scheduler's step takes (diffusers' names); each scheduler uses its own."""
    options: dict[str, Any] = {}
    if request.eta is not None:
        options["eta"] = request.eta
    if request.churn > 0:
        options |= {
            "s_churn": request.churn,
            "s_tmin": request.churn_min_sigma,
            "s_tmax": request.churn_max_sigma or float("inf"),
            "s_noise": request.churn_noise,
        }
    return options
