"""Training a concept end to end on tiny random models: the file in the library, refusals, cancel
and resume, samples and progress, memory estimate and refusal."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file

from sfumato.core.errors import Cancelled, InvalidRequest
from sfumato.core.events import CancelToken, StepProgress
from sfumato.core.settings import Settings
from sfumato.core.training_request import TrainingRequest
from sfumato.jobs.training import run_folder, run_training
from sfumato.models.components import Components
from sfumato.prompts.networks import LibraryResolver
from sfumato.training.world_examples import concept_examples


@pytest.fixture
def pictures(tmp_path: Path) -> Path:
    folder = tmp_path / "pictures"
    folder.mkdir()
    for index, example in enumerate(concept_examples(5, colour="pink", name="sfpink")):
        example.image.save(folder / f"{index}.png")
        (folder / f"{index}.txt").write_text(example.caption)
    return folder


def _request(pictures: Path, **fields: object) -> TrainingRequest:
    values: dict[str, object] = {
        "kind": "embedding",
        "images": str(pictures),
        "name": "sfpink",
        "init_text": "red",
        "steps": 6,
        "learning_rate": 0.05,
        "batch": 2,
        "checkpoint_every": 2,
    }
    return TrainingRequest.model_validate(values | fields)


def test_an_embedding_lands_in_the_library_in_a1111_format(sd1: Components, pictures: Path) -> None:
    settings = Settings()
    outcome = run_training(settings, _request(pictures), components=sd1)
    assert outcome.path == settings.data_dir / "models" / "embeddings" / "sfpink.safetensors"
    with safe_open(str(outcome.path), "pt") as handle:
        assert list(handle.keys()) == ["string_to_param.*"]
    assert LibraryResolver(Settings())("embedding", "sfpink") == outcome.path
    assert outcome.steps == 6 and not list(outcome.path.parent.glob(".*partial"))


def test_an_existing_name_is_refused_unless_overwrite(sd1: Components, pictures: Path) -> None:
    settings = Settings()
    first = run_training(settings, _request(pictures), components=sd1)
    before = first.path.read_bytes()
    with pytest.raises(InvalidRequest, match=r"already an embedding called 'sfpink'.*--overwrite"):
        run_training(settings, _request(pictures, steps=8), components=sd1)
    assert first.path.read_bytes() == before
    again = run_training(settings, _request(pictures, steps=8, overwrite=True), components=sd1)
    assert again.path == first.path and again.steps == 8 and again.path.read_bytes() != before


def test_a_cancelled_run_writes_nothing_and_resumes_to_the_same_file(
    sd1: Components, pictures: Path, tmp_path: Path
) -> None:
    settings = Settings()
    cancel = CancelToken()

    def stop_at_three(progress: StepProgress) -> None:
        if progress.step == 3:
            cancel.cancel()

    request = _request(pictures)
    with pytest.raises(Cancelled):
        run_training(settings, request, components=sd1, on_progress=stop_at_three, cancel=cancel)
    assert LibraryResolver(settings)("embedding", "sfpink") is None
    resumed = run_training(settings, request, components=sd1)
    assert resumed.resumed_from == 3 and resumed.steps == 6

    other = Settings(data_dir=tmp_path / "elsewhere")
    straight = run_training(other, request, components=sd1)
    assert straight.resumed_from == 0
    assert torch.equal(
        load_file(str(resumed.path))["string_to_param.*"], load_file(str(straight.path))["string_to_param.*"]
    )


def test_a_lora_lands_in_the_lora_folder_with_samples_and_loss(sd1: Components, pictures: Path) -> None:
    settings = Settings()
    seen: list[StepProgress] = []
    request = _request(
        pictures,
        kind="lora",
        name="pinkish",
        init_text="*",
        trigger="sfpink",
        sample_every=3,
        learning_rate=0.01,
    )
    outcome = run_training(settings, request, components=sd1, on_progress=seen.append)
    assert outcome.path == settings.data_dir / "models" / "Lora" / "pinkish.safetensors"
    tensors = load_file(str(outcome.path))
    assert any(k.startswith("lora_unet_") and k.endswith(".lora_down.weight") for k in tensors)
    assert [p.step for p in seen] == [1, 2, 3, 4, 5, 6]
    assert all(p.loss is not None and p.loss > 0 for p in seen)
    assert [p.step for p in seen if p.preview is not None] == [3, 6]
    assert [p.name for p in outcome.samples] == ["step-000003.png", "step-000006.png"]
    assert all(p.is_file() and p.parent == run_folder(settings, request) / "samples" for p in outcome.samples)


def test_a_run_that_does_not_fit_in_memory_is_refused_before_training(
    sd1: Components, pictures: Path
) -> None:
    settings = Settings()
    with pytest.raises(
        InvalidRequest, match=r"needs about .* GiB beyond the loaded model.*--gradient-checkpointing"
    ):
        run_training(settings, _request(pictures, memory_limit_mb=1), components=sd1)
    assert LibraryResolver(settings)("embedding", "sfpink") is None
    assert not (run_folder(settings, _request(pictures)) / "checkpoints").exists()


def test_memory_options_lower_the_estimate(sd1: Components) -> None:
    from sfumato.training.memory import estimate_memory

    def estimate(**options: object) -> int:
        return estimate_memory(
            sd1,
            trainable_parameters=32,
            batch=4,
            size=64,
            text_gradients=True,
            **options,  # pyright: ignore[reportArgumentType]
        ).training

    plain = estimate()
    assert estimate(gradient_checkpointing=True) < plain
    assert estimate(mixed_precision="bf16") < plain
    assert estimate(cache_latents=False) > plain


def test_gradient_checkpointing_and_mixed_precision_train_the_same_embedding_closely(
    sd1: Components, pictures: Path, tmp_path: Path
) -> None:
    plain = run_training(Settings(data_dir=tmp_path / "a"), _request(pictures), components=sd1)
    checkpointed = run_training(
        Settings(data_dir=tmp_path / "b"), _request(pictures, gradient_checkpointing=True), components=sd1
    )
    bf16 = run_training(
        Settings(data_dir=tmp_path / "c"), _request(pictures, mixed_precision="bf16"), components=sd1
    )
    from sfumato.training.textual_inversion import initial_vectors

    start = initial_vectors(sd1, "red", 1)
    vectors = [load_file(str(o.path))["string_to_param.*"] for o in (plain, checkpointed, bf16)]
    assert torch.allclose(vectors[0], vectors[1], atol=1e-5)
    # bf16 rounds the gradients, and Adam's steps follow their signs: the same direction, not the same values
    moved, moved_bf16 = (vectors[0] - start).flatten(), (vectors[2] - start).flatten()
    assert torch.cosine_similarity(moved, moved_bf16, dim=0) > 0.8
    assert not getattr(sd1.unet, "gradient_checkpointing", False)  # the model is left as it was
