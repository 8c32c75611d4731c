"""The anatomy gate's bookkeeping: the budget, the best picture kept, the notes (a fake checker)."""

from __future__ import annotations

import pytest
from PIL import Image

from sfumato.core.postprocess import AnatomyGate
from sfumato.core.request import GenerationRequest
from sfumato.core.result import GeneratedImage, ModelInfo
from sfumato.postprocess.anatomy_gate import NEW_SEED_STEP, Verdict, run_gate


def picture(seed: int) -> GeneratedImage:
    return GeneratedImage(Image.new("RGB", (8, 8)), GenerationRequest(prompt="x", seed=seed), ModelInfo("m"))


SCORES = {7: 0.1, 7 + NEW_SEED_STEP: 0.4, 7 + 2 * NEW_SEED_STEP: 0.2}


def check(image: Image.Image, prompt: str, seen: list[int]) -> Verdict:
    return Verdict(SCORES[seen[-1]], "looks wrong")


def test_an_exhausted_budget_keeps_the_best_picture_with_a_note() -> None:
    seen = [7]

    def render(seed: int) -> GeneratedImage:
        seen.append(seed)
        return picture(seed)

    outcome = run_gate(
        picture(7), AnatomyGate(threshold=0.5, budget=2), lambda i, p: check(i, p, seen), render
    )
    assert seen == [7, 7 + NEW_SEED_STEP, 7 + 2 * NEW_SEED_STEP]
    assert outcome.item.recipe.seed == 7 + NEW_SEED_STEP
    assert [r.recipe.seed for r in outcome.rejected] == [7, 7 + 2 * NEW_SEED_STEP]
    assert outcome.notes[0].startswith("Anatomy gate: no picture passed within the budget of 2 re-renders")
    assert outcome.notes[0].endswith(f"kept the best, seed {7 + NEW_SEED_STEP} (score 0.40).")


def test_a_passing_picture_is_not_rendered_again() -> None:
    def render(seed: int) -> GeneratedImage:
        raise AssertionError("no re-render")

    outcome = run_gate(picture(1), AnatomyGate(), lambda i, p: Verdict(1.0, ""), render)
    assert outcome.item.recipe.seed == 1 and outcome.notes == [] and outcome.rejected == []


@pytest.mark.parametrize("folder", ["/tmp/x", "../up", "a/../../b", "C:\\\\x", ""])
def test_set_aside_pictures_stay_inside_the_outputs_folder(folder: str) -> None:
    with pytest.raises(ValueError, match="inside the outputs folder"):
        AnatomyGate(keep_rejected=folder)
