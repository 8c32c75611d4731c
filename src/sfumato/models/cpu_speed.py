"""The fast CPU path: bf16 weights where the CPU computes bf16 natively, fp32 where it does not.

Measured on the project's AVX-512-BF16 CPUs (docs/performance.md, ``benchmarks/cpu_speed.py``):
bf16 weights make an SD1.5 512² step 1.4-1.65x faster than fp32, and pictures stay within a few
levels of the fp32 ones (the demo judge reads the same scenes). On a CPU without bf16 instructions
PyTorch emulates bf16, which is slower than fp32, so ``precision = "bf16"`` falls back to fp32 there
and says so. fp32 stays the CPU default: the same recipe then draws the same pixels on every CPU.
channels_last was measured too and made CPU steps slower, so it is not used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

NO_BF16_NOTE = (
    "This CPU has no bf16 instructions (AVX-512-BF16 or AMX), where bf16 is slower than fp32; "
    "the model runs in fp32."
)


def cpu_has_bf16() -> bool:
    """Whether this CPU computes bf16 natively (x86 AVX-512-BF16 or AMX)."""
    import torch

    # torch.cpu's capability checks are the only ones PyTorch exposes; absent ones mean "no".
    checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(bool(getattr(torch.cpu, name, lambda: False)()) for name in checks)


def cpu_dtype(requested: torch.dtype, notes: list[str]) -> torch.dtype:
    """The dtype to run on the CPU for ``requested``: bf16 only where the CPU has it (else fp32, noted)."""
    import torch

    if requested != torch.bfloat16 or cpu_has_bf16():
        return requested
    if NO_BF16_NOTE not in notes:
        notes.append(NO_BF16_NOTE)
    return torch.float32
