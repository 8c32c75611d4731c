"""Where models run and in which precision: CUDA fp16 (bf16 on request), MPS fp16, CPU fp32 (bf16 on request)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sfumato.core.errors import InvalidRequest

if TYPE_CHECKING:
    import torch


def resolve_device(setting: str | None = "auto") -> torch.device:
    import torch

    choice = (setting or "auto").strip().lower()
    if choice == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(choice)
    except RuntimeError:
        raise InvalidRequest(f"Unknown device {setting!r}.", "Use auto, cpu, cuda, cuda:N or mps.") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise InvalidRequest(
            f"Device {setting!r} was asked for but no CUDA GPU is available.", "Use auto or cpu."
        )
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise InvalidRequest(
            "Device 'mps' was asked for but Apple's GPU is not available.", "Use auto or cpu."
        )
    return device


def resolve_dtype(precision: str, device: torch.device) -> torch.dtype:
    """The weights' dtype for ``precision`` (auto, fp32, fp16, bf16) on ``device``."""
    import torch

    if precision == "fp32":
        return torch.float32
    if precision == "bf16":
        return torch.bfloat16
    if device.type == "cpu":
        # fp16 matmuls on CPU are slow or missing; half precision on CPU means bf16 when asked for
        return torch.float32
    return torch.float16
