"""A user's existing A1111 or ComfyUI install, used in place with the network unplugged: add, list, generate."""

from __future__ import annotations

import hashlib
import json
import socket
from pathlib import Path
from typing import Any

import pytest
from ldm_writer import vae_to_ldm, write_checkpoint
from PIL import Image
from tiny_ldm import TinyModel, build_tiny
from typer.testing import CliRunner

from sfumato.cli.main import app

runner = CliRunner()
# what the identifier names each file's shipped configuration (tiny ones stand in for them here)
CONFIG_NAMES = {"sd1": "sd1", "sd2": "sd2-512", "sdxl": "sdxl"}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> dict[str, TinyModel]:
    root = tmp_path_factory.mktemp("tiny-configs")
    return {arch: build_tiny(arch, root / arch, seed=i) for i, arch in enumerate(CONFIG_NAMES)}


@pytest.fixture(autouse=True)
def network_unplugged(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError(f"Sfumato tried to reach the network: {args}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


@pytest.fixture(autouse=True)
def tiny_configs(tiny: dict[str, TinyModel], monkeypatch: pytest.MonkeyPatch) -> None:
    from sfumato.models import loading

    by_name = {name: tiny[arch].config_dir for arch, name in CONFIG_NAMES.items()}
    monkeypatch.setattr(loading, "config_folder", lambda name: by_name[name])


def a1111_install(root: Path, tiny: dict[str, TinyModel]) -> dict[str, Path]:
    checkpoints = root / "models" / "Stable-diffusion"
    for folder in (checkpoints / "XL", root / "models" / "VAE"):
        folder.mkdir(parents=True)
    files = {
        "sd1": tiny["sd1"].write(checkpoints / "dreamshaper_8.safetensors"),
        "sd2": tiny["sd2"].write(checkpoints / "v2-1_512-ema-pruned.safetensors"),
        "sdxl": tiny["sdxl"].write(checkpoints / "XL" / "juggernautXL.safetensors"),
    }
    other = build_tiny("sd1", root / "other-vae-config", seed=9)
    files["vae"] = write_checkpoint(root / "models" / "VAE" / "vae-ft-mse.safetensors", vae_to_ldm(other.vae))
    return files


def comfyui_install(root: Path, tiny: dict[str, TinyModel]) -> dict[str, Path]:
    (root / "models" / "checkpoints").mkdir(parents=True)
    return {"sd1": tiny["sd1"].write(root / "models" / "checkpoints" / "comfy_sd15.safetensors")}


def autov2(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:10]


def generate(model: str, outputs: Path, *extra: str) -> Path:
    result = runner.invoke(
        app,
        ["generate", "a castle", "--model", model, "--steps", "2", "--seed", "3", "--width", "64",
         "--height", "64", "-o", str(outputs), *extra],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    return Path(result.stdout.strip())


def parameters(path: Path) -> str:
    with Image.open(path) as image:
        assert image.size == (64, 64)
        return image.info["parameters"]


def test_every_checkpoint_of_an_a1111_install_is_listed_and_generates(
    tiny: dict[str, TinyModel], tmp_path: Path
) -> None:
    files = a1111_install(tmp_path / "stable-diffusion-webui", tiny)
    outputs = tmp_path / "out"

    added = runner.invoke(app, ["models", "add-folder", str(tmp_path / "stable-diffusion-webui")])
    listed = runner.invoke(app, ["models", "list", "--json", "--hash"])

    assert added.exit_code == 0, added.output
    assert listed.exit_code == 0, listed.output
    entries = {e["name"]: e for e in json.loads(listed.stdout) if e["name"] != "sfumato-demo"}
    assert {name: (e["kind"], e["architecture"], e["hash"]) for name, e in entries.items()} == {
        "dreamshaper_8": ("checkpoint", "sd1", autov2(files["sd1"])),
        "v2-1_512-ema-pruned": ("checkpoint", "sd2", autov2(files["sd2"])),
        "XL/juggernautXL": ("checkpoint", "sdxl", autov2(files["sdxl"])),  # named as A1111 names it
        "vae-ft-mse": ("vae", "vae", autov2(files["vae"])),  # SD1, SD2 and SDXL VAEs share one layout
    }
    for arch, name in (("sd1", "dreamshaper_8"), ("sd2", "v2-1_512-ema-pruned"), ("sdxl", "XL/juggernautXL")):
        text = parameters(generate(name, outputs))
        # A1111 writes the file's stem, without its subfolder
        assert f"Model hash: {autov2(files[arch])}, Model: {files[arch].stem}," in text, text
    assert files["sd1"].is_file() and not list((tmp_path / "stable-diffusion-webui").rglob("*.tmp"))


def test_a1111_vae_by_name_goes_into_the_picture_and_its_metadata(
    tiny: dict[str, TinyModel], tmp_path: Path
) -> None:
    files = a1111_install(tmp_path / "webui", tiny)
    assert runner.invoke(app, ["models", "add-folder", str(tmp_path / "webui")]).exit_code == 0

    plain = generate("dreamshaper_8", tmp_path / "a")
    with_vae = generate("dreamshaper_8", tmp_path / "b", "--vae", "vae-ft-mse")

    assert f"VAE hash: {autov2(files['vae'])}, VAE: vae-ft-mse" in parameters(with_vae)
    assert "VAE:" not in parameters(plain)
    with Image.open(plain) as a, Image.open(with_vae) as b:
        assert a.tobytes() != b.tobytes()  # same latents, another decoder


def test_a_comfyui_install_is_used_in_place(tiny: dict[str, TinyModel], tmp_path: Path) -> None:
    files = comfyui_install(tmp_path / "ComfyUI", tiny)
    assert runner.invoke(app, ["models", "add-folder", str(tmp_path / "ComfyUI")]).exit_code == 0

    by_name = generate("comfy_sd15", tmp_path / "a")
    by_hash = generate(autov2(files["sd1"]), tmp_path / "b")

    assert f"Model hash: {autov2(files['sd1'])}, Model: comfy_sd15" in parameters(by_name)
    with Image.open(by_name) as a, Image.open(by_hash) as b:
        assert a.tobytes() == b.tobytes()
