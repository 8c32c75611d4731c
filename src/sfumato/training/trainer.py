"""A small, generic training loop: AdamW with warm-up and cosine decay, EMA, checkpoints, resume.

The same loop trains the demo model's parts from scratch and (later) fine-tunes, textual
inversions and LoRAs: a task hands it the module whose trainable parameters it optimises
(optionally split into parameter groups with their own learning rates) and a function that
returns the loss for a step. Batches are drawn from the step number, so a resumed run sees the
same data as an uninterrupted one.
"""

from __future__ import annotations

import json
import math
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sfumato.training.checkpoint import (
    latest_checkpoint,
    load_tensors,
    optimizer_from_tensors,
    save_checkpoint,
)
from sfumato.training.ema import EMA

if TYPE_CHECKING:
    import torch
    from torch import nn

LossFn = Callable[[int], "tuple[torch.Tensor, dict[str, float]]"]


@dataclass
class TrainConfig:
    steps: int
    lr: float = 1e-3
    warmup_steps: int = 50
    min_lr_ratio: float = 0.1
    weight_decay: float = 0.0
    betas: tuple[float, float] = (0.9, 0.99)
    grad_clip: float | None = 1.0
    ema_decay: float | None = None
    checkpoint_every: int = 200
    log_every: int = 10
    seed: int = 0
    time_limit_s: float | None = None  # stop early (with a checkpoint) once this much wall time is spent


@dataclass
class ParamGroup:
    """Parameters (by name prefix) trained with their own learning-rate multiplier."""

    prefix: str
    lr_scale: float = 1.0
    weight_decay: float | None = None


@dataclass
class TrainResult:
    step: int
    finished: bool
    elapsed_s: float
    last_loss: float
    history: list[dict[str, float]] = field(default_factory=list)


def lr_at(step: int, config: TrainConfig) -> float:
    """Linear warm-up, then cosine decay to ``min_lr_ratio`` of the peak."""
    if step < config.warmup_steps:
        return config.lr * (step + 1) / config.warmup_steps
    span = max(1, config.steps - config.warmup_steps)
    progress = min(1.0, (step - config.warmup_steps) / span)
    cosine = 0.5 * (1 + math.cos(math.pi * progress))
    return config.lr * (config.min_lr_ratio + (1 - config.min_lr_ratio) * cosine)


class Trainer:
    def __init__(
        self,
        model: nn.Module,
        loss_fn: LossFn,
        config: TrainConfig,
        folder: Path,
        groups: Sequence[ParamGroup] = (),
        name: str = "train",
        on_checkpoint: Callable[[int], None] | None = None,
        on_step: Callable[[int, float], None] | None = None,
    ) -> None:
        """``on_step(step, loss)`` runs after each step; an exception from it (a cancel) stops the
        run with a checkpoint at that step, so the next run resumes there."""
        import torch

        self.model = model
        self.loss_fn = loss_fn
        self.config = config
        self.folder = folder
        self.name = name
        self.on_checkpoint = on_checkpoint
        self.on_step = on_step
        self.step = 0
        self.elapsed_s = 0.0
        torch.manual_seed(config.seed)
        self.optimizer = torch.optim.AdamW(
            self._param_groups(groups), lr=config.lr, betas=config.betas, weight_decay=config.weight_decay
        )
        self.ema = EMA(model, config.ema_decay) if config.ema_decay else None
        self.log_file = folder / "log.jsonl"

    def _param_groups(self, groups: Sequence[ParamGroup]) -> list[dict[str, Any]]:
        named = [(n, p) for n, p in self.model.named_parameters() if p.requires_grad]
        if not named:
            raise ValueError("The model has no trainable parameters.")
        result: list[dict[str, Any]] = []
        taken: set[str] = set()
        for group in groups:
            params = [p for n, p in named if n.startswith(group.prefix) and n not in taken]
            taken.update(n for n, _ in named if n.startswith(group.prefix))
            if params:
                entry: dict[str, Any] = {"params": params, "lr_scale": group.lr_scale}
                if group.weight_decay is not None:
                    entry["weight_decay"] = group.weight_decay
                result.append(entry)
        rest = [p for n, p in named if n not in taken]
        if rest:
            result.append({"params": rest, "lr_scale": 1.0})
        return result

    # -- checkpoints ---------------------------------------------------------------------------

    def resume(self) -> bool:
        """Load the newest checkpoint in ``folder``, if any. Returns whether one was loaded."""
        checkpoint = latest_checkpoint(self.folder)
        if checkpoint is None:
            return False
        state = checkpoint.state
        self.model.load_state_dict(load_tensors(checkpoint.model_file), strict=False)
        if self.ema is not None and checkpoint.ema_file.exists():
            self.ema.load_state_dict(load_tensors(checkpoint.ema_file))
        optimizer_file = checkpoint.folder / "optimizer.safetensors"
        if optimizer_file.exists():
            groups = state["optimizer_param_groups"]
            current = self.optimizer.state_dict()["param_groups"]
            for saved, live in zip(groups, current, strict=True):
                saved["params"] = live["params"]
            self.optimizer.load_state_dict(optimizer_from_tensors(load_tensors(optimizer_file), groups))
        self.step = int(state["step"])
        self.elapsed_s = float(state.get("elapsed_s", 0.0))
        return True

    def save(self) -> None:
        trainable = {n for n, p in self.model.named_parameters() if p.requires_grad}
        weights = {k: v for k, v in self.model.state_dict().items() if k in trainable or not trainable}
        save_checkpoint(
            self.folder,
            self.step,
            weights,
            {"elapsed_s": self.elapsed_s, "config": asdict(self.config), "name": self.name},
            ema=self.ema.state_dict() if self.ema else None,
            optimizer=self.optimizer.state_dict(),
        )
        if self.on_checkpoint:
            self.on_checkpoint(self.step)

    # -- the loop ------------------------------------------------------------------------------

    def fit(self) -> TrainResult:
        import torch

        config = self.config
        self.folder.mkdir(parents=True, exist_ok=True)
        history: list[dict[str, float]] = []
        last_loss = float("nan")
        record: dict[str, float] | None = None
        self.model.train()
        with _Progress(self.name, config.steps, self.step) as progress:
            started = time.perf_counter() - self.elapsed_s
            while self.step < config.steps:
                if config.time_limit_s is not None and self.elapsed_s >= config.time_limit_s:
                    break
                lr = lr_at(self.step, config)
                for group in self.optimizer.param_groups:
                    group["lr"] = lr * group.get("lr_scale", 1.0)
                loss, extra = self.loss_fn(self.step)
                self.optimizer.zero_grad(set_to_none=True)
                loss.backward()
                if config.grad_clip:
                    params = [p for g in self.optimizer.param_groups for p in g["params"]]
                    torch.nn.utils.clip_grad_norm_(params, config.grad_clip)
                self.optimizer.step()
                if self.ema is not None:
                    self.ema.update(self.model, self.step)
                self.step += 1
                self.elapsed_s = time.perf_counter() - started
                last_loss = float(loss.detach())
                progress.advance(last_loss)
                record = {
                    "step": self.step,
                    "loss": last_loss,
                    "lr": lr,
                    "elapsed_s": self.elapsed_s,
                    **extra,
                }
                if self.step % config.log_every == 0 or self.step == config.steps:
                    self._log(record, history)
                    record = None
                if self.step % config.checkpoint_every == 0:
                    self.save()
                if self.on_step is not None:
                    try:
                        self.on_step(self.step, last_loss)
                    except BaseException:
                        if self.step % config.checkpoint_every != 0:
                            self.save()
                        raise
            if record is not None:  # stopped by the time limit between two log lines
                self._log(record, history)
        self.save()
        return TrainResult(self.step, self.step >= config.steps, self.elapsed_s, last_loss, history)

    def _log(self, record: dict[str, float], history: list[dict[str, float]]) -> None:
        history.append(record)
        with self.log_file.open("a") as handle:
            handle.write(json.dumps(record) + "\n")


class _Progress:
    """A Rich progress bar on a terminal; a plain line every few percent in a log file."""

    def __init__(self, name: str, total: int, done: int) -> None:
        from rich.console import Console

        self.console = Console(stderr=True)  # stdout stays for results (a CLI's --json)
        self.name, self.total, self.done = name, total, done
        self.every = max(1, total // 50)
        self.started = time.perf_counter()
        self.start_step = done
        self.progress: Any = None

    def __enter__(self) -> _Progress:
        if self.console.is_terminal:
            from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

            self.progress = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                TextColumn("{task.completed}/{task.total}"),
                TextColumn("loss {task.fields[loss]:.4f}"),
                TimeRemainingColumn(),
                console=self.console,
            )
            self.progress.start()
            self.task = self.progress.add_task(
                self.name, total=self.total, completed=self.done, loss=float("nan")
            )
        return self

    def advance(self, loss: float) -> None:
        self.done += 1
        if self.progress is not None:
            self.progress.update(self.task, advance=1, loss=loss)
        elif self.done % self.every == 0 or self.done == self.total:
            rate = (time.perf_counter() - self.started) / max(1, self.done - self.start_step)
            eta = rate * (self.total - self.done)
            print(
                f"[{self.name}] step {self.done}/{self.total} loss {loss:.4f} {rate:.2f} s/step, "
                f"{eta:.0f} s left",
                file=sys.stderr,
                flush=True,
            )

    def __exit__(self, *exc: object) -> None:
        if self.progress is not None:
            self.progress.stop()
