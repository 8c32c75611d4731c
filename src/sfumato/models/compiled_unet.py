"""``compile_unet = true``: the sampling loop's UNet through ``torch.compile`` (inductor, frozen weights).

Measured on the project's CPUs (docs/performance.md, ``benchmarks/cpu_speed.py --compile``): an SD1.5
512² bf16 step 1.18x faster once compiled (5.75 s against 6.78 s), after a one-off compile of about a
minute for each picture size and batch in each process. Freezing is what makes it faster: it lets oneDNN prepack the weights
(compiled without it, steps were no faster). Frozen weights are a snapshot, so a LoRA that patches the
UNet runs the plain UNet (models/lora.py), trainings never use the compiled one, and it holds a second
copy of the UNet's weights. Where the compile fails (no C++ compiler, an unsupported device), the plain
UNet runs and a note says why.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sfumato.models.components import Components

NOT_WITH_OFFLOAD = "compile_unet is not used with a low-VRAM mode (offloaded weights cannot be frozen)."


class CompiledUNet:
    """Called as the UNet is; compiles on the first call of each shape, falls back for good on failure."""

    def __init__(self, components: Components) -> None:
        import torch

        self.components = components
        self._compiled: Any = torch.compile(components.unet)
        self.failed: str | None = None

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        # Inductor's documented switch: torch.compile(options={"freezing": True}) compiled without
        # freezing (measured: no faster than eager); set here, it holds only while this UNet compiles.
        import torch._inductor.config as inductor  # pyright: ignore[reportMissingImports]

        if self.failed is None:
            try:
                with inductor.patch(freezing=True):
                    return self._compiled(*args, **kwargs)
            except Exception as error:  # inductor's failures have many types; the plain UNet still runs
                self.failed = (
                    f"{type(error).__name__}: {str(error).splitlines()[0][:200] if str(error) else ''}"
                )
                self.components.notes.append(
                    f"The compiled UNet could not be used ({self.failed}); this model runs uncompiled."
                )
        return self.components.unet(*args, **kwargs)


def compile_unet(components: Components) -> None:
    """Give ``components`` a compiled UNet for sampling (``Components.fast_unet``)."""
    if components.execution_device is not None:
        components.notes.append(NOT_WITH_OFFLOAD)
        return
    components.fast_unet = CompiledUNet(components)
