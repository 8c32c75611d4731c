"""The demo recipe end to end with tiny models: train, resume, export, load through diffusers and Sfumato."""

import json
from pathlib import Path

import pytest
import torch

from sfumato.training.demo_recipe import DemoPlan, train_demo
from sfumato.training.export import export_demo

TINY_TEXT = {
    "vocab_size": 49408,
    "hidden_size": 32,
    "intermediate_size": 37,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "max_position_embeddings": 77,
    "hidden_act": "quick_gelu",
    "projection_dim": 32,
    "bos_token_id": 49406,
    "eos_token_id": 49407,
    "pad_token_id": 1,
}
TINY_VAE = {
    "down_block_types": ["DownEncoderBlock2D"] * 3,
    "up_block_types": ["UpDecoderBlock2D"] * 3,
    "block_out_channels": [8, 8, 8],
    "layers_per_block": 1,
    "latent_channels": 4,
    "norm_num_groups": 4,
    "mid_block_add_attention": False,
}
TINY_UNET = {
    "sample_size": 24,
    "down_block_types": ["DownBlock2D", "CrossAttnDownBlock2D"],
    "up_block_types": ["CrossAttnUpBlock2D", "UpBlock2D"],
    "block_out_channels": [16, 16],
    "layers_per_block": 1,
    "cross_attention_dim": 32,
    "attention_head_dim": 2,
    "norm_num_groups": 8,
    "addition_embed_type": "text",
    "addition_embed_type_num_heads": 2,
}


def tiny_plan(out: Path) -> DemoPlan:
    return DemoPlan(
        out=out,
        batch=2,
        pool_size=8,
        text_steps=3,
        vae_steps=2,
        unet_steps=2,
        decoder_steps=2,
        text_config=TINY_TEXT,
        vae_config=TINY_VAE,
        unet_config=TINY_UNET,
    )


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("run")
    train_demo(tiny_plan(out))
    return out


def test_a_run_stopped_after_a_stage_and_resumed_makes_the_same_model(run: Path, tmp_path: Path) -> None:
    from sfumato.training.checkpoint import latest_checkpoint, load_tensors
    from sfumato.training.demo_recipe import train_text

    train_text(tiny_plan(tmp_path))
    torch.manual_seed(12345)  # a new process starts from another random state
    train_demo(tiny_plan(tmp_path))

    for stage in ("vae", "unet", "decoder"):
        resumed, whole = (latest_checkpoint(folder / stage) for folder in (tmp_path, run))
        assert resumed is not None and whole is not None
        expected = load_tensors(whole.model_file)
        for name, tensor in load_tensors(resumed.model_file).items():
            assert torch.equal(tensor, expected[name]), (stage, name)


def test_every_stage_leaves_a_checkpoint_and_a_log(run: Path) -> None:
    for stage in ("text", "vae", "unet", "decoder"):
        assert list((run / stage).glob("checkpoint-*/model.safetensors")), stage
        assert (run / stage / "log.jsonl").read_text().strip()
    assert json.loads((run / "unet" / "latent_scale.json").read_text())["scaling_factor"] > 0


def test_export_runs_in_diffusers_and_sfumato(run: Path, tmp_path: Path) -> None:
    from diffusers import StableDiffusionPipeline

    from sfumato.core.request import GenerationRequest
    from sfumato.core.settings import Settings
    from sfumato.engine.generate import generate
    from sfumato.models.loading import load_model
    from sfumato.models.tokenizer import load_clip_tokenizer

    folder = export_demo(run, tmp_path / "model")
    card = (folder / "MODEL_CARD.md").read_text()
    assert "heart" in card and "pink" in card and "sfumato train demo" in card
    assert all(p.stat().st_size > 0 for p in folder.rglob("*.safetensors"))
    assert {p.parent.name for p in folder.rglob("*.safetensors")} == {"unet", "vae", "text_encoder"}

    pipe = StableDiffusionPipeline.from_pretrained(
        str(folder), tokenizer=load_clip_tokenizer(), local_files_only=True, dtype=torch.float32
    )
    assert pipe.scheduler.config.prediction_type == "v_prediction"
    image = pipe("a red circle", num_inference_steps=2, height=96, width=96, output_type="pil").images[0]  # pyright: ignore[reportAttributeAccessIssue]
    assert image.size == (96, 96)

    components = load_model(Settings(), str(folder))
    result = generate(components, GenerationRequest(prompt="a red circle", steps=2, seed=1))
    assert result.images[0].image.size == (96, 96)
