"""Pickles never run, whatever their name; damaged safetensors files get a clear error, not a crash."""

from __future__ import annotations

import io
import json
import os
import pickle
import struct
import zipfile
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from sfumato.core.errors import CorruptModelFile, UnsafeModelFile
from sfumato.core.settings import Settings
from sfumato.models.identify import identify_file
from sfumato.models.library import ModelLibrary
from sfumato.models.loading import load_checkpoint
from sfumato.models.safety import (
    convert_to_safetensors,
    read_safetensors_header,
    torch_is_safe_for_weights_only,
)


class _Payload:
    def __init__(self, command: str) -> None:
        self.command = command

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.system, (self.command,))


def _plain_pickle(marker: Path) -> bytes:
    return pickle.dumps({"state_dict": {"w": _Payload(f"touch {marker}")}}, protocol=2)


def _zip_pickle(marker: Path) -> bytes:
    """torch.save's container layout with a data.pkl that calls os.system."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("archive/data.pkl", pickle.dumps(_Payload(f"touch {marker}"), protocol=2))
        archive.writestr("archive/version", "3\n")
    return buffer.getvalue()


def _protocol0_pickle(marker: Path) -> bytes:
    return f"cos\nsystem\n(S'touch {marker}'\ntR.".encode()


MAKERS = {"pickle": _plain_pickle, "zip": _zip_pickle, "protocol0": _protocol0_pickle}


@pytest.fixture(
    params=[(kind, suffix) for kind in MAKERS for suffix in (".ckpt", ".safetensors", ".pt", ".bin")],
    ids=lambda p: f"{p[0]}{p[1]}",
)
def malicious(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[Path, Path]:
    kind, suffix = request.param
    marker = tmp_path / "PWNED"
    folder = tmp_path / "models" / "Stable-diffusion"
    folder.mkdir(parents=True)
    path = folder / f"leaked-sdxl{suffix}"
    path.write_bytes(MAKERS[kind](marker))
    return path, marker


def test_the_payload_really_runs_when_unpickled(tmp_path: Path) -> None:
    marker = tmp_path / "PWNED"
    pickle.loads(_plain_pickle(marker))  # the corpus is live: this is what Sfumato must never do
    assert marker.exists()


def test_loading_identifying_listing_hashing_never_run_the_payload(
    malicious: tuple[Path, Path], tmp_path: Path
) -> None:
    path, marker = malicious
    settings = Settings(model_folders=[tmp_path])

    with pytest.raises(UnsafeModelFile, match="sfumato models convert"):
        load_checkpoint(path)
    with pytest.raises(UnsafeModelFile):
        identify_file(path)
    entries = ModelLibrary(settings).entries(identify=True, hash=True)

    assert [(e.name, e.architecture) for e in entries] == [(path.stem, "unsafe")]
    assert entries[0].hash is not None and len(entries[0].hash) == 10
    assert not marker.exists()


def test_convert_refuses_a_pickle_with_code_without_running_it(malicious: tuple[Path, Path]) -> None:
    path, marker = malicious

    with pytest.raises(UnsafeModelFile):
        convert_to_safetensors(path)

    assert not marker.exists()
    assert list(path.parent.iterdir()) == [path]  # nothing written


def test_convert_writes_safetensors_with_the_same_tensors(tmp_path: Path) -> None:
    weights = {
        "model.diffusion_model.w": torch.arange(6.0).reshape(2, 3),
        "first_stage_model.b": torch.ones(4),
    }
    source = tmp_path / "old.ckpt"
    torch.save({"state_dict": weights, "global_step": 10}, source)

    target = convert_to_safetensors(source)

    from safetensors.torch import load_file

    assert target == tmp_path / "old.safetensors"
    loaded = load_file(str(target))
    assert set(loaded) == set(weights)
    assert all(torch.equal(loaded[k], weights[k]) for k in weights)
    assert not list(tmp_path.glob("*.partial"))


def test_convert_refuses_old_torch(tmp_path: Path) -> None:
    source = tmp_path / "old.ckpt"
    torch.save({"w": torch.ones(1)}, source)

    with pytest.raises(UnsafeModelFile, match="CVE-2025-32434"):
        convert_to_safetensors(source, torch_version="2.9.1+cpu")
    assert torch_is_safe_for_weights_only("2.10.0") and not torch_is_safe_for_weights_only("2.5.1")


def _valid(tmp_path: Path) -> Path:
    path = tmp_path / "good.safetensors"
    save_file({"a": torch.zeros(4, 4), "b": torch.ones(8)}, str(path))
    return path


def test_truncated_file_is_reported_as_truncated(tmp_path: Path) -> None:
    path = _valid(tmp_path)
    path.write_bytes(path.read_bytes()[:-10])

    with pytest.raises(CorruptModelFile, match="past the end of the file"):
        read_safetensors_header(path)


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.safetensors"
    path.write_bytes(b"")

    with pytest.raises(CorruptModelFile, match="is empty"):
        load_checkpoint(path)


@pytest.mark.parametrize(
    ("header", "why"),
    [
        (struct.pack("<Q", 10**12) + b"{}", "header claims"),
        (struct.pack("<Q", 9) + b"{not json", "not valid JSON"),
        (struct.pack("<Q", 2) + b"[]", "not a JSON object"),
        (b"\x01\x02", "shorter than a safetensors header"),
    ],
)
def test_corrupt_header(tmp_path: Path, header: bytes, why: str) -> None:
    path = tmp_path / "bad.safetensors"
    path.write_bytes(header)

    with pytest.raises(CorruptModelFile, match=why):
        read_safetensors_header(path)


def test_offsets_that_disagree_with_shape(tmp_path: Path) -> None:
    header = json.dumps({"w": {"dtype": "F32", "shape": [4], "data_offsets": [0, 8]}}).encode()
    path = tmp_path / "bad.safetensors"
    path.write_bytes(struct.pack("<Q", len(header)) + header + bytes(16))

    with pytest.raises(CorruptModelFile, match="wrong number of bytes"):
        read_safetensors_header(path)
