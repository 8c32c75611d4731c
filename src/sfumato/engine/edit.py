"""Editing a picture by prompt: recover its noise, then regenerate with the new words where they matter.

LEDITS++-style, on our own DDIM loop: the picture is inverted exactly with the ``source`` prompt
(engine/inversion.py), so regenerating with that prompt alone gives the picture back. Where the
``target`` prompt's noise estimate differs most from the source's on the inverted path (the
implicit mask: the changed words' region, found without a user mask), the regeneration is guided
from source towards target (``source + guidance * (target - source)``); everywhere else the latents
are held on the inverted path, and the finished picture keeps the original's pixels outside the
feathered mask. Changing "red circle" to "blue circle" repaints the circle; changing the background
word repaints the background around the object.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from sfumato.core.errors import InvalidRequest

if TYPE_CHECKING:
    import torch
    from PIL import Image

    from sfumato.engine.inversion import Method
    from sfumato.models.components import Components

Region = Literal["auto", "changed", "background"]
REGIONS: tuple[str, ...] = ("auto", "changed", "background")
BACKGROUND_WORDS = frozenset({"background", "backdrop", "backround", "bg"})
_FOREGROUND_DISTANCE = 60.0  # RGB distance from the border's colour that makes a pixel foreground
DEFAULT_GUIDANCE = 5.0
DEFAULT_THRESHOLD = 0.35  # share of the largest source/target difference that joins the mask
MASK_LEVELS = (0.3, 0.7)  # the part of the path (as a share of the levels) the mask is measured on


@dataclass
class EditResult:
    picture: Image.Image
    mask: Image.Image  # white = repainted, at the picture's size
    residual: float  # the inversion's last fixed-point change (0 for plain DDIM)
    notes: list[str] = field(default_factory=list)


def edit_mask(
    inversion_latents: list[torch.Tensor],
    source: object,
    target: object,
    threshold: float,
) -> torch.Tensor:
    """[1, 1, h, w] in {0, 1}: where the target's noise estimate differs most from the source's, on
    the inverted path's middle levels, smoothed and grown by one latent cell."""
    import torch
    from torch.nn import functional

    levels = len(inversion_latents) - 1
    low, high = (max(1, round(share * levels)) for share in MASK_LEVELS)
    difference = torch.zeros_like(inversion_latents[0][:, :1])
    for level in range(low, max(low, high) + 1):
        x = inversion_latents[level]
        change = (target(x, level) - source(x, level)).abs().mean(dim=1, keepdim=True)  # pyright: ignore[reportCallIssue]
        difference += change
    difference = functional.avg_pool2d(difference, 3, stride=1, padding=1, count_include_pad=False)
    peak = float(difference.max())
    if peak <= 0:
        return torch.zeros_like(difference)
    mask = (difference / peak >= threshold).float()
    return functional.max_pool2d(mask, 3, stride=1, padding=1)


def edit(
    components: Components,
    picture: Image.Image,
    source_prompt: str,
    target_prompt: str,
    *,
    steps: int = 20,
    guidance: float = DEFAULT_GUIDANCE,
    threshold: float = DEFAULT_THRESHOLD,
    method: Method = "fixed-point",
    region: Region = "auto",
) -> EditResult:
    """``region``: ``changed`` repaints where the prompts' predictions differ (the implicit mask),
    ``background`` everything but the objects that stand out from the picture's border colour;
    ``auto`` picks ``background`` when a changed word describes the background, else ``changed``."""
    from PIL import Image
    from torch.nn import functional

    from sfumato.engine import inversion as inv
    from sfumato.engine.masks import keep_outside

    if not source_prompt.strip() or not target_prompt.strip():
        raise InvalidRequest(
            "An edit needs both prompts.", 'Give --from "what is there" and --to "what it becomes".'
        )
    if source_prompt.strip() == target_prompt.strip():
        raise InvalidRequest(
            "--from and --to are the same prompt, so nothing would change.", "Change a word in --to."
        )
    if not 0 < threshold < 1:
        raise InvalidRequest(
            f"The mask threshold {threshold} is outside 0-1.", f"Use e.g. {DEFAULT_THRESHOLD}."
        )
    original = inv.checked_picture(components, picture)
    plan = inv.schedule(components, steps)
    source = inv.prompt_predictor(components, source_prompt, plan, original.size)
    target = inv.prompt_predictor(components, target_prompt, plan, original.size)
    inversion = inv.invert_latents(inv.picture_latents(components, original), plan, source, method)
    if region not in REGIONS:
        raise InvalidRequest(f"Unknown edit region {region!r}.", f"Use one of: {', '.join(REGIONS)}.")
    if region == "auto":
        region = "background" if describes_background(source_prompt, target_prompt) else "changed"
    keep: Image.Image | None = None
    if region == "background":
        mask, keep = background_mask(original, components.vae_scale_factor)
    else:
        mask = edit_mask(inversion.latents, source, target, threshold)

    def guided(x: torch.Tensor, level: int) -> torch.Tensor:
        kept = source(x, level)
        return kept + mask * guidance * (target(x, level) - kept)

    def hold_outside(x: torch.Tensor, level: int) -> torch.Tensor:
        return x * mask + inversion.latents[level] * (1 - mask)

    latents = inv.regenerate_latents(inversion, guided, after_step=hold_outside)
    rendered = inv.latents_picture(components, latents)
    if keep is None:
        pixels = functional.interpolate(
            mask, size=(original.height, original.width), mode="bilinear", align_corners=False
        )
        grey = Image.fromarray((pixels[0, 0].cpu().numpy() * 255).astype("uint8"), "L")
    else:
        grey = keep
    notes = []
    if float(mask.mean()) == 0:
        notes.append("The two prompts predict the same picture here, so nothing was changed.")
    return EditResult(keep_outside(rendered, original, grey), grey, inversion.residual, notes)


def changed_words(source: str, target: str) -> tuple[list[str], list[str]]:
    """The words of ``target`` that differ from ``source`` and the word that follows each change."""
    import difflib

    before, after = source.lower().split(), target.lower().split()
    changed: list[str] = []
    following: list[str] = []
    matcher = difflib.SequenceMatcher(a=before, b=after, autojunk=False)
    for op, _, _, low, high in matcher.get_opcodes():
        if op == "equal":
            continue
        changed += after[low:high]
        if high < len(after):
            following.append(after[high])
    return changed, following


def describes_background(source: str, target: str) -> bool:
    """A changed word that is, or comes just before, a word for the background ("on a *green* background")."""
    changed, following = changed_words(source, target)
    words = {w.strip(".,;:!?()") for w in (*changed, *following)}
    return bool(words & BACKGROUND_WORDS)


def background_mask(picture: Image.Image, factor: int) -> tuple[torch.Tensor, Image.Image]:
    """The latent mask (every cell not wholly inside an object: edges are re-rendered too) and the
    pixel mask (white = background) for a background edit. Objects are what stands out from the
    colour of the picture's border."""
    import numpy as np
    import torch
    from PIL import Image
    from torch.nn import functional

    pixels = np.asarray(picture.convert("RGB"), dtype=np.float32)
    border = np.concatenate([pixels[0], pixels[-1], pixels[:, 0], pixels[:, -1]])
    objects = np.linalg.norm(pixels - np.median(border, axis=0), axis=-1) > _FOREGROUND_DISTANCE
    if not objects.any():
        raise InvalidRequest(
            "Nothing in the picture stands out from its background, so there is no object to keep.",
            "Use --region changed to repaint where the prompts differ.",
        )
    inside = torch.from_numpy(objects.astype(np.float32))[None, None]
    whole_cells = -functional.max_pool2d(-inside, factor)  # 1 where every pixel of the cell is object
    return 1 - whole_cells, Image.fromarray(((~objects) * 255).astype(np.uint8), "L")
