"""Model folders as A1111 and ComfyUI lay them out, used in place; hashes cached; big folders list fast."""

from __future__ import annotations

import hashlib
from pathlib import Path

import torch
from safetensors.torch import save_file

from sfumato.core.settings import Settings
from sfumato.models.library import ModelLibrary


def _touch(path: Path, data: bytes = b"x") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def test_a1111_tree_kinds(tmp_path: Path) -> None:
    root = tmp_path / "stable-diffusion-webui"
    _touch(root / "models" / "Stable-diffusion" / "sdxl" / "juggernaut.safetensors")
    _touch(root / "models" / "VAE" / "vae-ft-mse.safetensors")
    _touch(root / "models" / "Lora" / "detail.safetensors")
    _touch(root / "models" / "LyCORIS" / "loha.safetensors")
    _touch(root / "embeddings" / "easynegative.pt")
    _touch(root / "models" / "ESRGAN" / "4x-UltraSharp.pth")
    _touch(root / "models" / "Stable-diffusion" / "notes.txt")
    settings = Settings()
    library = ModelLibrary(settings)

    library.add_folder(root)
    entries = {(e.kind, e.name) for e in ModelLibrary(settings).entries()}

    assert entries == {
        ("checkpoint", "sdxl/juggernaut"),
        ("vae", "vae-ft-mse"),
        ("lora", "detail"),
        ("lora", "loha"),
        ("embedding", "easynegative"),
        ("upscaler", "4x-UltraSharp"),
    }


def test_comfyui_tree_kinds(tmp_path: Path) -> None:
    root = tmp_path / "ComfyUI"
    _touch(root / "models" / "checkpoints" / "dreamshaper.safetensors")
    _touch(root / "models" / "loras" / "style.safetensors")
    _touch(root / "models" / "vae" / "sdxl_vae.safetensors")
    _touch(root / "models" / "embeddings" / "bad.safetensors")
    _touch(root / "models" / "upscale_models" / "RealESRGAN_x4.pth")

    entries = {(e.kind, e.name) for e in ModelLibrary(Settings(model_folders=[root])).entries()}

    assert entries == {
        ("checkpoint", "dreamshaper"),
        ("lora", "style"),
        ("vae", "sdxl_vae"),
        ("embedding", "bad"),
        ("upscaler", "RealESRGAN_x4"),
    }


def test_hash_is_autov2_cached_and_recomputed_when_the_file_changes(tmp_path: Path) -> None:
    path = _touch(tmp_path / "m.safetensors", b"first version")
    library = ModelLibrary(Settings(model_folders=[tmp_path]))
    calls: list[tuple[int, int]] = []

    first = library.hash_file(path, lambda done, total: calls.append((done, total)))
    again = library.hash_file(path, lambda done, total: calls.append((done, total)))
    _touch(path, b"second version, longer")
    changed = library.hash_file(path)

    assert first == hashlib.sha256(b"first version").hexdigest()[:10]
    assert again == first and len(calls) == 1  # the second call came from the cache
    assert changed == hashlib.sha256(b"second version, longer").hexdigest()[:10]


def test_resolve_by_name_hash_and_a1111_title(tmp_path: Path) -> None:
    path = _touch(tmp_path / "sub" / "My Model.safetensors", b"weights")
    library = ModelLibrary(Settings(model_folders=[tmp_path]))
    digest = library.hash_file(path)

    assert library.resolve("checkpoint", "My Model") == path
    assert library.resolve("checkpoint", "sub/My Model.safetensors") == path
    assert library.resolve("checkpoint", digest) == path
    assert library.resolve("checkpoint", f"renamed [{digest}]") == path
    assert library.resolve("checkpoint", "other") is None
    assert library.resolve("lora", "My Model") is None


def test_identify_in_listing_reads_architecture_once(tmp_path: Path) -> None:
    save_file(
        {
            "cond_stage_model.model.token_embedding.weight": torch.zeros(2, 2),
            "model.diffusion_model.input_blocks.0.0.weight": torch.zeros(4, 4, 3, 3),
        },
        str(tmp_path / "sd2-ish.safetensors"),
    )
    library = ModelLibrary(Settings(model_folders=[tmp_path]))

    first = library.entries(identify=True)
    cached = library.entries()  # no identify requested: the cached architecture still shows

    assert [e.architecture for e in first] == ["sd2"]
    assert [e.architecture for e in cached] == ["sd2"]


def test_thousands_of_files_list_without_reading_them(tmp_path: Path) -> None:
    folder = tmp_path / "models" / "Lora"
    folder.mkdir(parents=True)
    for i in range(3000):
        (folder / f"lora-{i:04}.safetensors").write_bytes(b"not even a header")
    library = ModelLibrary(Settings(model_folders=[tmp_path]))

    entries = library.entries()

    assert len(entries) == 3000
    assert all(e.architecture is None and e.hash is None for e in entries)  # nothing was opened
