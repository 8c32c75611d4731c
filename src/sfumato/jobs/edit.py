"""Run an edit end to end: load the model, invert and regenerate, save the edited picture."""

from __future__ import annotations

import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from sfumato.core.edit import EditRequest

if TYPE_CHECKING:
    from PIL import Image

    from sfumato.core.settings import Settings
    from sfumato.models.cache import ModelCache

EDIT_CHUNK = "sfumato-edit"


@dataclass
class EditOutput:
    file: Path
    picture: Image.Image
    mask: Image.Image
    notes: list[str] = field(default_factory=list)


@dataclass
class InversionCheck:
    """How well the picture comes back from its recovered noise, in dB (higher is better)."""

    psnr: float  # regenerated vs the picture
    psnr_latents: float  # regenerated vs the picture through the VAE alone (what inversion can reach)
    residual: float


def run_edit(settings: Settings, request: EditRequest, cache: ModelCache | None = None) -> EditOutput:
    from PIL.PngImagePlugin import PngInfo

    from sfumato.archive.files import save_bytes
    from sfumato.core.images import load_image
    from sfumato.engine.edit import edit
    from sfumato.models.loading import load_model

    picture = load_image(request.picture, "picture")
    components = load_model(settings, request.model, cache=cache)
    result = edit(
        components,
        picture,
        request.source_prompt,
        request.target_prompt,
        steps=request.steps,
        guidance=request.guidance,
        threshold=request.threshold,
        method=request.method,
        region=request.region,
    )
    info = PngInfo()
    described = request.model_dump(exclude={"picture"})
    info.add_text(
        "parameters",
        f"{request.target_prompt}\nEdit from: {request.source_prompt}, Steps: {request.steps}, "
        f"Edit guidance: {request.guidance}, Edit region: {request.region}, Inversion: {request.method}, "
        f"Model: {components.info.name}, Model hash: {components.info.hash}",
    )
    info.add_text(EDIT_CHUNK, json.dumps(described), zip=True)
    buffer = io.BytesIO()
    result.picture.save(buffer, format="PNG", pnginfo=info)
    file = save_bytes(
        buffer.getvalue(), settings.outputs / "edits", 0, "edit-" + request.target_prompt, ".png"
    )
    return EditOutput(file, result.picture, result.mask, list(components.notes) + result.notes)


def check_inversion(
    settings: Settings, picture: str, prompt: str, steps: int, method: str, model: str | None = None
) -> InversionCheck:
    """Invert ``picture`` with ``prompt`` and regenerate it: how close it comes back."""
    from sfumato.core.errors import InvalidRequest
    from sfumato.core.images import load_image
    from sfumato.engine import inversion as inv
    from sfumato.models.loading import load_model

    if method not in inv.METHODS:
        raise InvalidRequest(
            f"Unknown inversion method {method!r}.", f"Use one of: {', '.join(inv.METHODS)}."
        )
    components = load_model(settings, model)
    original = inv.checked_picture(components, load_image(picture, "picture"))
    inversion = inv.invert(components, original, prompt, steps, method)  # pyright: ignore[reportArgumentType]
    back = inv.regenerate(components, inversion, prompt)
    through_vae = inv.latents_picture(components, inv.picture_latents(components, original))
    return InversionCheck(inv.psnr(original, back), inv.psnr(through_vae, back), inversion.residual)
