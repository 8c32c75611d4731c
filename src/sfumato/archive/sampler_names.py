"""Other tools' sampler and schedule names, in A1111's words (what the request takes).

ComfyUI, Fooocus and SwarmUI use k-diffusion's function names (``dpmpp_2m``); NovelAI and InvokeAI 2
the same with a ``k_`` prefix. ComfyUI's ``*_gpu`` samplers draw their SDE noise on the GPU: the same
method, so the A1111 name is the same (the picture differs only in that noise).
"""

from __future__ import annotations

from sfumato.core.request import SAMPLERS, SCHEDULE_TYPES

_SAMPLERS = {
    "euler": "Euler",
    "euler_ancestral": "Euler a",
    "euler_a": "Euler a",
    "heun": "Heun",
    "lms": "LMS",
    "dpm_2": "DPM2",
    "dpm_2_ancestral": "DPM2 a",
    "dpm_2_a": "DPM2 a",
    "dpm_fast": "DPM fast",
    "dpm_adaptive": "DPM adaptive",
    "dpmpp_2s_ancestral": "DPM++ 2S a",
    "dpmpp_2_a": "DPM++ 2S a",  # InvokeAI 2
    "dpmpp_2": "DPM++ 2M",  # InvokeAI 2
    "dpmpp_2m": "DPM++ 2M",
    "dpmpp_sde": "DPM++ SDE",
    "dpmpp_2m_sde": "DPM++ 2M SDE",
    "dpmpp_2m_sde_heun": "DPM++ 2M SDE Heun",
    "dpmpp_3m_sde": "DPM++ 3M SDE",
    "restart": "Restart",
    "ddim": "DDIM",
    "ddim_v3": "DDIM",  # NovelAI
    "plms": "PLMS",
    "pndm": "PLMS",
    "uni_pc": "UniPC",
    "uni_pc_bh2": "UniPC",
    "lcm": "LCM",
}

_SCHEDULES = {
    "normal": "Normal",
    "native": "Automatic",  # NovelAI: the sampler's own
    "karras": "Karras",
    "exponential": "Exponential",
    "polyexponential": "Polyexponential",
    "sgm_uniform": "SGM Uniform",
    "simple": "Simple",
    "ddim_uniform": "DDIM",
    "beta": "Beta",
    "kl_optimal": "KL Optimal",
    "align_your_steps": "Align Your Steps",
}


def to_a1111_sampler(name: str) -> str:
    """``dpmpp_2m_sde_gpu`` -> ``DPM++ 2M SDE``; a name we do not know is kept, for validation to report."""
    if name in SAMPLERS:
        return name
    key = name.strip().lower().removeprefix("k_").removesuffix("_gpu")
    return _SAMPLERS.get(key, name)


def to_a1111_schedule(name: str | None) -> str | None:
    """The A1111 schedule type, or None when this build has no such schedule type (the sampler's own
    then runs: "Automatic")."""
    if name is None:
        return None
    if name in SCHEDULE_TYPES:
        return name
    schedule = _SCHEDULES.get(name.strip().lower())
    return schedule if schedule in SCHEDULE_TYPES else None
