"""What A1111 does to a payload before it runs it, where the server's state is needed: the `infotext`
read into the fields the client left out, the server's options (VAE, CLIP skip) under the payload's
own overrides, prompt styles applied, and img2img's pictures brought to the asked size.

A1111's resize modes (``resize_mode``), for the init picture and its mask alike:

- 0 "Just resize": stretched to the size.
- 1 "Crop and resize": scaled to cover the size, the overflow cropped evenly.
- 2 "Resize and fill": scaled to fit inside, the empty bands filled by stretching the picture's edges.
- 3 "Just resize (latent upscale)": A1111 scales the latents instead of the pixels; here it is
  stretched in pixels (mode 0), the closest this engine has.

Transparent areas of the init picture are laid on ``img2img_background_color`` (white unless the
options say otherwise), as A1111 flattens them; a mask of another size than the picture is resized
with it, as there.
"""

from __future__ import annotations

import base64
import io
import re
from typing import Any, TypeVar

from PIL import Image, ImageColor

from sfumato.core.errors import InvalidRequest
from sfumato.server.a1111.schemas import Img2ImgRequest, Txt2ImgRequest
from sfumato.server.catalog import find
from sfumato.server.context import ServerContext
from sfumato.server.submit import as_data_uri, open_client_image

Payload = TypeVar("Payload", bound=Txt2ImgRequest)

# Options a client sets with POST /options that later generations use (the payload's own
# override_settings win over them).
GENERATION_OPTIONS = ("sd_vae", "CLIP_stop_at_last_layers", "img2img_background_color")
DEFAULT_BACKGROUND = "#ffffff"
# A1111's extra-network tags in a prompt: <lora:name:1>, <hypernet:name:1>, <lyco:…>.
EXTRA_NETWORK = re.compile(r"<\w+:[^>]+>")
RESIZE_MODES = {
    0: "just resize",
    1: "crop and resize",
    2: "resize and fill",
    3: "just resize (latent upscale)",
}

# A1111's infotext keys -> the payload fields they fill (only fields the client did not send).
_INFOTEXT_FIELDS: tuple[tuple[str, str, type], ...] = (
    ("Prompt", "prompt", str),
    ("Negative prompt", "negative_prompt", str),
    ("Steps", "steps", int),
    ("Sampler", "sampler_name", str),
    ("Schedule type", "scheduler", str),
    ("CFG scale", "cfg_scale", float),
    ("Seed", "seed", int),
    ("Variation seed", "subseed", int),
    ("Variation seed strength", "subseed_strength", float),
    ("Denoising strength", "denoising_strength", float),
    ("Mask blur", "mask_blur", int),
    ("Hires upscale", "hr_scale", float),
    ("Hires upscaler", "hr_upscaler", str),
    ("Hires steps", "hr_second_pass_steps", int),
    ("Hires sampler", "hr_sampler_name", str),
    ("Hires prompt", "hr_prompt", str),
    ("Hires negative prompt", "hr_negative_prompt", str),
)


def _convert(value: str, kind: type) -> Any:
    try:
        return kind(float(value)) if kind is int else kind(value)
    except (ValueError, OverflowError):
        return None


def _size(value: str) -> tuple[int, int] | None:
    width, x, height = value.partition("x")
    try:
        return (int(width), int(height)) if x else None
    except ValueError:
        return None


def infotext_fields(text: str, given: set[str]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(payload fields, override settings) an infotext fills, leaving out the fields in ``given``."""
    from sfumato.archive.infotext import parse_infotext

    params = parse_infotext(text)
    fields: dict[str, Any] = {}
    for key, field, kind in _INFOTEXT_FIELDS:
        if key in params and field not in given:
            value = _convert(params[key], kind)
            if value is not None:
                fields[field] = value
    size = _size(params.get("Size", "")) or _pair(params.get("Size-1"), params.get("Size-2"))
    if size is not None:
        fields |= {k: v for k, v in zip(("width", "height"), size, strict=True) if k not in given}
    hires = _size(params.get("Hires resize", "")) or _pair(
        params.get("Hires resize-1"), params.get("Hires resize-2")
    )
    if hires is not None:
        fields |= {k: v for k, v in zip(("hr_resize_x", "hr_resize_y"), hires, strict=True) if k not in given}
    if "enable_hr" not in given and ("Hires upscale" in params or hires is not None):
        fields["enable_hr"] = True
    overrides: dict[str, Any] = {}
    clip_skip = _convert(params.get("Clip skip", ""), int)
    if clip_skip is not None:
        overrides["CLIP_stop_at_last_layers"] = clip_skip
    return fields, overrides


def _pair(first: str | None, second: str | None) -> tuple[int, int] | None:
    if first is None or second is None:
        return None
    return _size(f"{first}x{second}")


def server_options(ctx: ServerContext) -> dict[str, Any]:
    """The options set on the server (POST /options) that generations use."""
    return {key: ctx.options[key] for key in GENERATION_OPTIONS if key in ctx.options}


def prepare_payload(ctx: ServerContext, payload: Payload) -> Payload:
    """The payload as A1111 would run it; pictures are decoded here, so call it off the event loop."""
    from sfumato.prompts.styles import apply_styles

    updates: dict[str, Any] = {}
    infotext_overrides: dict[str, Any] = {}
    if payload.infotext:
        fields, infotext_overrides = infotext_fields(payload.infotext, set(payload.model_fields_set))
        updates |= fields
    # The server's options, then the infotext's settings, then the payload's own overrides, as A1111.
    overrides = server_options(ctx) | infotext_overrides | (payload.override_settings or {})
    check_generation_options(ctx, overrides)
    updates["override_settings"] = overrides
    if payload.styles:
        from sfumato.server.a1111.prompt_styles import server_styles

        styles = server_styles(ctx.settings)
        prompt = updates.get("prompt", payload.prompt)
        negative = updates.get("negative_prompt", payload.negative_prompt)
        updates["prompt"], updates["negative_prompt"] = apply_styles(prompt, negative, payload.styles, styles)
        hr_prompt = updates.get("hr_prompt", payload.hr_prompt)
        hr_negative = updates.get("hr_negative_prompt", payload.hr_negative_prompt)
        if hr_prompt or hr_negative:
            hr = apply_styles(hr_prompt, hr_negative, payload.styles, styles)
            updates["hr_prompt"] = hr[0] if hr_prompt else hr_prompt
            updates["hr_negative_prompt"] = hr[1] if hr_negative else hr_negative
    if payload.disable_extra_networks:
        for field in ("prompt", "negative_prompt", "hr_prompt", "hr_negative_prompt"):
            updates[field] = EXTRA_NETWORK.sub("", updates.get(field, getattr(payload, field)))
    if not payload.override_settings_restore_afterwards and payload.override_settings:
        keep_overrides(ctx, payload.override_settings)
    prepared = payload.model_copy(update=updates)
    if isinstance(prepared, Img2ImgRequest):
        prepared = prepared.model_copy(update=_pictures(prepared, overrides))
    return prepared


def keep_overrides(ctx: ServerContext, overrides: dict[str, Any]) -> None:
    """override_settings_restore_afterwards: false — the overrides stay as the server's options."""
    checkpoint = overrides.get("sd_model_checkpoint")
    if isinstance(checkpoint, str) and checkpoint:
        ctx.select_model(checkpoint)
    kept = {key: overrides[key] for key in GENERATION_OPTIONS if key in overrides}
    ctx.options.update(kept)


def check_generation_options(ctx: ServerContext, overrides: dict[str, Any]) -> None:
    vae = overrides.get("sd_vae")
    if vae is not None and not isinstance(vae, str):
        raise InvalidRequest(
            "sd_vae must be a VAE's name (a string).", "Send 'Automatic' for the model's own."
        )
    if isinstance(vae, str) and vae and vae not in ("Automatic", "None"):
        find(ctx.catalog, vae, "vae")
    skip = overrides.get("CLIP_stop_at_last_layers")
    if skip is not None and (isinstance(skip, bool) or not isinstance(skip, int) or not 1 <= skip <= 12):
        raise InvalidRequest(
            f"CLIP_stop_at_last_layers must be a whole number from 1 to 12, not {skip!r}.",
            "1 uses the text encoder's last layer (no skip); 2 is what anime models expect.",
        )
    background(overrides)


def background(overrides: dict[str, Any]) -> tuple[int, int, int]:
    color = overrides.get("img2img_background_color", DEFAULT_BACKGROUND)
    try:
        rgb = ImageColor.getrgb(str(color))
    except ValueError:
        raise InvalidRequest(
            f"img2img_background_color {color!r} is not a colour.", "Send it as #rrggbb, e.g. #ffffff."
        ) from None
    return rgb[0], rgb[1], rgb[2]


def flatten(image: Image.Image, color: tuple[int, int, int]) -> Image.Image:
    """Transparent areas laid on ``color``, as A1111 does before img2img."""
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        flat = Image.new("RGBA", rgba.size, (*color, 255))
        flat.alpha_composite(rgba)
        return flat.convert("RGB")
    return image.convert("RGB")


def binary_mask(mask: Image.Image, round_mask: bool) -> Image.Image:
    """A1111's mask: the alpha channel where the mask is transparent somewhere, else its grey; with
    ``round_mask`` thresholded to black and white."""
    if mask.mode in ("RGBA", "LA") and mask.getchannel("A").getextrema() != (255, 255):
        grey = mask.getchannel("A")
    else:
        grey = mask.convert("L")
    return grey.point([255 if v > 128 else 0 for v in range(256)]) if round_mask else grey


def resize_picture(mode: int, image: Image.Image, width: int, height: int) -> Image.Image:
    """A1111's ``resize_mode`` (see the module's notes) bringing ``image`` to ``width`` x ``height``."""
    lanczos = Image.Resampling.LANCZOS
    if mode not in (1, 2):
        return image.resize((width, height), lanczos)
    ratio, source_ratio = width / height, image.width / image.height
    cover = (ratio > source_ratio) if mode == 1 else (ratio < source_ratio)
    if cover:
        scaled_w, scaled_h = width, max(1, image.height * width // image.width)
    else:
        scaled_w, scaled_h = max(1, image.width * height // image.height), height
    scaled = image.resize((scaled_w, scaled_h), lanczos)
    canvas = Image.new(image.mode, (width, height))
    left, top = width // 2 - scaled_w // 2, height // 2 - scaled_h // 2
    canvas.paste(scaled, (left, top))
    if mode == 2:
        if top > 0:  # bands above and below: the first and last rows, stretched
            canvas.paste(scaled.resize((width, top), lanczos, box=(0, 0, width, 1)), (0, 0))
            bottom = height - (top + scaled_h)
            canvas.paste(
                scaled.resize((width, bottom), lanczos, box=(0, scaled_h - 1, width, scaled_h)),
                (0, top + scaled_h),
            )
        elif left > 0:  # bands left and right: the first and last columns, stretched
            canvas.paste(scaled.resize((left, height), lanczos, box=(0, 0, 1, height)), (0, 0))
            right = width - (left + scaled_w)
            canvas.paste(
                scaled.resize((right, height), lanczos, box=(scaled_w - 1, 0, scaled_w, height)),
                (left + scaled_w, 0),
            )
    return canvas


def _data_uri(image: Image.Image) -> str:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def _pictures(payload: Img2ImgRequest, overrides: dict[str, Any]) -> dict[str, Any]:
    from sfumato.server.a1111.scripts import image_script_fields

    if not payload.init_images:
        return {}
    if len(payload.init_images) > 1:
        raise InvalidRequest(
            f"{len(payload.init_images)} init images were sent; this server renders from one at a time.",
            "Send one picture in init_images and make one request per picture.",
        )
    if payload.resize_mode not in RESIZE_MODES:
        raise InvalidRequest(
            f"resize_mode must be 0–3, not {payload.resize_mode}.",
            "0 just resize, 1 crop and resize, 2 resize and fill, 3 just resize (latent upscale).",
        )
    init = flatten(
        open_client_image(as_data_uri(payload.init_images[0]), "init image"), background(overrides)
    )
    mask = None
    if payload.mask:
        mask = binary_mask(open_client_image(as_data_uri(payload.mask), "mask"), payload.mask_round)
    scripted = bool(payload.script_name) and image_script_fields(
        payload.script_name or "", payload.script_args
    )
    width, height = payload.width - payload.width % 8, payload.height - payload.height % 8
    if not scripted and min(width, height) > 0:
        if mask is not None and payload.inpaint_full_res:
            # "Only masked" crops the picture where the mask is: the mask must lie on the picture as sent.
            if mask.size != init.size:
                mask = mask.resize(init.size, Image.Resampling.LANCZOS)
        else:
            init = resize_picture(payload.resize_mode, init, width, height)
            if mask is not None:
                mask = resize_picture(payload.resize_mode, mask, width, height)
    elif mask is not None and mask.size != init.size:
        mask = mask.resize(init.size, Image.Resampling.LANCZOS)
    updates: dict[str, Any] = {"init_images": [_data_uri(init)]}
    if mask is not None:
        updates["mask"] = _data_uri(mask)
    return updates
