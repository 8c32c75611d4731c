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
from sfumato.server.a1111.schemas import Img2ImgRequest, Txt2ImgRequest
from sfumato.server.a1111.scripts import IMG2IMG_SCRIPTS, TXT2IMG_SCRIPTS, image_script_fields, unknown_script
from sfumato.server.submit import as_data_uri

# A1111's scheduler names (and labels) -> Sfumato's schedule types.
SCHEDULERS: dict[str, str] = {
    "automatic": "Automatic",
    "karras": "Karras",
    "exponential": "Exponential",
    "sgm_uniform": "SGM Uniform",
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
    if sampler not in SAMPLERS:
        raise InvalidRequest(f"Unknown sampler {name!r}.", f"Choose one of: {', '.join(SAMPLERS)}.")
    return sampler, schedule


def _unsupported(payload: Txt2ImgRequest) -> None:
    unknown = [name for name, value in payload.alwayson_scripts.items() if value not in (None, {}, [])]
    if unknown:
        raise InvalidRequest(
            f"The always-on scripts {', '.join(map(repr, unknown))} are not available here.",
            "Leave alwayson_scripts empty.",
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
    }
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
    return fields


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
    _unsupported(payload)
    if payload.script_name:
        raise unknown_script(payload.script_name, TXT2IMG_SCRIPTS)
    fields = _base_fields(payload)
    if payload.enable_hr:
        fields["hires"] = _hires(payload)
    return _build(fields)


def img2img_request(payload: Img2ImgRequest) -> GenerationRequest:
    _unsupported(payload)
    if payload.enable_hr:
        raise InvalidRequest("Hires fix (enable_hr) is for txt2img.", "Send enable_hr: false to img2img.")
    if not payload.init_images:
        raise InvalidRequest("img2img needs an init image.", "Send it base64-encoded in init_images.")
    if not 0 <= payload.inpainting_fill <= 3:
        raise InvalidRequest(
            f"inpainting_fill must be 0–3, not {payload.inpainting_fill}.",
            "0 fill, 1 original, 2 latent noise, 3 latent nothing.",
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
    return _build(fields)


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
        "face_restoration_model": None,
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
