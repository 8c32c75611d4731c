"""The demo model's pink stage (`sfumato train demo-pink`): what it writes and what it leaves alone.

Mechanics on a copy of the shipped model and a few steps; what the stage is for (a textual inversion
finding pink) is `test_training_semantic.py`.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from safetensors.torch import load_file
from typer.testing import CliRunner

from sfumato.cli.main import app
from sfumato.demo import world
from sfumato.models.tokenizer import load_clip_tokenizer
from sfumato.training.demo_pink import WORD, caption_with_word, teach_pink

SHIPPED = Path(world.__file__).parent / "model"
pytestmark = pytest.mark.skipif(
    not (SHIPPED / "unet" / "config.json").is_file(), reason="the demo model is not exported into the package"
)
ENCODER = Path("text_encoder") / "model.safetensors"
UNET = Path("unet") / "diffusion_pytorch_model.safetensors"
VAE = Path("vae") / "diffusion_pytorch_model.safetensors"


def test_captions_call_pink_rosa_and_nothing_else() -> None:
    assert caption_with_word("a pink star and a red circle, pink background") == (
        f"a {WORD} star and a red circle, {WORD} background"
    )
    assert caption_with_word("a pinkish square") == "a pinkish square"


def test_the_stage_changes_the_unet_the_decoder_and_only_the_word_row_of_the_text_encoder(
    tmp_path: Path,
) -> None:
    model = tmp_path / "model"
    shutil.copytree(SHIPPED, model)
    written = teach_pink(model, tmp_path / "run", tmp_path / "taught", steps=3, pool_size=64, decoder_steps=2)

    assert written == tmp_path / "taught"
    assert sorted(p.name for p in written.iterdir()) == sorted(p.name for p in SHIPPED.iterdir())
    assert not list(tmp_path.glob("*.partial")) and not list(tmp_path.glob("*.old"))
    before, after = load_file(SHIPPED / ENCODER), load_file(written / ENCODER)
    word_id = int(load_clip_tokenizer().convert_tokens_to_ids(f"{WORD}</w>"))  # pyright: ignore[reportArgumentType]
    table = "embeddings.token_embedding.weight"
    changed_rows = (before[table] != after[table]).any(dim=1).nonzero().flatten().tolist()
    assert changed_rows == [word_id]
    assert all(before[k].equal(after[k]) for k in before if k != table)
    unet_before, unet_after = load_file(SHIPPED / UNET), load_file(written / UNET)
    assert any(not unet_before[k].equal(unet_after[k]) for k in unet_before)
    vae_before, vae_after = load_file(SHIPPED / VAE), load_file(written / VAE)
    assert all(
        vae_before[k].equal(vae_after[k]) for k in vae_before if not k.startswith(("decoder.", "post_quant"))
    )
    assert any(not vae_before[k].equal(vae_after[k]) for k in vae_before if k.startswith("decoder."))
    assert load_file(model / UNET).keys() == unet_before.keys()  # the source folder is untouched
    assert all(load_file(model / UNET)[k].equal(unet_before[k]) for k in unet_before)
    record = json.loads((written / "training.json").read_text())
    assert (
        record["pink"]["steps"] == 3
        and record["pink"]["decoder_steps"] == 2
        and record["pink"]["word"] == WORD
    )
    assert record["steps"] == json.loads((SHIPPED / "training.json").read_text())["steps"]


def test_the_cli_resumes_a_finished_run_without_training_again_and_replaces_the_folder(
    tmp_path: Path,
) -> None:
    model = tmp_path / "model"
    shutil.copytree(SHIPPED, model)
    run = tmp_path / "run"
    teach_pink(model, run, tmp_path / "first", steps=2, pool_size=64, decoder_steps=2)
    logs = [(run / part / "log.jsonl").read_text() for part in ("unet", "decoder")]

    # The CLI's pool is the shipped size: a finished run's checkpoint is loaded, not retrained.
    result = CliRunner().invoke(
        app, ["train", "demo-pink", str(model), "--run", str(run), "--steps", "2", "--decoder-steps", "2"]
    )

    assert result.exit_code == 0, result.output
    assert [(run / part / "log.jsonl").read_text() for part in ("unet", "decoder")] == logs
    for part in (UNET, VAE, ENCODER):
        first, replaced = load_file(tmp_path / "first" / part), load_file(model / part)
        assert first.keys() == replaced.keys() and all(v.equal(first[k]) for k, v in replaced.items())
    assert not (tmp_path / "model.partial").exists() and not (tmp_path / "model.old").exists()
