"""The model library browser: what each file is made for and whether it fits the frame's model;
picking the checkpoint and VAE the frame draws with; LoRAs and embeddings into the prompt."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors.torch import save_file

from sfumato.core.settings import Settings
from sfumato.desktop.model.library_view import insert_tag
from sfumato.desktop.model.preferences import load_preferences
from sfumato.models.library import ModelLibrary

ATTN = "lora_unet_down_blocks_1_attentions_0_transformer_blocks_0_attn2_to_k"


@pytest.fixture()
def library(tiny_model_folder: Path, tmp_path: Path) -> Path:
    """An A1111 folder: LoRAs and embeddings for the built-in model (128-wide) and for others, a VAE;
    plus a second checkpoint (a diffusers folder)."""
    root = tmp_path / "webui"
    for sub in ("embeddings", "models/Lora", "models/VAE"):
        (root / sub).mkdir(parents=True)
    save_file({"emb_params": torch.randn(2, 128)}, str(root / "embeddings" / "demo-style.safetensors"))
    save_file({"emb_params": torch.randn(2, 768)}, str(root / "embeddings" / "sd15-style.safetensors"))
    save_file(
        {f"{ATTN}.lora_down.weight": torch.randn(4, 128), f"{ATTN}.lora_up.weight": torch.randn(64, 4)},
        str(root / "models" / "Lora" / "demo-lora.safetensors"),
    )
    save_file(
        {f"{ATTN}.lora_down.weight": torch.randn(4, 2048), f"{ATTN}.lora_up.weight": torch.randn(640, 4)},
        str(root / "models" / "Lora" / "xl-lora.safetensors"),
    )
    save_file({"weight": torch.zeros(4)}, str(root / "models" / "VAE" / "soft-vae.safetensors"))
    library = ModelLibrary(Settings())
    library.add_folder(root)
    library.add_folder(tiny_model_folder)
    return root


def rows(panel: Any, kind: str) -> dict[str, tuple[str, ...]]:
    tree = panel.trees[kind]
    found = {}
    for index in range(tree.topLevelItemCount()):
        row = tree.topLevelItem(index)
        found[row.text(0)] = tuple(row.text(column) for column in range(1, tree.columnCount()))
    return found


def select(panel: Any, kind: str, name: str) -> None:
    panel.select_kind(kind)
    tree = panel.trees[kind]
    for index in range(tree.topLevelItemCount()):
        row = tree.topLevelItem(index)
        if row.text(0).split("  ")[0] == name:
            tree.setCurrentItem(row)
            return
    raise AssertionError(f"{name} is not listed under {kind}")


def test_the_browser_lists_each_kind_with_what_fits_the_frames_model(window: Any, library: Path) -> None:
    window.tabs.setCurrentWidget(window.models)
    panel = window.models
    assert [panel.kinds.itemText(i) for i in range(panel.kinds.count())] == [
        "Checkpoints (2)",
        "VAEs (1)",
        "LoRAs (2)",
        "Embeddings (2)",
        "Upscalers (3)",
    ]
    checkpoints = rows(panel, "checkpoint")
    assert set(checkpoints) == {"sfumato-demo  ✓", "tiny-sd"}  # the one in use is ticked
    assert panel.trees["lora"].headerItem().text(1) == "Fits sfumato-demo"
    loras = rows(panel, "lora")
    assert loras["demo-lora"][:2] == ("✓ yes", "a model whose UNet reads 128-wide text")
    assert loras["xl-lora"][:2] == ("✗ no", "SDXL")
    embeddings = rows(panel, "embedding")
    assert embeddings["demo-style"][0] == "✓ yes"
    assert embeddings["sd15-style"][0] == "✗ no" and embeddings["sd15-style"][1].startswith("SD1")
    assert list(rows(panel, "upscaler")) == ["Lanczos  ✓", "Nearest", "2x-sfumato-demo"]
    assert "soft-vae" in rows(panel, "vae")
    panel.search.setText("xl")
    assert list(rows(panel, "lora")) == ["xl-lora"]


def test_a_lora_and_an_embedding_go_into_the_prompt_and_the_request(window: Any, library: Path) -> None:
    panel, studio = window.models, window.studio
    window.tabs.setCurrentWidget(panel)
    studio.prompt.update(prompt="a red circle")
    edit = window.prompt.prompt
    cursor = edit.textCursor()
    cursor.movePosition(cursor.MoveOperation.End)
    edit.setTextCursor(cursor)
    select(panel, "lora", "demo-lora")
    panel.use.click()
    assert edit.toPlainText() == "a red circle, <lora:demo-lora:1>"
    assert panel.status.text() == "Added <lora:demo-lora:1> to the prompt."
    select(panel, "embedding", "sd15-style")
    panel.negative.click()
    assert window.prompt.negative.toPlainText() == "sd15-style"
    assert "does not fit sfumato-demo" in panel.status.text()  # said, not silently added
    request, _ = studio.request()
    assert request.prompt == "a red circle, <lora:demo-lora:1>" and request.negative_prompt == "sd15-style"


def test_picking_a_checkpoint_and_a_vae_is_what_the_frame_generates_with(
    window: Any, library: Path, fake_run: Any, qtbot: Any
) -> None:
    panel, studio = window.models, window.studio
    window.tabs.setCurrentWidget(panel)
    select(panel, "checkpoint", "tiny-sd")
    panel.use.click()
    select(panel, "vae", "soft-vae")
    panel.use.click()
    assert set(rows(panel, "checkpoint")) == {"sfumato-demo", "tiny-sd  ✓"}
    assert set(rows(panel, "vae")) == {"soft-vae  ✓"}
    assert (studio.frame.width, studio.frame.height) == (512, 512)  # an SD1 model's own size
    # the fit column now speaks of the chosen model
    assert rows(panel, "lora")["demo-lora"][0] == "✗ no"
    assert panel.trees["lora"].headerItem().text(1) == "Fits tiny-sd"
    assert "tiny-sd" in panel.current_label.text() and "soft-vae" in panel.current_label.text()
    assert load_preferences(Settings()).model == "tiny-sd"  # remembered for the next start
    studio.prompt.update(prompt="a red circle", steps=1, batch_size=1)
    assert window.generate() is not None
    qtbot.waitUntil(lambda: len(fake_run.requests) == 1, timeout=10_000)
    assert (fake_run.requests[0].model, fake_run.requests[0].vae) == ("tiny-sd", "soft-vae")
    panel.reset.click()  # back to the checkpoint's own VAE
    select(panel, "checkpoint", "tiny-sd")
    panel.reset.click()  # back to the built-in model
    assert (studio.prompt.model, studio.prompt.vae) == (None, None)
    assert (studio.frame.width, studio.frame.height) == (96, 96)


def test_the_upscaler_chosen_is_the_one_layer_upscale_uses(window: Any, library: Path) -> None:
    panel = window.models
    window.tabs.setCurrentWidget(panel)
    select(panel, "upscaler", "2x-sfumato-demo")
    panel.use.click()
    assert window.studio.upscaler == "2x-sfumato-demo"
    assert "2x-sfumato-demo  ✓" in rows(panel, "upscaler")


@pytest.mark.parametrize(
    ("text", "cursor", "expected"),
    [
        ("", 0, "<x>"),
        ("a cat", 5, "a cat, <x>"),
        ("a cat, ", 7, "a cat, <x>"),
        ("a cat, blue sky", 6, "a cat, <x>, blue sky"),
        ("(a cat", 1, "(<x>, a cat"),
    ],
)
def test_a_tag_is_written_with_commas_between_it_and_the_words_around(
    text: str, cursor: int, expected: str
) -> None:
    written, position = insert_tag(text, cursor, "<x>")
    assert written == expected and written[position - 3 : position] == "<x>"
