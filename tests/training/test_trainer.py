import json
from pathlib import Path

import pytest
import torch
from torch import nn

from sfumato.training.checkpoint import list_checkpoints
from sfumato.training.trainer import ParamGroup, TrainConfig, Trainer, lr_at


def _task(seed: int = 0) -> tuple[nn.Module, object]:
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 1))
    truth = torch.tensor([[1.0], [-2.0], [0.5], [3.0]])

    def loss_fn(step: int) -> tuple[torch.Tensor, dict[str, float]]:
        x = torch.randn(16, 4, generator=torch.Generator().manual_seed(step))
        return nn.functional.mse_loss(model(x), x @ truth), {}

    return model, loss_fn


def _config(steps: int) -> TrainConfig:
    return TrainConfig(steps=steps, lr=3e-2, warmup_steps=3, ema_decay=0.9, checkpoint_every=5, log_every=1)


def test_loss_falls_and_is_logged(tmp_path: Path) -> None:
    model, loss_fn = _task()
    result = Trainer(model, loss_fn, _config(60), tmp_path).fit()  # pyright: ignore[reportArgumentType]
    assert result.finished and result.step == 60
    losses = [json.loads(line)["loss"] for line in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert len(losses) == 60
    assert sum(losses[-5:]) < 0.2 * sum(losses[:5])


def test_resumed_run_matches_an_uninterrupted_one(tmp_path: Path) -> None:
    model, loss_fn = _task()
    Trainer(model, loss_fn, _config(12), tmp_path / "straight").fit()  # pyright: ignore[reportArgumentType]

    first, first_loss = _task()

    def interrupted(step: int) -> tuple[torch.Tensor, dict[str, float]]:
        if step == 7:
            raise KeyboardInterrupt
        return first_loss(step)  # pyright: ignore[reportCallIssue]

    with pytest.raises(KeyboardInterrupt):
        Trainer(first, interrupted, _config(12), tmp_path / "split").fit()
    again, again_loss = _task(seed=1)  # different starting weights: everything must come from the checkpoint
    resumed = Trainer(again, again_loss, _config(12), tmp_path / "split")  # pyright: ignore[reportArgumentType]
    assert resumed.resume() and resumed.step == 5
    resumed.fit()
    for a, b in zip(model.parameters(), again.parameters(), strict=True):
        assert torch.allclose(a, b, atol=1e-6)
    assert [c.step for c in list_checkpoints(tmp_path / "split")] == [10, 12]


def test_time_limit_stops_with_a_checkpoint(tmp_path: Path) -> None:
    model, loss_fn = _task()
    config = _config(1000)
    config.time_limit_s = 0.0
    result = Trainer(model, loss_fn, config, tmp_path).fit()  # pyright: ignore[reportArgumentType]
    assert not result.finished
    assert list_checkpoints(tmp_path)


def test_param_groups_scale_the_learning_rate(tmp_path: Path) -> None:
    model, loss_fn = _task()
    last = model.get_submodule("2")
    assert isinstance(last, nn.Linear)
    frozen_before = last.weight.detach().clone()
    trainer = Trainer(model, loss_fn, _config(5), tmp_path, groups=[ParamGroup("2.", lr_scale=0.0)])  # pyright: ignore[reportArgumentType]
    trainer.fit()
    assert torch.equal(last.weight, frozen_before)


def test_no_trainable_parameters_is_an_error(tmp_path: Path) -> None:
    model, loss_fn = _task()
    model.requires_grad_(False)
    with pytest.raises(ValueError, match="no trainable"):
        Trainer(model, loss_fn, _config(5), tmp_path)  # pyright: ignore[reportArgumentType]


def test_learning_rate_warms_up_then_decays() -> None:
    config = TrainConfig(steps=100, lr=1.0, warmup_steps=10, min_lr_ratio=0.1)
    assert lr_at(0, config) == pytest.approx(0.1)
    assert lr_at(9, config) == pytest.approx(1.0)
    assert lr_at(55, config) == pytest.approx(0.55)
    assert lr_at(100, config) == pytest.approx(0.1)
