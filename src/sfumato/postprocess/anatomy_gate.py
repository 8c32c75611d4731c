"""The anatomy gate: after each render a checker scores how plausible the picture is; below the
threshold it is set aside and the picture is rendered again with a new seed, within a budget.

Checkers: on the demo world, the judge (an object count other than the prompt asks for, or shapes
other than the ones asked); for people, mediapipe's hand and pose landmarks would be the checker,
but mediapipe does not install cleanly beside numpy 2 (see ``detect.py``), so for other models the
gate says it could not check and lets pictures through. Set-aside pictures are kept only when the
request names a local folder for them; Sfumato never sends them anywhere.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from sfumato.core.postprocess import AnatomyGate

if TYPE_CHECKING:
    from PIL import Image

    from sfumato.core.result import GeneratedImage

NEW_SEED_STEP = 100_003  # a re-render's seed: far from the seed + i of the other pictures of a batch
NOT_CHECKED = (
    "The anatomy gate checks people with mediapipe's hand and pose landmarks, which are not "
    "available here, so the pictures were not checked (the demo model is checked by its judge)."
)


@dataclass(frozen=True)
class Verdict:
    score: float  # 0 = implausible .. 1 = nothing wrong found
    reason: str  # what is wrong, in the user's words; "" when nothing is


Checker = Callable[["Image.Image", str], Verdict]  # picture, prompt -> verdict


def check_demo_world(picture: Image.Image, prompt: str) -> Verdict:
    """The judge against the prompt: 0 when the object count differs from what it asks for, else
    the share of the asked shapes the picture shows."""
    from sfumato.demo import judge, world

    expected = world.parse_caption(prompt)
    if not expected.objects:
        return Verdict(1.0, "")
    judged = judge.judge(picture)
    asked, seen = len(expected.objects), len(judged.objects)
    if asked != seen:
        return Verdict(0.0, f"{seen} object{'s' if seen != 1 else ''} where the prompt asks for {asked}")
    share = judge.score(expected, judged).get("shape", 1.0)
    if share < 1.0:
        shapes = ", ".join(o.shape for o in judged.objects)
        return Verdict(share, f"shapes read as {shapes}")
    return Verdict(1.0, "")


def checker_for(demo_world: bool) -> Checker | None:
    """The checker for a model, or None where none is available (people without mediapipe)."""
    return check_demo_world if demo_world else None


@dataclass
class GateOutcome:
    item: GeneratedImage
    notes: list[str] = field(default_factory=list)
    rejected: list[GeneratedImage] = field(default_factory=list)  # the pictures set aside, in order


def run_gate(
    item: GeneratedImage,
    gate: AnatomyGate,
    check: Checker,
    render: Callable[[int], GeneratedImage],
) -> GateOutcome:
    """``item`` if it passes; else re-rendered (``render(seed)``) with new seeds until one passes or
    the budget is spent, when the best-scored picture is kept. The notes say what happened."""
    seed = item.recipe.seed
    verdict = check(item.image, item.recipe.prompt)
    if verdict.score >= gate.threshold:
        return GateOutcome(item)
    outcome = GateOutcome(item)
    first_seed = seed
    best, best_verdict = item, verdict
    tried = [f"seed {seed} ({verdict.reason}, score {verdict.score:.2f})"]
    for attempt in range(1, gate.budget + 1):
        outcome.rejected.append(item)
        new_seed = (seed + attempt * NEW_SEED_STEP) % 2**32
        item = render(new_seed)
        verdict = check(item.image, item.recipe.prompt)
        if verdict.score >= gate.threshold:
            outcome.item = _marked(item, first_seed, attempt, passed=True)
            outcome.notes.append(
                f"Anatomy gate: set aside {', '.join(tried)}; seed {new_seed} passed "
                f"(score {verdict.score:.2f}, re-render {attempt} of {gate.budget})."
            )
            return outcome
        tried.append(f"seed {new_seed} ({verdict.reason}, score {verdict.score:.2f})")
        if verdict.score > best_verdict.score:
            best, best_verdict = item, verdict
    outcome.rejected.append(item)
    outcome.rejected = [r for r in outcome.rejected if r is not best]
    outcome.item = _marked(best, first_seed, gate.budget, passed=False)
    outcome.notes.append(
        f"Anatomy gate: no picture passed within the budget of {gate.budget} re-renders "
        f"({'; '.join(tried)}); kept the best, seed {best.recipe.seed} (score {best_verdict.score:.2f})."
    )
    return outcome


def _marked(item: GeneratedImage, first_seed: int, renders: int, *, passed: bool) -> GeneratedImage:
    """The picture with an "Anatomy gate" entry in its infotext, so the file itself says it."""
    from dataclasses import replace

    what = "passed" if passed else "none passed and the best kept"
    text = f"seed {first_seed} set aside; {renders} re-render{'s' if renders > 1 else ''}; {what}"
    return replace(item, extra={**item.extra, "Anatomy gate": text})


def rejected_folder(outputs: Path, gate: AnatomyGate) -> Path | None:
    """Where the set-aside pictures go: a folder inside the outputs folder, or None."""
    if gate.keep_rejected is None:
        return None
    return outputs / gate.keep_rejected
