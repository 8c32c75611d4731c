"""A1111's "PNG Info" for any picture: its infotext, its other metadata items, and the parsed fields
in the shape A1111's ``/sdapi/v1/png-info`` answers (``Size-1``/``Size-2``, A1111's defaults for the
keys a text leaves out, ``RNG``), so clients that fill their forms from it work unchanged.

Pictures of tools that write no infotext (ComfyUI, InvokeAI, NovelAI, Fooocus, SwarmUI) get the
infotext built from their own settings, where A1111 would answer an empty text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from PIL import Image

from sfumato.archive.infotext import parse_infotext
from sfumato.archive.metadata import ImageMetadata, metadata_from_chunks, read_chunks
from sfumato.core.request import split_legacy_sampler

# image.info keys that are not metadata a user wrote (A1111 leaves them out too).
_IGNORED_ITEMS = frozenset(
    {
        "jfif",
        "jfif_version",
        "jfif_unit",
        "jfif_density",
        "dpi",
        "exif",
        "loop",
        "background",
        "timestamp",
        "duration",
        "progressive",
        "progression",
        "icc_profile",
        "chromaticity",
        "photoshop",
        "transparency",
        "gamma",
        "aspect",
        "xmp",
    }
)

# What A1111 fills in for keys a text leaves out (its values, its types).
_DEFAULTS: dict[str, Any] = {
    "Clip skip": "1",
    "Hires resize-1": 0,
    "Hires resize-2": 0,
    "Hires sampler": "Use same sampler",
    "Hires schedule type": "Use same scheduler",
    "Hires checkpoint": "Use same checkpoint",
    "Hires prompt": "",
    "Hires negative prompt": "",
    "Mask mode": "Inpaint masked",
    "Masked content": "original",
    "Inpaint area": "Whole picture",
    "Masked area padding": 32,
    "RNG": "GPU",  # A1111's default when a text names none; ours write "CPU"
    "Schedule type": "Automatic",
    "Schedule max sigma": 0,
    "Schedule min sigma": 0,
    "Schedule rho": 0,
    "VAE Encoder": "Full",
    "VAE Decoder": "Full",
    "FP8 weight": "Disable",
    "Refiner switch by sampling steps": False,
}

_SIZE = re.compile(r"^(\d+)x(\d+)$")


@dataclass(frozen=True)
class PngInfo:
    info: str  # the infotext
    items: dict[str, Any]  # the picture's other metadata texts
    parameters: dict[str, Any]  # the infotext's fields as A1111 parses them
    metadata: ImageMetadata = field(repr=False)


def a1111_parameters(text: str) -> dict[str, Any]:
    """An infotext parsed as A1111 parses it: ``WxH`` values split into ``Key-1``/``Key-2``, an old
    sampler name split into sampler and schedule type, and A1111's defaults for the keys left out."""
    parsed = parse_infotext(text)
    fields: dict[str, Any] = {}
    for key, value in parsed.items():
        match = _SIZE.match(value) if key not in ("Prompt", "Negative prompt") else None
        if match:
            fields[f"{key}-1"], fields[f"{key}-2"] = match[1], match[2]
        else:
            fields[key] = value
    if "Sampler" in fields:
        sampler, schedule = split_legacy_sampler(fields["Sampler"])
        if schedule is not None:
            fields["Sampler"] = sampler
            fields.setdefault("Schedule type", schedule)
    for key, value in _DEFAULTS.items():
        fields.setdefault(key, value)
    return fields


def png_info(image: Image.Image) -> PngInfo:
    """The PNG Info of an open picture (PNG text chunks, or JPEG/WebP EXIF)."""
    chunks = read_chunks(image)
    metadata = metadata_from_chunks(chunks, image.size)
    items: dict[str, Any] = {
        key: value
        for key, value in {**image.info, **chunks}.items()
        if isinstance(key, str)
        and key not in _IGNORED_ITEMS
        and (key != "parameters" or value != metadata.parameters)  # Fooocus's or SwarmUI's JSON stays
        and isinstance(value, str | int | float)
        and not isinstance(value, bool)
    }
    if image.format != "PNG" and "parameters" in chunks:
        items["exif comment"] = chunks["parameters"]  # where A1111 reports a JPEG's text
    text = metadata.parameters
    return PngInfo(text, items, a1111_parameters(text) if text else {}, metadata)
