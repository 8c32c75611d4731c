"""Post-processing of pictures that already exist (A1111's "Extras"): upscale a file or a picture.

A Sfumato picture keeps its recipe with the steps appended, so the saved file still reproduces
exactly what it shows (generate, then these steps). Any other picture keeps its own ``parameters``
text with A1111's post-processing keys added.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

from PIL import Image
from PIL.PngImagePlugin import PngInfo

from sfumato.core.postprocess import PostprocessStep
from sfumato.core.result import GeneratedImage, ModelInfo
from sfumato.core.settings import Settings
from sfumato.postprocess.steps import StepContext, check_steps, infotext_params, run_steps


def postprocess_picture(
    settings: Settings, picture: Image.Image, steps: Sequence[PostprocessStep], notes: list[str] | None = None
) -> Image.Image:
    """``picture`` after ``steps``; nothing is saved (what A1111's extras API returns)."""
    check_steps(steps)
    return run_steps(picture, steps, StepContext(settings=settings, notes=notes if notes is not None else []))


def postprocess_file(settings: Settings, path: Path, steps: Sequence[PostprocessStep]) -> Path:
    """Run ``steps`` on the picture file ``path`` and save the result in the outputs folder."""
    from sfumato.archive.files import save_bytes
    from sfumato.archive.index import Archive
    from sfumato.archive.infotext import join_params
    from sfumato.archive.metadata import read_metadata
    from sfumato.core.images import load_image

    check_steps(steps)
    source = load_image(str(path), "picture")
    found = read_metadata(path)
    result = postprocess_picture(settings, source, steps)
    archive = Archive(settings)
    if found.request is not None:
        recipe = found.request.model_copy(update={"postprocess": [*found.request.postprocess, *steps]})
        model = found.model_info or ModelInfo(name=found.model or "unknown", hash=found.model_hash)
        item = GeneratedImage(result, recipe, model, extra=infotext_params(recipe.postprocess))
        return archive.path_of(archive.save(item))
    info = PngInfo()
    added = join_params(infotext_params(steps))
    info.add_text("parameters", f"{found.parameters}, {added}" if found.parameters else added)
    info.add_text("postprocessing", added)
    buffer = io.BytesIO()
    result.save(buffer, format="PNG", pnginfo=info)
    folder = settings.outputs / datetime.now().strftime("%Y-%m-%d")
    saved = save_bytes(buffer.getvalue(), folder, found.seed or 0, found.prompt or path.stem, ".png")
    archive.add(saved)
    return saved
