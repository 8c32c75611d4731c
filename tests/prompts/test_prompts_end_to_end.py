"""From a prompt to a saved picture: LoRAs and embeddings found in the model library, their hashes in
the picture's `parameters`, and recall giving back the prompt exactly."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import save_file

from lora_files import write_lora
from sfumato.archive.infotext import parse_infotext, request_from_infotext
from sfumato.archive.metadata import read_metadata, request_from_image
from sfumato.core.errors import ModelNotFound
from sfumato.core.request import GenerationRequest
from sfumato.core.settings import Settings
from sfumato.jobs.runner import RunOutput, run_request
from sfumato.models.components import Components
from sfumato.models.embeddings import file_sha256
from sfumato.models.lora import lora_hash

PROMPT = "a (red:1.2) shapey circle, [blue:green:0.5] <lora:sub/style:0.7>"


@pytest.fixture
def settings(tmp_path: Path, sd1: Components) -> Settings:
    """An A1111 install's models/ tree: LoRA in a sub-folder of Lora/, embeddings (one made for SD1)."""
    models = tmp_path / "webui" / "models"
    write_lora(sd1, models / "Lora" / "sub" / "style.safetensors")
    (models / "embeddings").mkdir(parents=True)
    vectors = torch.randn(2, 32, generator=torch.Generator().manual_seed(3)) * 2
    save_file({"emb_params": vectors}, str(models / "embeddings" / "shapey.safetensors"))
    save_file({"emb_params": torch.randn(1, 768)}, str(models / "embeddings" / "realsd1.safetensors"))
    return Settings(data_dir=tmp_path / "data", model_folders=[tmp_path / "webui"])


def make(settings: Settings, components: Components, prompt: str, negative: str = "blurry") -> RunOutput:
    request = GenerationRequest(prompt=prompt, negative_prompt=negative, steps=3, seed=21)
    return run_request(settings, request, components=components)


def pixels(output: RunOutput) -> np.ndarray:
    return np.asarray(Image.open(output.pictures[0].file).convert("RGB"), dtype=np.int16)


def test_lora_and_embedding_from_the_library_reach_the_saved_picture(
    settings: Settings, sd1: Components
) -> None:
    models = settings.model_folders[0] / "models"
    plain = make(settings, sd1, "a (red:1.2) circle, [blue:green:0.5]")
    full = make(settings, sd1, PROMPT)
    assert np.abs(pixels(full) - pixels(plain)).mean() > 1
    params = parse_infotext(read_metadata(full.pictures[0].file).parameters)
    assert params["Lora hashes"] == f"sub/style: {lora_hash(models / 'Lora' / 'sub' / 'style.safetensors')}"
    assert params["TI hashes"] == f"shapey: {file_sha256(models / 'embeddings' / 'shapey.safetensors')[:12]}"
    assert np.array_equal(pixels(make(settings, sd1, "a (red:1.2) circle, [blue:green:0.5]")), pixels(plain))


def test_lora_and_embedding_each_change_the_picture(settings: Settings, sd1: Components) -> None:
    plain = pixels(make(settings, sd1, "a red circle"))
    with_lora = pixels(make(settings, sd1, "a red circle <lora:style:1>"))  # found by file name alone
    with_embedding = pixels(make(settings, sd1, "a red shapey circle"))
    shapey_as_text = Settings(data_dir=settings.data_dir, model_folders=[])
    as_text = pixels(make(shapey_as_text, sd1, "a red shapey circle"))
    assert np.abs(with_lora - plain).mean() > 1
    assert np.abs(with_embedding - as_text).mean() > 1


def test_recall_restores_the_prompt_exactly(settings: Settings, sd1: Components) -> None:
    negative = "blurry, (shapey:0.5)"
    saved = make(settings, sd1, PROMPT, negative).pictures[0].file
    recalled = request_from_image(saved)
    assert (recalled.prompt, recalled.negative_prompt) == (PROMPT, negative)
    # An A1111 reader sees only the parameters text: the prompt comes back exactly from it too.
    from_text = request_from_infotext(read_metadata(saved).parameters)
    assert (from_text.prompt, from_text.negative_prompt) == (PROMPT, negative)
    again = run_request(settings, recalled, components=sd1).pictures[0].file
    assert np.array_equal(np.asarray(Image.open(again)), np.asarray(Image.open(saved)))


def test_an_embedding_for_another_architecture_is_reported(settings: Settings, sd1: Components) -> None:
    output = make(settings, sd1, "a realsd1 circle")
    assert any("'realsd1' was made for sd1" in note and "skipped" in note for note in output.notes)
    assert "TI hashes" not in parse_infotext(read_metadata(output.pictures[0].file).parameters)


def test_a_missing_lora_stops_the_job_before_anything_is_saved(settings: Settings, sd1: Components) -> None:
    with pytest.raises(ModelNotFound, match="'absent'"):
        make(settings, sd1, "a red circle <lora:absent:1>")
    assert not list(settings.outputs.rglob("*.png"))


def test_recalled_lora_renamed_in_the_library_is_found_by_its_hash(
    settings: Settings, sd1: Components
) -> None:
    from sfumato.archive.metadata import recall
    from sfumato.prompts.networks import LibraryResolver

    lora_folder = settings.model_folders[0] / "models" / "Lora"
    saved = make(settings, sd1, PROMPT).pictures[0].file
    (lora_folder / "sub" / "style.safetensors").rename(lora_folder / "renamed.safetensors")
    recalled = request_from_image(saved)
    with pytest.raises(ModelNotFound, match="'sub/style'"):
        run_request(settings, recalled, components=sd1)
    renamed, notes = recall(saved, resolve=LibraryResolver(settings))
    assert renamed.prompt == PROMPT.replace("<lora:sub/style:0.7>", "<lora:renamed:0.7>")
    assert len(notes) == 1 and "'sub/style'" in notes[0] and "'renamed'" in notes[0]
    again = run_request(settings, renamed, components=sd1).pictures[0].file
    assert np.array_equal(np.asarray(Image.open(again)), np.asarray(Image.open(saved)))


def test_lora_names_are_kept_when_found_or_when_the_hash_is_unknown(settings: Settings) -> None:
    from sfumato.prompts.networks import LibraryResolver, parse_hashes, rename_loras_by_hash

    resolver = LibraryResolver(settings)
    found = "a <lora:sub/style:0.7> circle"
    assert rename_loras_by_hash(found, "sub/style: 000000000000", resolver) == (found, [])
    unknown = "a <lora:gone:1:0.5> circle, <lyco:other>"
    assert rename_loras_by_hash(unknown, '"gone: 0123456789ab, other: ba9876543210"', resolver) == (
        unknown,
        [],
    )
    assert parse_hashes('"a: 0123456789AB, sub/b: ba9876543210"') == {
        "a": "0123456789ab",
        "sub/b": "ba9876543210",
    }
