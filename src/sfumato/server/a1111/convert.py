"""A1111 payloads to Sfumato's request, and Sfumato's results back to A1111's `info`."""

from __future__ import annotations

import json
import time
from typing import Any

from pydantic import ValidationError

from sfumato import __version__
from sfumato.core.errors import InvalidRequest
from sfumato.core.request import (
    HIRES_UPSCALERS,
    SAMPLERS,
    GenerationRequest,
    MaskedContent,
    describe_validation_error,
    split_legacy_sampler,
)
from sfumato.jobs.model import Job
from sfumato.server.a1111.alwayson import IMG2IMG_ALWAYSON, TXT2IMG_ALWAYSON, soft_inpainting, tiled_diffusion
from sfumato.server.a1111.schemas import Img2ImgRequest, Txt2ImgRequest
from sfumato.server.a1111.scripts import IMG2IMG_SCRIPTS, TXT2IMG_SCRIPTS, image_script_fields, unknown_script
from sfumato.server.submit import as_data_uri

# A1111's scheduler names (and labels) -> Sfumato's schedule types.
SCHEDULERS: dict[str, str] = {
    "automatic": "Automatic",
    "uniform": "Uniform",
    "karras": "Karras",
    "exponential": "Exponential",
    "polyexponential": "Polyexponential",
    "sgm_uniform": "SGM Uniform",
    "kl_optimal": "KL Optimal",
    "align_your_steps": "Align Your Steps",
    "simple": "Simple",
    "normal": "Normal",
    "ddim": "DDIM",
    "beta": "Beta",
}
# A1111's rho for the schedules that have one, and its other names, as /schedulers lists them.
SCHEDULER_RHO = {"karras": 7.0, "polyexponential": 1.0}
SCHEDULER_ALIASES = {"sgm_uniform": ["SGMUniform"], "align_your_steps": ["AYS"]}
# A1111's k-diffusion style aliases of its sampler names (it matches names and aliases without case).
SAMPLER_ALIASES: dict[str, list[str]] = {
    "Euler a": ["k_euler_a", "k_euler_ancestral"],
    "Euler": ["k_euler"],
    "LMS": ["k_lms"],
    "Heun": ["k_heun"],
    "DPM2": ["k_dpm_2"],
    "DPM2 a": ["k_dpm_2_a"],
    "DPM++ 2S a": ["k_dpmpp_2s_a"],
    "DPM++ 2M": ["k_dpmpp_2m"],
    "DPM++ SDE": ["k_dpmpp_sde"],
    "DPM++ 2M SDE": ["k_dpmpp_2m_sde"],
    "DPM++ 2M SDE Heun": ["k_dpmpp_2m_sde_heun"],
    "DPM++ 3M SDE": ["k_dpmpp_3m_sde"],
    "DPM fast": ["k_dpm_fast"],
    "DPM adaptive": ["k_dpm_ad"],
    "Restart": ["restart"],
    "DDIM": ["ddim"],
    "DDIM CFG++": ["ddim_cfgpp"],
    "PLMS": ["plms"],
    "UniPC": ["unipc"],
    "LCM": ["lcm"],
}
_SAMPLER_KEYS = {name.lower(): name for name in SAMPLERS} | {
    alias.lower(): name for name, aliases in SAMPLER_ALIASES.items() for alias in aliases
}
SCHEDULER_LABELS = {label.lower(): label for label in SCHEDULERS.values()}
# A1111's "Masked content" radio: fill, original, latent noise, latent nothing.
INPAINTING_FILL = (
    MaskedContent.fill,
    MaskedContent.original,
    MaskedContent.latent_noise,
    MaskedContent.latent_nothing,
)


def _schedule(name: str | None) -> str | None:
    if name is None or name == "":
        return None
    key = name.strip().lower()
    if key in SCHEDULERS:
        return SCHEDULERS[key]
    if key in SCHEDULER_LABELS:
        return SCHEDULER_LABELS[key]
    raise InvalidRequest(f"Unknown scheduler {name!r}.", f"Choose one of: {', '.join(SCHEDULERS)}.")


def _sampler(name: str) -> tuple[str, str | None]:
    sampler, schedule = split_legacy_sampler(name.strip())
    sampler = _SAMPLER_KEYS.get(sampler.lower(), sampler)
    if sampler not in SAMPLERS:
        raise InvalidRequest(f"Unknown sampler {name!r}.", f"Choose one of: {', '.join(SAMPLERS)}.")
    return sampler, schedule


def _unsupported(payload: Txt2ImgRequest, handled: tuple[str, ...] = ()) -> None:
    _unsupported_settings(payload)
    refiner = (payload.refiner_checkpoint or "").strip()
    if refiner and refiner.lower() != "none":
        raise InvalidRequest(
            f"refiner_checkpoint {refiner!r}: switching to a refiner model part-way is not supported yet.",
            "Leave refiner_checkpoint out (refiner_switch_at is then unused), or run the refiner as an "
            "img2img pass on the picture.",
        )
    unknown = [
        name
        for name, value in payload.alwayson_scripts.items()
        if value not in (None, {}, []) and name.strip().lower() not in handled
    ]
    if unknown:
        raise InvalidRequest(
            f"The always-on scripts {', '.join(map(repr, unknown))} are not available here.",
            "Leave alwayson_scripts empty.",
        )


# Samplers whose noise A1111's eta and s_noise scale (its ancestral and SDE samplers).
_NOISY_SAMPLERS = frozenset(
    {"Euler a", "DPM2 a", "DPM++ 2S a", "DPM++ SDE", "DPM++ 2M SDE", "DPM++ 2M SDE Heun", "DPM++ 3M SDE"}
)
_DDIM_SAMPLERS = frozenset({"DDIM", "DDIM CFG++"})
# Samplers A1111 adds churn to (s_churn); here Euler's scheduler does it.
_CHURN_SAMPLERS = frozenset({"Euler", "Heun", "DPM2"})


def _refuse(field: str, value: Any, why: str, what_to_do: str) -> InvalidRequest:
    return InvalidRequest(f"{field} {value!r}: {why}", what_to_do)


def _sampler_settings(payload: Txt2ImgRequest, sampler: str) -> dict[str, Any]:
    """eta and the s_* settings, honoured where this engine's scheduler does what A1111's sampler does,
    refused where A1111 would change the picture and this engine cannot, ignored where A1111 ignores them."""
    fields: dict[str, Any] = {}
    if sampler in _DDIM_SAMPLERS and payload.eta is not None:
        fields["eta"] = payload.eta
    if sampler in _NOISY_SAMPLERS:
        for name, value in (("eta", payload.eta), ("s_noise", payload.s_noise)):
            if value is not None and value != 1.0:
                raise _refuse(
                    name,
                    value,
                    f"the {sampler} sampler here always adds its full noise (1).",
                    f"Leave {name} out or send 1.",
                )
    if payload.s_churn:
        if sampler != "Euler" and sampler in _CHURN_SAMPLERS:
            raise _refuse(
                "s_churn",
                payload.s_churn,
                f"sigma churn is done by the Euler sampler here, not {sampler}.",
                "Use Euler, or send s_churn: 0.",
            )
        if sampler == "Euler":
            fields |= {
                "churn": payload.s_churn,
                "churn_min_sigma": payload.s_tmin or 0.0,
                "churn_max_sigma": payload.s_tmax or 0.0,
                "churn_noise": 1.0 if payload.s_noise is None else payload.s_noise,
            }
    return fields


def _unsupported_settings(payload: Txt2ImgRequest) -> None:
    if payload.firstpass_image:
        raise InvalidRequest(
            "firstpass_image: a hires second pass over a picture you send is not supported here.",
            "Send the picture to img2img at the larger size instead.",
        )
    if payload.s_min_uncond:
        raise _refuse(
            "s_min_uncond",
            payload.s_min_uncond,
            "skipping the negative prompt on early steps is not supported yet.",
            "Leave s_min_uncond out or send 0.",
        )
    if payload.seed_resize_from_w > 0 or payload.seed_resize_from_h > 0:
        size = f"{payload.seed_resize_from_w}x{payload.seed_resize_from_h}"
        raise _refuse(
            "seed_resize_from",
            size,
            "making the noise of another size is not supported yet.",
            "Send seed_resize_from_w and seed_resize_from_h as 0 (or -1).",
        )


def _side(value: int) -> int:
    return value - value % 8  # A1111 accepts any size and works on the multiple of 8 below it


def _base_fields(payload: Txt2ImgRequest) -> dict[str, Any]:
    sampler, legacy_schedule = _sampler(payload.sampler_name or payload.sampler_index)
    asked = _schedule(payload.scheduler)
    # "DPM++ 2M Karras" with scheduler "automatic" (what clients send by default) means Karras.
    schedule = legacy_schedule if asked in (None, "Automatic") and legacy_schedule else asked or "Automatic"
    fields: dict[str, Any] = {
        "prompt": payload.prompt,
        "negative_prompt": payload.negative_prompt,
        "width": _side(payload.width),
        "height": _side(payload.height),
        "steps": payload.steps,
        "cfg_scale": payload.cfg_scale,
        "sampler": sampler,
        "schedule_type": schedule,
        "seed": payload.seed,
        "batch_size": payload.batch_size,
        "batch_count": payload.n_iter,
        "tiling": bool(payload.tiling),
    }
    fields |= _sampler_settings(payload, sampler)
    if payload.subseed_strength > 0:
        fields["variation_seed"] = payload.subseed
        fields["variation_strength"] = payload.subseed_strength
    overrides = payload.override_settings or {}
    checkpoint = overrides.get("sd_model_checkpoint")
    if isinstance(checkpoint, str) and checkpoint:
        fields["model"] = checkpoint
    vae = overrides.get("sd_vae")
    if isinstance(vae, str) and vae and vae not in ("Automatic", "None"):
        fields["vae"] = vae
    clip_skip = overrides.get("CLIP_stop_at_last_layers")
    if isinstance(clip_skip, int) and not isinstance(clip_skip, bool):
        fields["clip_skip"] = clip_skip
    if payload.restore_faces:
        fields["postprocess"] = [_restore_faces_step(overrides)]
    return fields


def _restore_faces_step(overrides: dict[str, Any]) -> dict[str, Any]:
    """A1111's restore_faces, with its face_restoration_model and code_former_weight options."""
    step: dict[str, Any] = {"kind": "restore_faces"}
    model = overrides.get("face_restoration_model")
    if isinstance(model, str) and model:
        step["model"] = model
    weight = overrides.get("code_former_weight")
    if isinstance(weight, int | float) and not isinstance(weight, bool):
        step["codeformer_weight"] = weight
    return step


def _build(fields: dict[str, Any]) -> GenerationRequest:
    try:
        return GenerationRequest.model_validate(fields)
    except ValidationError as error:
        raise InvalidRequest(f"Invalid request: {describe_validation_error(error)}.") from None


# A1111's hires sampler choice that means "the first pass's".
_SAME_SAMPLER = ("", "use same sampler")


def _hires(payload: Txt2ImgRequest) -> dict[str, Any]:
    upscaler = payload.hr_upscaler or "Latent"
    # A1111's "None" upscaler resizes the picture with Pillow's Lanczos.
    known = {name.lower(): name for name in HIRES_UPSCALERS} | {"none": "Lanczos"}
    # other names are upscaler models, checked against the server's list when the request is submitted
    hires: dict[str, Any] = {
        "scale": payload.hr_scale,
        "resize_x": payload.hr_resize_x,
        "resize_y": payload.hr_resize_y,
        "upscaler": known.get(upscaler.strip().lower(), upscaler.strip()),
        "steps": payload.hr_second_pass_steps,
        "denoising_strength": 0.7 if payload.denoising_strength is None else payload.denoising_strength,
        "prompt": payload.hr_prompt,
        "negative_prompt": payload.hr_negative_prompt,
    }
    if payload.hr_sampler_name and payload.hr_sampler_name.strip().lower() not in _SAME_SAMPLER:
        hires["sampler"] = _sampler(payload.hr_sampler_name)[0]
    # Accepted only where they mean "as the first pass", so no field is silently dropped.
    for field, same in (
        ("hr_checkpoint_name", "use same checkpoint"),
        ("hr_scheduler", "use same scheduler"),
    ):
        value = getattr(payload, field)
        if value and value.strip().lower() != same:
            raise InvalidRequest(
                f"{field} {value!r}: a second pass with its own checkpoint or schedule is not supported yet.",
                f"Leave {field} out or send {same.capitalize()!r}.",
            )
    return hires


def txt2img_request(payload: Txt2ImgRequest) -> GenerationRequest:
    _unsupported(payload, TXT2IMG_ALWAYSON)
    if payload.script_name:
        raise unknown_script(payload.script_name, TXT2IMG_SCRIPTS)
    fields = _base_fields(payload)
    fields |= tiled_diffusion(payload.alwayson_scripts, init_size=None) or {}
    soft_inpainting(payload.alwayson_scripts)  # checked; without a mask it changes nothing
    if payload.enable_hr:
        fields["hires"] = _hires(payload)
    return _build(fields)


def img2img_request(payload: Img2ImgRequest) -> GenerationRequest:
    _unsupported(payload, IMG2IMG_ALWAYSON)
    if payload.enable_hr:
        raise InvalidRequest("Hires fix (enable_hr) is for txt2img.", "Send enable_hr: false to img2img.")
    if not payload.init_images:
        raise InvalidRequest("img2img needs an init image.", "Send it base64-encoded in init_images.")
    if not 0 <= payload.inpainting_fill <= 3:
        raise InvalidRequest(
            f"inpainting_fill must be 0–3, not {payload.inpainting_fill}.",
            "0 fill, 1 original, 2 latent noise, 3 latent nothing.",
        )
    if payload.initial_noise_multiplier not in (None, 1.0):
        raise _refuse(
            "initial_noise_multiplier",
            payload.initial_noise_multiplier,
            "scaling img2img's starting noise is not supported yet.",
            "Leave it out or send 1.",
        )
    if payload.latent_mask:
        raise InvalidRequest(
            "latent_mask: a second mask for the latent blend is not supported.",
            "Send the mask in mask alone.",
        )
    if payload.mask_blur is None and payload.mask_blur_x != payload.mask_blur_y:
        raise InvalidRequest(
            f"mask_blur_x {payload.mask_blur_x} and mask_blur_y {payload.mask_blur_y} differ: the mask is "
            "blurred by one amount both ways here.",
            "Send mask_blur, or the same value in both.",
        )
    fields = _base_fields(payload)
    fields["init_image"] = as_data_uri(payload.init_images[0])
    fields["denoising_strength"] = 0.75 if payload.denoising_strength is None else payload.denoising_strength
    if payload.script_name:
        script = image_script_fields(payload.script_name, payload.script_args)
        if script is None:
            raise unknown_script(payload.script_name, IMG2IMG_SCRIPTS)
        # The script grows or enlarges the picture: its size decides, not the payload's width/height.
        del fields["width"], fields["height"]
        fields |= script
    if payload.mask:
        fields |= {
            "mask": as_data_uri(payload.mask),
            "mask_blur": payload.mask_blur if payload.mask_blur is not None else payload.mask_blur_x,
            "mask_invert": bool(payload.inpainting_mask_invert),
            "inpaint_only_masked": payload.inpaint_full_res,
            "inpaint_only_masked_padding": payload.inpaint_full_res_padding,
            "masked_content": INPAINTING_FILL[payload.inpainting_fill],
        }
        # A1111 applies soft inpainting only where there is a mask to soften.
        fields["soft_inpainting"] = soft_inpainting(payload.alwayson_scripts)
    init = fields["init_image"]
    tiling = tiled_diffusion(payload.alwayson_scripts, init_size=lambda: _size_of(init))
    if tiling is not None and payload.script_name:
        raise InvalidRequest(
            f"Tiled diffusion together with the script {payload.script_name!r} is not supported.",
            "Send one of them.",
        )
    fields |= tiling or {}
    return _build(fields)


def _size_of(image: str) -> tuple[int, int]:
    from sfumato.core.images import load_image

    return load_image(image, "init image").size


def echo_parameters(payload: Txt2ImgRequest) -> dict[str, Any]:
    data = payload.model_dump(mode="json")
    if isinstance(payload, Img2ImgRequest) and not payload.include_init_images:
        data["init_images"] = None
        data["mask"] = None
    return data


def info_json(job: Job, payload: Txt2ImgRequest) -> str:
    """A1111's `info`: what the run used, with every picture's seed and infotext."""
    request = job.request
    recipes = [image.recipe or request for image in job.images]
    first = recipes[0] if recipes else request
    model_name = next((i.model_name for i in job.images if i.model_name), request.model)
    model_hash = next((i.model_hash for i in job.images if i.model_hash), None)
    started = job.started_at or job.created_at
    info: dict[str, Any] = {
        "prompt": request.prompt,
        "all_prompts": [r.prompt for r in recipes] or [request.prompt],
        "negative_prompt": request.negative_prompt,
        "all_negative_prompts": [r.negative_prompt for r in recipes] or [request.negative_prompt],
        "seed": first.seed,
        "all_seeds": [r.seed for r in recipes] or [request.seed],
        "subseed": first.variation_seed,
        "all_subseeds": [r.variation_seed for r in recipes] or [request.variation_seed],
        "subseed_strength": request.variation_strength,
        "width": first.width if first.width is not None else request.width,
        "height": first.height if first.height is not None else request.height,
        "sampler_name": request.sampler,
        "cfg_scale": request.cfg_scale,
        "steps": request.steps,
        "batch_size": request.batch_size,
        "restore_faces": bool(payload.restore_faces),
        "face_restoration_model": next(
            (step.model for step in request.postprocess if step.kind == "restore_faces"), None
        ),
        "sd_model_name": model_name,
        "sd_model_hash": model_hash,
        "sd_vae_name": request.vae,
        "sd_vae_hash": None,
        "seed_resize_from_w": payload.seed_resize_from_w,
        "seed_resize_from_h": payload.seed_resize_from_h,
        "denoising_strength": request.hires.denoising_strength
        if request.hires is not None
        else payload.denoising_strength,
        "extra_generation_params": {}
        if request.schedule_type == "Automatic"
        else {"Schedule type": request.schedule_type},
        "index_of_first_image": 0,
        "infotexts": [image.infotext for image in job.images],
        "styles": payload.styles or [],
        "job_timestamp": time.strftime("%Y%m%d%H%M%S", time.localtime(started)),
        "clip_skip": request.clip_skip,
        "is_using_inpainting_conditioning": False,
        "version": f"sfumato {__version__}",
    }
    if job.error:
        info["error"] = job.error
    return json.dumps(info)
