"""Carrying an embedding to a model whose text vectors differ (the demo model with permuted text
channels): the judge reads the concept from the migrated embedding on the new model."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from permuted_demo import permuted_model

from sfumato.core.errors import InvalidRequest
from sfumato.core.request import GenerationRequest
from sfumato.demo import judge
from sfumato.engine.generate import generate
from sfumato.prompts.networks import FolderResolver
from sfumato.training.migrate_embedding import MigrationConfig, migrate_embedding
from sfumato.training.textual_inversion import TextualInversionConfig, train_textual_inversion
from sfumato.training.world_examples import concept_examples

pytestmark = pytest.mark.timeout(1800)
PROMPT = "a {name} circle on a white background"


@pytest.fixture(scope="module")
def demo() -> Any:
    from sfumato.core.settings import Settings
    from sfumato.models.loading import load_model

    return load_model(Settings(), None)


def pink_seeds(components: Any, word: str, folder: Path) -> int:
    """Of 6 seeds, how many pictures of the prompt with ``word`` the judge reads as pink."""
    hits = 0
    for seed in range(6):
        request = GenerationRequest(prompt=PROMPT.format(name=word), seed=100 + seed, steps=20)
        picture = generate(components, request, resolve=FolderResolver([folder])).images[0].image
        hits += any(o.colour == "pink" for o in judge.judge(picture).objects)
    return hits


@pytest.mark.slow
def test_a_migrated_embedding_brings_the_held_out_colour_to_the_other_model(
    demo: Any, tmp_path: Path
) -> None:
    examples = concept_examples(32, colour="pink", name="sfpink")
    config = TextualInversionConfig(
        "sfpink", init_text="red", steps=150, lr=0.02, batch=8, checkpoint_every=1000
    )
    trained = train_textual_inversion(demo, examples, config, tmp_path)
    other = permuted_model(demo)
    on_first = pink_seeds(demo, "sfpink", tmp_path)
    unmigrated = pink_seeds(other, "sfpink", tmp_path)

    migration = MigrationConfig(
        prompts=(PROMPT, "a {name} square on a black background"), pictures=16, steps=150
    )
    migrated = migrate_embedding(demo, other, trained.path, migration)
    assert migrated.path == tmp_path / "sfpink-sfumato-demo-b.safetensors"
    on_second = pink_seeds(other, migrated.path.stem, tmp_path)
    print(
        f"pink on the first model {on_first}/6, unmigrated on the second {unmigrated}/6, migrated {on_second}/6"
    )
    assert on_second >= 4 and unmigrated < 4


def test_migration_prompts_must_place_the_word(demo: Any, tmp_path: Path) -> None:
    with pytest.raises(InvalidRequest, match="must say where"):
        migrate_embedding(demo, demo, tmp_path / "x.safetensors", MigrationConfig(prompts=("a circle",)))
