"""LoRA training: low-rank adapters on a frozen model, learned from captioned pictures.

Each targeted layer (a Linear or Conv2d of the UNet, and optionally of the text encoder) gets a
pair ``down`` (rank x in) and ``up`` (out x rank, starting at zero) whose output, scaled by
``alpha / rank``, is added to the layer's output through a forward hook while training. The
result is saved in kohya's format (``lora_unet_…``/``lora_te_…`` keys with ``lora_down``,
``lora_up`` and ``alpha``), the format A1111, ComfyUI and Sfumato load.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from sfumato.core.errors import InvalidRequest
from sfumato.training.diffusion import (
    DenoisingLoss,
    Example,
    PictureLatents,
    caption_ids,
    check_trainable,
    frozen,
    memory_options,
    save_atomically,
    text_conditioning,
)
from sfumato.training.trainer import TrainConfig, Trainer, TrainResult

if TYPE_CHECKING:
    import torch

    from sfumato.models.components import Components

# kohya's default targets: the attention projections of the UNet's transformer blocks.
UNET_ATTENTION = tuple(f"attn{i}.{name}" for i in (1, 2) for name in ("to_q", "to_k", "to_v", "to_out.0"))
TEXT_ATTENTION = ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.out_proj")


@dataclass(frozen=True)
class LoraTrainingConfig:
    name: str  # file name; used in prompts as <lora:name:weight>
    rank: int = 4
    alpha: float | None = None  # None: equal to rank (scale 1)
    unet_targets: tuple[str, ...] = UNET_ATTENTION  # module-name endings
    text_encoder_targets: tuple[str, ...] = ()  # e.g. TEXT_ATTENTION to train the text encoder too
    steps: int = 500
    lr: float = 1e-4
    batch: int = 4
    warmup_steps: int = 0
    seed: int = 0
    checkpoint_every: int = 100
    gradient_checkpointing: bool = False
    mixed_precision: str = "no"  # "bf16" or "fp16": autocast for the frozen model's passes
    cache_latents: bool = True


@dataclass(frozen=True)
class TrainedLora:
    path: Path
    layers: int
    result: TrainResult


class LoraAdapters:
    """The adapters of one model, by kohya name; ``module`` holds their parameters for the Trainer."""

    def __init__(self, components: Components, config: LoraTrainingConfig) -> None:
        import torch
        from torch import nn

        from sfumato.models.lora import kohya_module_table

        self.scale = (config.alpha or config.rank) / config.rank
        self.alpha = float(config.alpha or config.rank)
        self.targets: dict[str, Any] = {}
        generator = torch.Generator().manual_seed(config.seed)
        downs, ups = nn.ParameterDict(), nn.ParameterDict()
        for kohya, (model, layer) in kohya_module_table(components).items():
            endings = config.unet_targets if model == "unet" else config.text_encoder_targets
            if kohya.startswith("lora_te_") and model == "te1":
                continue  # SDXL's first encoder is listed twice (lora_te_ and lora_te1_)
            if not endings or not isinstance(layer, nn.Linear | nn.Conv2d):
                continue
            if not any(kohya.endswith("_" + ending.replace(".", "_")) for ending in endings):
                continue
            weight = layer.weight
            kernel = weight.shape[2:]
            down = torch.empty(config.rank, weight.shape[1], *kernel)
            nn.init.kaiming_uniform_(down, a=5**0.5, generator=generator)
            key = kohya.replace("_", "-")  # ParameterDict keys may not contain "."
            downs[key] = nn.Parameter(down.to(weight.device))
            ups[key] = nn.Parameter(
                torch.zeros(weight.shape[0], config.rank, *[1] * len(kernel)).to(weight.device)
            )
            self.targets[kohya] = layer
        if not self.targets:
            raise InvalidRequest(
                f"No layer of {components.info.name} matches the LoRA targets "
                f"{', '.join(config.unet_targets + config.text_encoder_targets)}.",
                "Name module endings that exist in the model, e.g. attn2.to_k.",
            )
        self.module = nn.ModuleDict({"down": downs, "up": ups})

    def _pair(self, kohya: str) -> tuple[torch.Tensor, torch.Tensor]:
        key = kohya.replace("_", "-")
        return self.module["down"][key], self.module["up"][key]  # pyright: ignore[reportIndexIssue]

    @contextmanager
    def hooked(self) -> Iterator[None]:
        """The adapters add their output to their layers' outputs while the block runs."""
        from torch.nn import functional

        handles = []
        for kohya, layer in self.targets.items():
            down, up = self._pair(kohya)

            def add(module: Any, args: Any, output: Any, down: Any = down, up: Any = up) -> Any:
                x = args[0]
                if down.dim() == 2:
                    low = functional.linear(functional.linear(x.to(down.dtype), down), up)
                else:
                    low = functional.conv2d(
                        x.to(down.dtype),
                        down,
                        stride=module.stride,
                        padding=module.padding,
                        dilation=module.dilation,
                    )
                    low = functional.conv2d(low, up)
                return output + (low * self.scale).to(output.dtype)

            handles.append(layer.register_forward_hook(add))
        try:
            yield
        finally:
            for handle in handles:
                handle.remove()

    def kohya_tensors(self) -> dict[str, torch.Tensor]:
        import torch

        tensors: dict[str, torch.Tensor] = {}
        for kohya in self.targets:
            down, up = self._pair(kohya)
            tensors[f"{kohya}.lora_down.weight"] = down.detach().float().cpu().contiguous()
            tensors[f"{kohya}.lora_up.weight"] = up.detach().float().cpu().contiguous()
            tensors[f"{kohya}.alpha"] = torch.tensor(self.alpha)
        return tensors


def train_lora(
    components: Components,
    examples: Sequence[Example],
    config: LoraTrainingConfig,
    folder: Path,
    *,
    run_folder: Path | None = None,
    on_step: Callable[[int, float, LoraAdapters], None] | None = None,
) -> TrainedLora:
    """Train a LoRA and save it as ``folder/<name>.safetensors`` (kohya format).

    Checkpoints (for resuming) go to ``run_folder`` (default ``folder/<name>.training/``); the model
    is left as it was. ``on_step(step, loss, adapters)`` runs after each step; what it raises stops
    the run at a checkpoint.
    """
    import torch

    check_trainable(components, "LoRA")
    if not examples:
        raise InvalidRequest(
            "LoRA training needs training pictures; none were given.", "Add captioned pictures."
        )
    latents = PictureLatents(components, [e.image for e in examples], config.cache_latents)
    adapters = LoraAdapters(components, config)
    loss = DenoisingLoss(components)

    def loss_fn(step: int) -> tuple[torch.Tensor, dict[str, float]]:
        rng = np.random.default_rng((config.seed, step))
        picked = rng.choice(len(examples), size=min(config.batch, len(examples)), replace=False)
        ids, _ = caption_ids(components, [examples[i].caption for i in picked])
        with adapters.hooked():
            if config.text_encoder_targets:
                text = text_conditioning(components, ids)
            else:
                with torch.no_grad():
                    text = text_conditioning(components, ids)
            return loss(latents[picked], text, seed=int(rng.integers(2**31))), {}

    train_config = TrainConfig(
        steps=config.steps,
        lr=config.lr,
        warmup_steps=max(1, config.warmup_steps),
        min_lr_ratio=1.0,
        checkpoint_every=config.checkpoint_every,
        log_every=max(1, config.steps // 20),
        seed=config.seed,
    )
    step_hook = None if on_step is None else (lambda step, value: on_step(step, value, adapters))
    with (
        frozen(components),
        memory_options(components, config.gradient_checkpointing, config.mixed_precision),
    ):
        trainer = Trainer(
            adapters.module,
            loss_fn,
            train_config,
            run_folder or folder / f"{config.name}.training",
            name=f"LoRA {config.name}",
            on_step=step_hook,
        )
        trainer.resume()
        result = trainer.fit()
    path = save_lora(folder / f"{config.name}.safetensors", adapters, config, components, result.step)
    return TrainedLora(path, len(adapters.targets), result)


def save_lora(
    path: Path, adapters: LoraAdapters, config: LoraTrainingConfig, components: Components, step: int
) -> Path:
    """Write the adapters in kohya's format, with the training facts kohya's scripts record."""
    metadata = {
        "ss_network_module": "networks.lora",
        "ss_network_dim": str(config.rank),
        "ss_network_alpha": str(adapters.alpha),
        "ss_steps": str(step),
        "ss_learning_rate": str(config.lr),
        "ss_sd_model_name": components.info.name,
        "ss_new_sd_model_hash": components.info.hash or "",
        "ss_base_model_version": {"sd1": "sd_v1", "sd2": "sd_v2"}.get(components.info.architecture, ""),
        "sfumato_architecture": components.info.architecture,
    }
    return save_atomically(adapters.kohya_tensors(), path, metadata)
