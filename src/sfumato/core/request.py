"""The one request: everything that defines a generation, typed and serialisable."""

from __future__ import annotations

import enum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from sfumato.core.errors import InvalidRequest
from sfumato.core.inpainting import MaskFrom, SoftInpainting
from sfumato.core.postprocess import AnatomyGate, PostprocessStep
from sfumato.core.tiling import TiledDiffusion

SAMPLERS: tuple[str, ...] = (
    "Euler",
    "Euler a",
    "Heun",
    "LMS",
    "DPM2",
    "DPM2 a",
    "DPM++ 2M",
    "DPM++ 2M SDE",
    "DPM++ SDE",
    "DDIM",
    "PLMS",
    "UniPC",
    "LCM",
    # A1111's other samplers; the closest diffusers scheduler runs them (engine/samplers.py says how).
    "DPM++ 2S a",
    "DPM++ 2M SDE Heun",
    "DPM++ 3M SDE",
    "DPM fast",
    "DPM adaptive",
    "Restart",
    "DDIM CFG++",
)
SCHEDULE_TYPES: tuple[str, ...] = (
    "Automatic",
    "Karras",
    "Exponential",
    "SGM Uniform",
    "Uniform",
    "Polyexponential",
    "KL Optimal",
    "Align Your Steps",
    "Simple",
    "Normal",
    "DDIM",
    "Beta",
)

# A1111 before 1.9 folded the schedule into the sampler name ("DPM++ 2M Karras").
_SCHEDULE_SUFFIXES = ("Karras", "Exponential", "SGM Uniform")
_LEGACY_SAMPLERS = tuple(f"{sampler} {schedule}" for sampler in SAMPLERS for schedule in _SCHEDULE_SUFFIXES)

MIN_SIDE, MAX_SIDE = 64, 4096
# What the schema promises, so that a client generated from /openapi.json sends what is accepted.
_SIDE_SCHEMA: dict[str, Any] = {"minimum": MIN_SIDE, "maximum": MAX_SIDE, "multipleOf": 8}
_TEXT_SCHEMA: dict[str, Any] = {"pattern": "^[^\\x00]*$"}


class MaskedContent(enum.StrEnum):
    """What the masked area starts from before denoising (A1111's "Masked content")."""

    fill = "fill"
    original = "original"
    latent_noise = "latent noise"
    latent_nothing = "latent nothing"


class Mode(enum.StrEnum):
    txt2img = "txt2img"
    img2img = "img2img"
    inpaint = "inpaint"
    outpaint = "outpaint"
    upscale = "upscale"


class OutpaintFill(enum.StrEnum):
    """What the new area of an outpainted canvas starts from before it is re-rendered."""

    edge_stretch = "edge stretch"  # the picture's outermost pixels, stretched outwards
    blurred_mirror = "blurred mirror"  # the picture mirrored at its edge, blurred more with distance
    latent_noise = "latent noise"  # fresh noise: the model invents the new area from nothing


SIDES = ("top", "bottom", "left", "right")


class Outpaint(BaseModel):
    """Grow the init picture's canvas; the new area and a feathered seam band over the known picture
    are re-rendered with the whole picture as context (an inpaint of the grown canvas)."""

    model_config = ConfigDict(extra="forbid")

    top: int = Field(default=0, ge=0, le=MAX_SIDE, description="Pixels added above (rounded up to 8).")
    bottom: int = Field(default=0, ge=0, le=MAX_SIDE, description="Pixels added below (rounded up to 8).")
    left: int = Field(default=0, ge=0, le=MAX_SIDE, description="Pixels added left (rounded up to 8).")
    right: int = Field(default=0, ge=0, le=MAX_SIDE, description="Pixels added right (rounded up to 8).")
    fill: OutpaintFill = OutpaintFill.blurred_mirror
    seam: int = Field(
        default=8,
        ge=0,
        le=256,
        description="Band of the known picture re-rendered too, feathered, in pixels.",
    )
    tiled: bool | None = Field(
        default=None,
        description="Render the new area as native-size tiles overlapping what is known, one after "
        "another; None = when the canvas is more than twice the model's native size on a side.",
    )

    @field_validator("top", "bottom", "left", "right")
    @classmethod
    def _multiple_of_8(cls, value: int) -> int:
        return -(-value // 8) * 8

    @model_validator(mode="after")
    def _grows(self) -> Outpaint:
        if not any((self.top, self.bottom, self.left, self.right)):
            raise ValueError("outpainting by 0 on every side changes nothing; grow at least one side")
        return self

    def canvas(self, size: tuple[int, int]) -> tuple[int, int, int, int]:
        """(width, height, x, y) of the grown canvas for a picture of ``size`` and where the picture
        sits in it. A side that is not a multiple of 8 grows on the right / bottom to the next one."""
        width = size[0] + self.left + self.right
        height = size[1] + self.top + self.bottom
        return -(-width // 8) * 8, -(-height // 8) * 8, self.left, self.top


# Hires fix upscalers, by A1111's names: in latent space (the interpolation), or in pixels.
LATENT_UPSCALERS: tuple[str, ...] = (
    "Latent",
    "Latent (antialiased)",
    "Latent (bicubic)",
    "Latent (bicubic antialiased)",
    "Latent (nearest)",
    "Latent (nearest-exact)",
)
HIRES_UPSCALERS: tuple[str, ...] = (*LATENT_UPSCALERS, "Lanczos", "Nearest")


def _is_model_name(value: str) -> bool:
    return 0 < len(value.strip()) <= 255 and value.isprintable()


class Hires(BaseModel):
    """A1111's hires fix: the first pass at the request's size, upscaled, then a second img2img pass."""

    model_config = ConfigDict(extra="forbid")

    scale: float = Field(
        default=2.0, ge=1.0, le=8.0, description="Upscale by; unused when resize_x/y are set."
    )
    resize_x: int = Field(
        default=0, ge=0, le=MAX_SIDE, description="Target width; 0 = from the height or scale."
    )
    resize_y: int = Field(
        default=0, ge=0, le=MAX_SIDE, description="Target height; 0 = from the width or scale."
    )
    upscaler: str = Field(
        default="Latent",
        description="A latent upscaler, Lanczos, Nearest, or an upscaler model's name (pixels, by the model).",
    )
    steps: int = Field(default=0, ge=0, le=150, description="Second-pass steps; 0 = as many as the first.")
    denoising_strength: float = Field(default=0.7, ge=0.0, le=1.0)
    sampler: str | None = Field(default=None, description="Second-pass sampler; None = the first's.")
    prompt: str = Field(default="", description="Second-pass prompt; empty = the first's.")
    negative_prompt: str = Field(default="", description="Second-pass negative prompt; empty = the first's.")

    @field_validator("upscaler")
    @classmethod
    def _upscaler(cls, value: str) -> str:
        # other names are upscaler model files, looked up when the job runs
        if value not in HIRES_UPSCALERS and not _is_model_name(value):
            raise ValueError(
                f"unknown upscaler {value!r}; choose one of: {', '.join(HIRES_UPSCALERS)} or an upscaler model's name"
            )
        return value

    @field_validator("sampler")
    @classmethod
    def _sampler(cls, value: str | None) -> str | None:
        return None if value is None else known_sampler(value)

    def target(self, width: int, height: int) -> tuple[int, int]:
        """The second pass's size for a first pass of ``width`` x ``height`` (multiples of 8, as A1111)."""
        if self.resize_x and self.resize_y:
            x, y = self.resize_x, self.resize_y
        elif self.resize_x:
            x, y = self.resize_x, round(height * self.resize_x / width)
        elif self.resize_y:
            x, y = round(width * self.resize_y / height), self.resize_y
        else:
            x, y = int(width * self.scale), int(height * self.scale)
        return max(MIN_SIDE, min(MAX_SIDE, x - x % 8)), max(MIN_SIDE, min(MAX_SIDE, y - y % 8))


class SeamFix(BaseModel):
    """The tiled upscale's seam-fix pass: a band across every border between tiles is re-rendered
    (an inpaint of a native-size crop centred on the border, the band feathered) and blended in."""

    model_config = ConfigDict(extra="forbid")

    width: int = Field(default=32, ge=8, le=512, description="Band width in pixels, centred on the border.")
    denoising_strength: float = Field(default=0.25, ge=0.0, le=1.0)
    mask_blur: int = Field(default=8, ge=0, le=64, description="Feather of the band's edges, in pixels.")


class Upscale(BaseModel):
    """Tiled upscaling (A1111's "SD upscale"): the init picture enlarged with Lanczos, then re-rendered
    tile by tile (img2img at the request's denoising strength, tiles of the model's native size that
    overlap), the overlaps blended along linear feathers, so the enlargement gains detail."""

    model_config = ConfigDict(extra="forbid")

    scale: float = Field(default=2.0, gt=1.0, le=8.0)
    overlap: int = Field(default=32, ge=0, le=512, description="Pixels neighbouring tiles share.")
    tile: int | None = Field(default=None, ge=64, le=MAX_SIDE, description="Tile side; None = native size.")
    seam_fix: SeamFix | None = Field(
        default=None, description="Then re-render a band along every tile border at a low denoise."
    )

    def size(self, size: tuple[int, int]) -> tuple[int, int]:
        """The enlarged size of a picture of ``size`` (down to multiples of 8)."""
        return max(8, int(size[0] * self.scale) // 8 * 8), max(8, int(size[1] * self.scale) // 8 * 8)

    @field_validator("tile")
    @classmethod
    def _tile_multiple_of_8(cls, value: int | None) -> int | None:
        if value is not None and value % 8:
            raise ValueError(f"{value} is not a multiple of 8; try {round(value / 8) * 8}")
        return value


def aspect_sides(size: tuple[int, int], aspect: str) -> dict[str, int]:
    """The sides to grow (evenly, on the short dimension) to bring ``size`` to ``aspect`` ("16:9"), as
    near as whole multiples of 8 on each side allow."""
    width_part, colon, height_part = aspect.partition(":")
    try:
        ratio = float(width_part) / float(height_part)
    except (ValueError, ZeroDivisionError):
        ratio = 0.0
    if not colon or ratio <= 0:
        raise InvalidRequest(f"The aspect ratio {aspect!r} is not W:H.", "Write it as 16:9, 3:2 or 1:1.")
    width, height = size
    if width / height < ratio:
        half = max(8, round((height * ratio - width) / 16) * 8)
        return {"left": half, "right": half}
    half = max(8, round((width / ratio - height) / 16) * 8)
    return {"top": half, "bottom": half}


def grown_size(request: GenerationRequest, size: tuple[int, int]) -> tuple[int, int]:
    """The size an outpaint or upscale request makes of an init picture of ``size``."""
    if request.outpaint is not None:
        width, height, _, _ = request.outpaint.canvas(size)
        return width, height
    if request.upscale is not None:
        return request.upscale.size(size)
    return size


def check_canvas(width: int, height: int, max_side: int) -> None:
    """Raises InvalidRequest when an outpainted or upscaled picture is larger than the configured maximum."""
    if max(width, height) > max_side:
        raise InvalidRequest(
            f"The grown picture would be {width}x{height} pixels; the maximum is {max_side} a side.",
            "Grow it by less, or raise max_canvas_side in the settings.",
        )


def known_sampler(name: str) -> str:
    if name not in SAMPLERS:
        raise ValueError(f"unknown sampler {name!r}; choose one of: {', '.join(SAMPLERS)}")
    return name


def split_legacy_sampler(name: str) -> tuple[str, str | None]:
    """'DPM++ 2M Karras' -> ('DPM++ 2M', 'Karras'); names without a schedule pass through."""
    for schedule in _SCHEDULE_SUFFIXES:
        sampler = name.removesuffix(" " + schedule)
        if sampler != name and sampler in SAMPLERS:
            return sampler, schedule
    return name, None


class GenerationRequest(BaseModel):
    """One generation. A request plus the model's hash reproduces its images.

    Images (``init_image``, ``mask``) are references: a file path or a ``data:`` URI with
    base64 PNG/JPEG/WebP bytes, so the request stays plain JSON.
    """

    model_config = ConfigDict(
        extra="forbid",
        validate_assignment=True,
        # a mask needs the picture it applies to
        json_schema_extra={
            "if": {"properties": {"mask": {"type": "string"}}, "required": ["mask"]},
            "then": {"properties": {"init_image": {"type": "string"}}, "required": ["init_image"]},
        },
    )

    prompt: str = Field(default="", json_schema_extra=_TEXT_SCHEMA)
    negative_prompt: str = Field(default="", json_schema_extra=_TEXT_SCHEMA)
    width: int | None = Field(
        default=None,
        description="Multiple of 8, 64–4096; None = the model's native size.",
        json_schema_extra=_SIDE_SCHEMA,
    )
    height: int | None = Field(
        default=None,
        description="Multiple of 8, 64–4096; None = the model's native size.",
        json_schema_extra=_SIDE_SCHEMA,
    )
    steps: int = Field(default=20, ge=1, le=150)
    cfg_scale: float = Field(default=7.0, ge=0.0, le=100.0)
    sampler: str = Field(
        default="DPM++ 2M",
        description="A1111's sampler name; the old names with a schedule ('DPM++ 2M Karras') are understood.",
        json_schema_extra={"enum": [*SAMPLERS, *_LEGACY_SAMPLERS]},
    )
    schedule_type: str = Field(default="Automatic", json_schema_extra={"enum": list(SCHEDULE_TYPES)})
    # 64 bits, as ComfyUI's seeds: how they map to noise is in engine/seeds.py
    seed: int = Field(default=-1, ge=-1, lt=2**64, description="0 to 2**64-1; -1 picks a random seed.")
    variation_seed: int = Field(default=-1, ge=-1, lt=2**64, description="-1 picks a random variation seed.")
    variation_strength: float = Field(default=0.0, ge=0.0, le=1.0)
    batch_size: int = Field(default=1, ge=1, le=64)
    batch_count: int = Field(default=1, ge=1, le=1000)
    clip_skip: int = Field(default=1, ge=1, le=12)
    denoising_strength: float = Field(default=0.75, ge=0.0, le=1.0)
    init_image: str | None = None
    mask: str | None = None
    mask_blur: int = Field(default=4, ge=0, le=256)
    mask_invert: bool = False
    inpaint_only_masked: bool = False
    inpaint_only_masked_padding: int | None = Field(
        default=None,
        ge=0,
        le=1024,
        description="Context pixels around the masked area; None = chosen from the area's size.",
    )
    masked_content: MaskedContent = MaskedContent.original
    soft_inpainting: SoftInpainting | None = Field(
        default=None, description="Blend by the mask's grey levels while denoising and at the end."
    )
    mask_from: MaskFrom | None = Field(
        default=None, description="Make the mask from a box, a scribble or a found object (instead of mask)."
    )
    tiled_diffusion: TiledDiffusion | None = Field(
        default=None, description="Denoise a canvas larger than the model's size as overlapping tiles."
    )
    tiled_vae: bool | None = Field(
        default=None,
        description="VAE encode/decode in overlapping tiles (bounded memory); None = above 4x the "
        "model's native pixel count.",
    )
    outpaint: Outpaint | None = Field(
        default=None, description="Grow the init picture's canvas and render the new area."
    )
    hires: Hires | None = Field(default=None, description="Hires fix (text to image only).")
    upscale: Upscale | None = Field(default=None, description="Tiled upscaling of the init picture.")
    fix_crop: bool = Field(
        default=False,
        description="After the render, outpaint the side where the main subject is cut off by the frame.",
    )
    eta: float | None = Field(
        default=None, ge=0.0, le=1.0, description="DDIM's eta: 0 deterministic, 1 as noisy as DDPM; None = 0."
    )
    churn: float = Field(
        default=0.0,
        ge=0.0,
        le=100.0,
        description="Euler's sigma churn (A1111's s_churn): noise added back each step.",
    )
    churn_min_sigma: float = Field(default=0.0, ge=0.0, description="Churn only below this sigma… (s_tmin).")
    churn_max_sigma: float = Field(
        default=0.0, ge=0.0, description="…and above this one; 0 = no limit (s_tmax)."
    )
    churn_noise: float = Field(
        default=1.0, ge=0.0, le=10.0, description="Scale of the churn's noise (s_noise)."
    )
    tiling: bool = Field(
        default=False, description="Seamless tiling: the picture wraps around, its edges meet as a pattern."
    )
    postprocess: list[PostprocessStep] = Field(
        default_factory=list,
        max_length=16,
        description="Steps run on each finished picture, in order: upscale, restore faces, detail.",
    )
    anatomy_gate: AnatomyGate | None = Field(
        default=None, description="Re-render pictures a plausibility check rejects (off by default)."
    )
    frozen_noise: bool = Field(
        default=False,
        description="Every picture of the job draws the seed's own noise (not seed + i): the same "
        "starting noise and img2img encode noise, e.g. for consistent video keyframes.",
    )
    noise_per_position: bool = Field(
        default=False,
        description="Noise anchored to latent positions, so pictures of different sizes share it "
        "where they overlap (top-left aligned).",
    )
    nsfw_filter: Literal["off", "blur", "withhold"] | None = Field(
        default=None,
        description="What the NSFW check does with a flagged picture: off, blur or withhold; "
        "none = the settings' nsfw_filter.",
    )
    model: str | None = None
    vae: str | None = None
    aesthetic_score: float = Field(
        default=6.0, ge=0.0, le=10.0, description="SDXL refiner only: the score asked for with the prompt."
    )
    negative_aesthetic_score: float = Field(
        default=2.5,
        ge=0.0,
        le=10.0,
        description="SDXL refiner only: the score given with the negative prompt.",
    )

    @model_validator(mode="before")
    @classmethod
    def _legacy_sampler_names(cls, data: Any) -> Any:
        if isinstance(data, dict) and isinstance(data.get("sampler"), str):
            sampler, schedule = split_legacy_sampler(data["sampler"])
            if schedule is not None:
                data = {**data, "sampler": sampler}
                data.setdefault("schedule_type", schedule)
        return data

    @field_validator("prompt", "negative_prompt")
    @classmethod
    def _no_nul(cls, value: str) -> str:
        if "\x00" in value:
            raise ValueError("the prompt contains a NUL byte (\\x00); remove it and try again")
        return value

    @field_validator("width", "height")
    @classmethod
    def _side(cls, value: int | None) -> int | None:
        if value is None:
            return value
        if not MIN_SIDE <= value <= MAX_SIDE:
            raise ValueError(f"{value} is out of range; use {MIN_SIDE}–{MAX_SIDE} pixels")
        if value % 8:
            nearest = max(MIN_SIDE, min(MAX_SIDE, round(value / 8) * 8))
            raise ValueError(f"{value} is not a multiple of 8; try {nearest}")
        return value

    @field_validator("sampler")
    @classmethod
    def _sampler(cls, value: str) -> str:
        return known_sampler(value)

    @field_validator("schedule_type")
    @classmethod
    def _schedule(cls, value: str) -> str:
        if value not in SCHEDULE_TYPES:
            raise ValueError(f"unknown schedule type {value!r}; choose one of: {', '.join(SCHEDULE_TYPES)}")
        return value

    @model_validator(mode="after")
    def _mask_needs_image(self) -> GenerationRequest:
        if self.mask is not None and self.init_image is None:
            raise ValueError("a mask needs an init image to inpaint; give one with the mask")
        if self.mask_from is not None and (self.init_image is None or self.mask is not None):
            raise ValueError("mask_from makes the mask of the init image; give an init image and no mask")
        if self.outpaint is not None and self.init_image is None:
            raise ValueError("outpainting needs the picture to grow; give it as the init image")
        if self.hires is not None and self.init_image is not None:
            raise ValueError("hires fix is for text to image; for a picture, use img2img at the larger size")
        if self.upscale is not None and (
            self.init_image is None or self.mask or self.outpaint or self.mask_from
        ):
            raise ValueError("tiled upscaling takes an init picture alone, without a mask or outpainting")
        if self.outpaint is not None and (self.mask is not None or self.mask_from is not None):
            raise ValueError("outpainting makes its own mask; give either a mask or outpaint sides, not both")
        return self

    @property
    def mode(self) -> Mode:
        if self.outpaint is not None:
            return Mode.outpaint
        if self.upscale is not None:
            return Mode.upscale
        if self.mask is not None or self.mask_from is not None:
            return Mode.inpaint
        if self.init_image is not None:
            return Mode.img2img
        return Mode.txt2img

    @property
    def images_total(self) -> int:
        return self.batch_size * self.batch_count


def describe_validation_error(error: ValidationError) -> str:
    """One line per problem, in the user's words: 'width: 100 is not a multiple of 8; try 96'."""
    parts = []
    for item in error.errors():
        where = ".".join(str(p) for p in item["loc"]) or "request"
        message = str(item["msg"]).removeprefix("Value error, ")
        parts.append(f"{where}: {message}")
    return "; ".join(parts)


def parse_request(data: dict[str, Any]) -> GenerationRequest:
    """Validate plain data into a request, raising InvalidRequest with a readable message."""
    try:
        return GenerationRequest.model_validate(data)
    except ValidationError as error:
        raise InvalidRequest(f"Invalid request: {describe_validation_error(error)}.") from None
