"""Face restoration: find faces, align each to the standard 5-point face template, restore it with a
face model (GFPGAN, RestoreFormer through spandrel; CodeFormer only where the user installed
spandrel-extra-arches), and paste it back through a feathered mask.

Alignment is a similarity transform (turn, scale, shift) that puts the two eyes where the
512-pixel FFHQ template has them. The eyes come from opencv's eye cascade inside each Haar face
box; where it does not find both, they are placed where a Haar box usually has them (37% down,
27% and 73% across). That is coarser than a landmark model (no nose/mouth points, no roll without
the eyes found), so profile and tilted faces align less well than in tools with a landmark net.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PIL import Image

from sfumato.core.errors import ModelNotFound, SfumatoError, UnsupportedModel
from sfumato.core.postprocess import RestoreFacesStep
from sfumato.postprocess.detect import Box, detect_faces, eye_centres

if TYPE_CHECKING:
    import numpy as np
    import torch

    from sfumato.core.settings import Settings

FACE_SIZE = 512
# The 5-point template (eyes, nose tip, mouth corners) of 512-pixel aligned FFHQ faces, which
# GFPGAN, RestoreFormer and CodeFormer were trained on.
TEMPLATE_512: tuple[tuple[float, float], ...] = (
    (192.98, 239.95),
    (318.90, 240.19),
    (256.63, 314.02),
    (201.26, 371.41),
    (313.09, 371.15),
)
RESTORERS: tuple[str, ...] = ("GFPGAN", "RestoreFormer", "CodeFormer")
CODEFORMER_NOTE = (
    "CodeFormer's architecture comes from spandrel-extra-arches, whose licence (S-Lab, "
    "non-commercial) differs from Sfumato's; Sfumato does not install it."
)

Restorer = Callable[["torch.Tensor"], "torch.Tensor"]  # [1, 3, 512, 512] in 0..1 -> the same


@dataclass
class Restored:
    picture: Image.Image
    faces: list[Box] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def restore_faces(
    picture: Image.Image,
    step: RestoreFacesStep,
    settings: Settings,
    *,
    restorer: Restorer | None = None,
) -> Restored:
    """Every face the detector finds, restored and blended in at ``step.visibility``. A picture with
    no face comes back unchanged with a note. ``restorer`` replaces the model (tests)."""
    picture = picture.convert("RGB")
    faces = [region.box for region in detect_faces(picture)]
    if not faces:
        return Restored(picture, notes=["No face was found, so no face was restored."])
    if step.visibility == 0:
        return Restored(picture, faces, ["Face restoration visibility is 0, so the picture is unchanged."])
    run = restorer or load_restorer(settings, step.model, step.codeformer_weight)
    result = picture
    for box in faces:
        result = restore_one(result, box, run, step.visibility)
    return Restored(
        result, faces, [f"Restored {len(faces)} face{'s' if len(faces) > 1 else ''} with {step.model}."]
    )


def alignment(picture: Image.Image, box: Box) -> np.ndarray:
    """The 2x3 similarity matrix from the picture to the 512-pixel aligned face of ``box``."""
    import numpy as np

    eyes = eye_centres(picture, box)
    if eyes is None:
        left, top, right, bottom = box
        width, height = right - left, bottom - top
        eyes = ((left + 0.27 * width, top + 0.37 * height), (left + 0.73 * width, top + 0.37 * height))
    source = complex(*eyes[0]), complex(*eyes[1])
    target = complex(*TEMPLATE_512[0]), complex(*TEMPLATE_512[1])
    # z -> a z + b maps both eyes exactly: a holds the turn and scale, b the shift.
    a = (target[1] - target[0]) / (source[1] - source[0])
    b = target[0] - a * source[0]
    return np.array([[a.real, -a.imag, b.real], [a.imag, a.real, b.imag]], dtype=np.float64)


def _blend_mask() -> np.ndarray:
    """1 over the aligned face, fading to 0 well inside the 512 square's edge."""
    import cv2
    import numpy as np

    mask = np.zeros((FACE_SIZE, FACE_SIZE), dtype=np.float32)
    margin = FACE_SIZE // 10
    mask[margin:-margin, margin:-margin] = 1.0
    return cv2.GaussianBlur(mask, (0, 0), sigmaX=FACE_SIZE / 25)


def restore_one(picture: Image.Image, box: Box, restorer: Restorer, visibility: float) -> Image.Image:
    import cv2
    import numpy as np
    import torch

    pixels = np.asarray(picture, dtype=np.float32) / 255.0
    matrix = alignment(picture, box)
    face = cv2.warpAffine(
        pixels, matrix, (FACE_SIZE, FACE_SIZE), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101
    )
    with torch.inference_mode():
        tensor = torch.from_numpy(face.transpose(2, 0, 1).copy())[None]
        restored = restorer(tensor).clamp(0, 1)[0].permute(1, 2, 0).float().cpu().numpy()
    inverse = cv2.invertAffineTransform(matrix)
    height, width = pixels.shape[:2]
    back = cv2.warpAffine(restored, inverse, (width, height), flags=cv2.INTER_LINEAR)
    alpha = cv2.warpAffine(_blend_mask(), inverse, (width, height), flags=cv2.INTER_LINEAR)
    alpha = (alpha * visibility)[..., None]
    out = pixels * (1 - alpha) + back * alpha
    return Image.fromarray((out * 255).round().clip(0, 255).astype(np.uint8), "RGB")


# -- the models -----------------------------------------------------------------------------------


def find_restorer_file(settings: Settings, name: str) -> Path:
    """A face-restorer file in the model folders (A1111's models/GFPGAN and models/Codeformer,
    ComfyUI's facerestore_models): by file name, or the first whose name holds the family's."""
    from sfumato.models.library import ModelLibrary

    library = ModelLibrary(settings)
    exact = library.resolve("restorer", name)
    if exact is not None:
        return exact
    family = name.lower()
    files = [e for e in library.entries() if e.kind == "restorer"]
    for entry in sorted(files, key=lambda e: (e.path.suffix != ".safetensors", e.name.lower())):
        if family in entry.path.name.lower():
            return entry.path
    raise ModelNotFound(
        f"No {name} face-restorer file was found in the model folders.",
        "Put it (a .safetensors file) in models/GFPGAN, models/Codeformer or ComfyUI's "
        "models/facerestore_models, or add that folder with `sfumato models add-folder`.",
    )


def load_restorer(settings: Settings, name: str, codeformer_weight: float = 0.5) -> Restorer:
    """The restorer ``name`` (a family or a file), ready to run on aligned 512-pixel faces.
    Pickled (.pth) files are refused with the `sfumato models convert` command to run once."""
    import torch

    from sfumato.models.safety import load_safetensors
    from sfumato.models.spandrel_import import import_spandrel

    path = find_restorer_file(settings, name)
    state = load_safetensors(path)
    spandrel = import_spandrel()
    if "codeformer" in path.name.lower() or name.lower() == "codeformer":
        _install_codeformer(spandrel)
    try:
        descriptor: Any = spandrel.ModelLoader().load_from_state_dict(state)
    except Exception as error:  # spandrel raises its own errors for unknown or damaged weights
        raise UnsupportedModel(
            f"{path.name} is not a face-restorer architecture Sfumato knows ({type(error).__name__}).",
            f"Use a GFPGAN or RestoreFormer file ({CODEFORMER_NOTE}).",
        ) from None
    architecture = descriptor.architecture.id
    if descriptor.purpose != "FaceSR":
        raise UnsupportedModel(
            f"{path.name} is a {architecture} model ({descriptor.purpose}), not a face restorer.",
            "Use it as an upscaler, or give a GFPGAN or RestoreFormer file here.",
        )
    family = name.lower()
    if family in (r.lower() for r in RESTORERS) and architecture.lower() != family:
        raise UnsupportedModel(
            f"{path.name} holds a {architecture} model, not {name}.", f"Ask for {architecture} instead."
        )
    from sfumato.models.device import resolve_device

    device = resolve_device(settings.device)
    model = descriptor.model.eval().to(device)

    def run(face: torch.Tensor) -> torch.Tensor:
        face = face.to(device)
        # GFPGAN adds random noise in its decoder: a fixed generator keeps a recipe's picture the same.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            if architecture == "GFPGAN":
                return (model((face - 0.5) / 0.5)[0] + 1) / 2
            if architecture == "CodeFormer":
                return (model((face - 0.5) / 0.5, w=codeformer_weight, adain=True)[0] + 1) / 2
            return descriptor(face)

    return run


def _install_codeformer(spandrel: Any) -> None:
    try:
        import spandrel_extra_arches  # pyright: ignore[reportMissingImports]
    except ImportError:
        raise SfumatoError(
            f"CodeFormer needs the spandrel-extra-arches package. {CODEFORMER_NOTE}",
            "If its licence suits you, install it yourself (pip install --no-deps spandrel-extra-arches); "
            "otherwise use GFPGAN or RestoreFormer.",
        ) from None
    spandrel_extra_arches.install(spandrel.MAIN_REGISTRY, ignore_duplicates=True)
