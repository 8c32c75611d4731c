"""How much memory a training run needs, said before it starts, and a refusal when it will not fit.

The model's weights are counted as loaded; the trainable parameters with their gradients and AdamW's
two moments in fp32; the activations kept for the backward pass are measured by one probe pass of
the UNet (and the text encoder when gradients go through it) at the run's size, with forward hooks
counting what each layer outputs. Gradient checkpointing keeps only what enters each UNet block
plus one block's insides at a time; mixed precision halves activations; uncached latents add the
VAE encoder's pass each step.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sfumato.core.errors import InvalidRequest

if TYPE_CHECKING:
    from torch import nn

    from sfumato.models.components import Components

GIB = 1024**3
# Allocator slack, the optimizer's temporaries and the interpreter: measured peaks on the demo model
# ran 1.3-1.6x the counted tensors.
OVERHEAD = 1.5


@dataclass(frozen=True)
class MemoryEstimate:
    weights: int  # the loaded model (already resident when the estimate is made)
    trainable: int  # learned parameters and their gradients
    optimizer: int  # AdamW's two moments
    activations: int  # what the backward pass needs, for the whole batch
    encoder: int  # the VAE encoder's pass per step when latents are not cached
    device: str

    @property
    def training(self) -> int:
        """What the run adds on top of the loaded model."""
        return int((self.trainable + self.optimizer + self.activations + self.encoder) * OVERHEAD)

    @property
    def total(self) -> int:
        return self.weights + self.training

    def describe(self) -> str:
        def gib(value: float) -> str:
            return f"{value / GIB:.2f} GiB"

        return (
            f"Memory estimate on {self.device}: {gib(self.total)} in all — model {gib(self.weights)}, "
            f"learned weights + gradients {gib(self.trainable)}, optimizer {gib(self.optimizer)}, "
            f"activations {gib(self.activations)}"
            + (f", VAE encoder per step {gib(self.encoder)}" if self.encoder else "")
            + f" (x{OVERHEAD} for allocator slack on the training part)."
        )


def parameter_bytes(module: nn.Module) -> int:
    return sum(p.numel() * p.element_size() for p in module.parameters())


def estimate_memory(
    components: Components,
    *,
    trainable_parameters: int,
    batch: int,
    size: int,
    text_gradients: bool,
    gradient_checkpointing: bool = False,
    mixed_precision: str = "no",
    cache_latents: bool = True,
) -> MemoryEstimate:
    """The estimate for ``batch`` pictures of ``size`` pixels; ``text_gradients``: gradients flow
    through the text encoder (textual inversion, a LoRA on it)."""
    activation_bytes = 2 if mixed_precision in ("bf16", "fp16") else 4
    latent = size // components.vae_scale_factor
    per_sample = _unet_activations(components, latent, gradient_checkpointing)
    if text_gradients:
        per_sample += _text_activations(components)
    encoder = 0
    if not cache_latents:
        encoder = _vae_encoder_peak(components, size) * batch * activation_bytes
    weights = sum(parameter_bytes(m) for m in (components.unet, components.text_encoder, components.vae))
    return MemoryEstimate(
        weights=weights,
        trainable=trainable_parameters * 4 * 2,
        optimizer=trainable_parameters * 4 * 2,
        activations=per_sample * batch * activation_bytes,
        encoder=encoder,
        device=str(components.device),
    )


def _count_outputs(root: nn.Module, run: Any) -> dict[str, int]:
    """Elements each leaf layer of ``root`` outputs during ``run()``, by the layer's name."""
    counts: dict[str, int] = {}
    handles = []
    for name, module in root.named_modules():
        if next(module.children(), None) is not None:
            continue

        def hook(_: Any, __: Any, output: Any, name: str = name) -> None:
            tensors = output if isinstance(output, tuple) else (output,)
            counts[name] = counts.get(name, 0) + sum(t.numel() for t in tensors if hasattr(t, "numel"))

        handles.append(module.register_forward_hook(hook))
    try:
        run()
    finally:
        for handle in handles:
            handle.remove()
    return counts


def _unet_activations(components: Components, latent: int, checkpointing: bool) -> int:
    import torch

    unet: Any = components.unet
    width = int(unet.config.cross_attention_dim)
    sample = torch.zeros(
        1, int(unet.config.in_channels), latent, latent, dtype=unet.dtype, device=unet.device
    )
    text = torch.zeros(1, 77, width, dtype=unet.dtype, device=unet.device)
    step = torch.tensor([500], device=unet.device)
    with torch.no_grad():
        counts = _count_outputs(unet, lambda: unet(sample, step, encoder_hidden_states=text))
    if not checkpointing:
        return sum(counts.values())
    # Checkpointed: each block keeps its input; one block's insides live during its recomputation.
    blocks: dict[str, int] = {}
    for name, count in counts.items():
        parts = name.split(".")
        key = ".".join(parts[:2]) if parts[0] in ("down_blocks", "up_blocks") else parts[0]
        blocks[key] = blocks.get(key, 0) + count
    inner = {k: v for k, v in blocks.items() if k.startswith(("down_blocks", "up_blocks", "mid_block"))}
    outer = sum(v for k, v in blocks.items() if k not in inner)
    boundaries = len(inner) * sample.numel() * 8  # block inputs: the widest latent maps, roughly
    return outer + boundaries + max(inner.values(), default=0)


def _text_activations(components: Components) -> int:
    import torch

    encoder: Any = components.text_encoder
    ids = torch.zeros(1, 77, dtype=torch.long, device=components.device)
    with torch.no_grad():
        counts = _count_outputs(encoder, lambda: encoder(input_ids=ids))
    return sum(counts.values())


def _vae_encoder_peak(components: Components, size: int) -> int:
    import torch

    vae: Any = components.vae
    pixels = torch.zeros(1, 3, size, size, dtype=vae.dtype, device=components.device)
    with torch.no_grad():
        counts = _count_outputs(vae.encoder, lambda: vae.encoder(pixels))
    return max(counts.values(), default=0) * 3  # no gradients: a few layers' outputs live at once


def available_memory(device: str) -> int:
    """Free memory on the device: the GPU's free memory, else the system's available RAM."""
    import psutil

    if device.startswith("cuda"):
        import torch

        return int(torch.cuda.mem_get_info(torch.device(device))[0])
    return int(psutil.virtual_memory().available)


def check_memory(estimate: MemoryEstimate, limit_bytes: int | None = None) -> None:
    """Refuse a run whose training part will not fit in ``limit_bytes`` (default: what is free now;
    the loaded model is already counted there)."""
    free = limit_bytes if limit_bytes is not None else available_memory(estimate.device)
    if estimate.training > free:
        raise InvalidRequest(
            f"This training needs about {estimate.training / GIB:.2f} GiB beyond the loaded model, "
            f"and {free / GIB:.2f} GiB is available on {estimate.device}.",
            "Lower it with --gradient-checkpointing, --mixed-precision bf16, a smaller --batch or "
            "--size, or keep --cache-latents on.",
        )
