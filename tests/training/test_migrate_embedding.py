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
from sfumato.training.textual_inversion import initial_vectors, save_embedding

pytestmark = pytest.mark.timeout(1800)
PROMPT = "a {name} circle on a white background"


@pytest.fixture(scope="module")
def demo() -> Any:
    from sfumato.core.settings import Settings
    from sfumato.models.loading import load_model

    return load_model(Settings(), None)


def colour_seeds(components: Any, word: str, folder: Path, colour: str) -> int:
    """Of 6 seeds, how many pictures of the prompt with ``word`` the judge reads in ``colour``."""
    hits = 0
    for seed in range(6):
        request = GenerationRequest(prompt=PROMPT.format(name=word), seed=100 + seed, steps=20)
        made = generate(components, request, resolve=FolderResolver([folder])).images[0]
        assert "TI hashes" in made.extra  # the word was read as the embedding
        hits += any(o.colour == colour for o in judge.judge(made.image).objects)
    return hits


@pytest.mark.slow
def test_a_migrated_embedding_draws_its_colour_on_the_other_model(demo: Any, tmp_path: Path) -> None:
    # The embedding: the first model's own vector for "green" under a new word. (A textual inversion of
    # the held-out pink drew purple on the demo model after 250 steps, so the concept is a known one.)
    folder = tmp_path / "embeddings"  # prompts find embeddings in folders of that name
    save_embedding(folder / "sfleaf.safetensors", "sfleaf", initial_vectors(demo, "green", 1), demo, 0)
    other = permuted_model(demo)
    on_first = colour_seeds(demo, "sfleaf", folder, "green")
    unmigrated = colour_seeds(other, "sfleaf", folder, "green")

    migration = MigrationConfig(
        prompts=(PROMPT, "a {name} square on a black background"), pictures=16, steps=150
    )
    migrated = migrate_embedding(demo, other, folder / "sfleaf.safetensors", migration)
    assert migrated.path == folder / "sfleaf-sfumato-demo-b.safetensors"
    on_second = colour_seeds(other, migrated.path.stem, folder, "green")
    print(
        f"green on the first model {on_first}/6, unmigrated on the second {unmigrated}/6, migrated {on_second}/6"
    )
    assert on_first >= 4 and on_second >= 4 and unmigrated < 4


def test_migration_prompts_must_place_the_word(demo: Any, tmp_path: Path) -> None:
    with pytest.raises(InvalidRequest, match="must say where"):
        migrate_embedding(demo, demo, tmp_path / "x.safetensors", MigrationConfig(prompts=("a circle",)))
