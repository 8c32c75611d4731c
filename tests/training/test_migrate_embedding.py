"""Carrying an embedding to a model whose text vectors differ (the demo model with permuted text
channels): the judge reads the held-out concept from the migrated embedding on the new model; and
the mechanics (which pictures are kept, where training starts, resuming, the file) on tiny models."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest
from permuted_demo import permuted_model

from sfumato.core.errors import InvalidRequest
from sfumato.core.request import GenerationRequest
from sfumato.demo import judge
from sfumato.engine.generate import generate
from sfumato.models.embeddings import load_embedding
from sfumato.prompts.networks import FolderResolver
from sfumato.training.migrate_embedding import MigrationConfig, migrate_embedding, shares_text_encoder
from sfumato.training.textual_inversion import initial_vectors, save_embedding

PROMPT = "a large {name} circle in the center on a gray background"


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


def shows_pink(picture: Any) -> bool:
    return any(o.colour == "pink" for o in judge.judge(picture).objects)


@pytest.fixture(scope="module")
def pink_on_first(demo: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An embedding 'sfpink' that teaches the held-out pink to the demo model, from real pictures."""
    from sfumato.training.textual_inversion import TextualInversionConfig, train_textual_inversion
    from sfumato.training.world_examples import concept_examples

    folder = tmp_path_factory.mktemp("models") / "embeddings"  # prompts find embeddings in this folder
    train_textual_inversion(
        demo,
        concept_examples(16, colour="pink", name="sfpink"),
        TextualInversionConfig(
            "sfpink", init_text="purple", steps=400, lr=0.1, batch=4, checkpoint_every=1000
        ),
        folder,
    )
    return folder


@pytest.mark.slow
@pytest.mark.timeout(1800)  # trains an embedding on the first model, then migrates it (minutes on one core)
def test_a_migrated_embedding_draws_the_held_out_pink_on_the_other_model(
    demo: Any, pink_on_first: Path
) -> None:
    # Measured on the shipped model (seeds 100-105, judged; the same at 1 and 2 threads): the embedding
    # draws pink on the first model 6/6; unmigrated on the second 0/6 (green); migrated 6/6. About 2 min
    # at one thread. From 8 pictures and 300 steps the first model read pink in 4/6 (red in the others).
    # Learning from the drawn pictures with the noise as the target (match_old_model=False) reached 0/6
    # (purple, the start word) with this recipe; matching the first model's prediction is what works.
    other = permuted_model(demo)
    on_first = colour_seeds(demo, "sfpink", pink_on_first, "pink")
    unmigrated = colour_seeds(other, "sfpink", pink_on_first, "pink")
    migration = MigrationConfig(
        prompts=(
            PROMPT,
            "a large {name} square on a gray background",
            "a {name} circle on a gray background",
        ),
        pictures=24,
        steps=300,
        lr=0.1,
        init_text="purple",
        keep=shows_pink,  # only the pictures where the first model drew the concept
    )
    migrated = migrate_embedding(demo, other, pink_on_first / "sfpink.safetensors", migration)
    assert migrated.path == pink_on_first / "sfpink-sfumato-demo-b.safetensors"
    on_second = colour_seeds(other, migrated.path.stem, pink_on_first, "pink")
    print(
        f"pink on the first model {on_first}/6, unmigrated on the second {unmigrated}/6, migrated {on_second}/6"
    )
    assert on_first >= 4 and on_second >= 4 and unmigrated < 4


# -- mechanics, on tiny random models ---------------------------------------------------------------


def _tiny(seed: int, name: str) -> Any:
    from tiny import tiny_components

    components = tiny_components(seed=seed)
    return dataclasses.replace(components, info=dataclasses.replace(components.info, name=name))


@pytest.fixture(scope="module")
def tinies() -> tuple[Any, Any]:
    return _tiny(0, "tiny-a"), _tiny(1, "tiny-b")


def _embedding(folder: Path, model: Any) -> Path:
    return save_embedding(folder / "sfword.safetensors", "sfword", initial_vectors(model, "red", 2), model, 0)


def test_text_encoders_are_shared_only_when_their_token_vectors_agree(tinies: tuple[Any, Any]) -> None:
    first, second = tinies
    assert shares_text_encoder(first, _tiny(0, "tiny-a2"))
    assert not shares_text_encoder(first, second)


def test_migration_keeps_the_accepted_pictures_resumes_and_writes_beside(
    tinies: tuple[Any, Any], tmp_path: Path
) -> None:
    first, second = tinies
    original = _embedding(tmp_path, first)
    seen: list[int] = []

    def every_other(picture: Any) -> bool:
        seen.append(1)
        return len(seen) % 2 == 0

    config = MigrationConfig(pictures=2, picture_steps=2, steps=2, batch=2, keep=every_other)
    migrated = migrate_embedding(first, second, original, config)
    assert migrated.path == tmp_path / "sfword-tiny-b.safetensors" and migrated.result.step == 2
    work = tmp_path / "sfword-tiny-b.migration"
    drawn = sorted(p.name for p in work.glob("*.png"))
    assert drawn == ["000.png", "001.png", "002.png", "003.png"]  # 4 drawn for 2 kept
    written = load_embedding(migrated.path)
    assert written.tokens == 2 and written.vectors["clip"].shape == (2, 32)

    stamps = {p.name: p.stat().st_mtime_ns for p in work.glob("*.png")}
    again = migrate_embedding(first, second, original, config)  # resumed: nothing drawn or trained again
    assert {p.name: p.stat().st_mtime_ns for p in work.glob("*.png")} == stamps
    assert again.result.step == 2 and (again.vectors == migrated.vectors).all()


def test_training_starts_from_the_vectors_only_on_a_shared_text_encoder(
    tinies: tuple[Any, Any], tmp_path: Path
) -> None:
    first, second = tinies
    original = _embedding(tmp_path, first)
    config = MigrationConfig(pictures=1, picture_steps=2, steps=0, init_text="blue")
    shared = migrate_embedding(first, _tiny(0, "tiny-a2"), original, config)
    assert (shared.vectors == initial_vectors(first, "red", 2)).all()  # the embedding as it was
    other = migrate_embedding(first, second, original, config)
    assert (other.vectors == initial_vectors(second, "blue", 2)).all()  # the new model's own word


def test_migration_that_keeps_too_few_pictures_is_refused_and_writes_nothing(
    tinies: tuple[Any, Any], tmp_path: Path
) -> None:
    first, second = tinies
    original = _embedding(tmp_path, first)
    config = MigrationConfig(pictures=2, picture_steps=2, steps=2, keep=lambda picture: False, attempts=3)
    with pytest.raises(InvalidRequest, match="Only 0 of 3 pictures"):
        migrate_embedding(first, second, original, config)
    assert not (tmp_path / "sfword-tiny-b.safetensors").exists()


def test_migration_prompts_must_place_the_word() -> None:
    with pytest.raises(InvalidRequest, match="must say where"):
        MigrationConfig(prompts=("a circle",))
