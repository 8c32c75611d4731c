"""Training checkpoints: safetensors for tensors, JSON for the rest, written atomically."""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

CHECKPOINT_PREFIX = "checkpoint-"


@dataclass
class Checkpoint:
    folder: Path
    step: int

    @property
    def model_file(self) -> Path:
        return self.folder / "model.safetensors"

    @property
    def ema_file(self) -> Path:
        return self.folder / "ema.safetensors"

    @property
    def state(self) -> dict[str, Any]:
        return json.loads((self.folder / "state.json").read_text())


def list_checkpoints(folder: Path) -> list[Checkpoint]:
    found = []
    if folder.is_dir():
        for child in folder.iterdir():
            if child.name.startswith(CHECKPOINT_PREFIX) and (child / "state.json").exists():
                found.append(Checkpoint(child, int(child.name.removeprefix(CHECKPOINT_PREFIX))))
    return sorted(found, key=lambda c: c.step)


def latest_checkpoint(folder: Path) -> Checkpoint | None:
    found = list_checkpoints(folder)
    return found[-1] if found else None


def optimizer_to_tensors(state: dict[str, Any]) -> tuple[dict[str, torch.Tensor], list[dict[str, Any]]]:
    import torch

    tensors: dict[str, torch.Tensor] = {}
    for index, values in state["state"].items():
        for key, value in values.items():
            tensors[f"{index}.{key}"] = value if isinstance(value, torch.Tensor) else torch.tensor(value)
    return tensors, state["param_groups"]


def optimizer_from_tensors(tensors: dict[str, torch.Tensor], groups: list[dict[str, Any]]) -> dict[str, Any]:
    state: dict[int, dict[str, torch.Tensor]] = {}
    for name, value in tensors.items():
        index, key = name.split(".", 1)
        state.setdefault(int(index), {})[key] = value
    return {"state": state, "param_groups": groups}


def save_checkpoint(
    folder: Path,
    step: int,
    model: dict[str, torch.Tensor],
    state: dict[str, Any],
    ema: dict[str, torch.Tensor] | None = None,
    optimizer: dict[str, Any] | None = None,
    keep: int = 2,
) -> Checkpoint:
    """Write ``checkpoint-<step>`` into ``folder`` (via a temporary folder) and keep the newest ``keep``."""
    from safetensors.torch import save_file

    final = folder / f"{CHECKPOINT_PREFIX}{step:07d}"
    partial = folder / f".partial-{step:07d}"
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    save_file(
        {k: v.detach().contiguous().cpu() for k, v in model.items()}, str(partial / "model.safetensors")
    )
    if ema is not None:
        save_file({k: v.contiguous().cpu() for k, v in ema.items()}, str(partial / "ema.safetensors"))
    full_state = dict(state)
    if optimizer is not None:
        tensors, groups = optimizer_to_tensors(optimizer)
        save_file(
            {k: v.contiguous().cpu() for k, v in tensors.items()}, str(partial / "optimizer.safetensors")
        )
        full_state["optimizer_param_groups"] = groups
    (partial / "state.json").write_text(json.dumps({**full_state, "step": step}, indent=1))
    shutil.rmtree(final, ignore_errors=True)
    partial.rename(final)
    for old in list_checkpoints(folder)[:-keep]:
        shutil.rmtree(old.folder, ignore_errors=True)
    return Checkpoint(final, step)


def load_tensors(path: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(str(path))
