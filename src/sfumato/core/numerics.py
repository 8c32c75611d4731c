"""Catching NaN and infinity where a model makes them, so no broken picture is saved as a success."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sfumato.core.errors import NonFiniteOutput

if TYPE_CHECKING:
    import torch

NON_FINITE_HINT = (
    "Nothing was saved. The model file may be damaged, or may not work in half precision: "
    "try SFUMATO_PRECISION=fp32, another VAE (--vae) or another model."
)


def check_finite(values: torch.Tensor, stage: str, model: str, *, step: int | None = None) -> None:
    """Raise :class:`NonFiniteOutput` naming ``stage`` (e.g. "the UNet") if ``values`` holds NaN or inf."""
    import torch

    if bool(torch.isfinite(values).all()):
        return
    where = f" at step {step}" if step is not None else ""
    raise NonFiniteOutput(
        f"{stage[0].upper()}{stage[1:]} of model '{model}' produced NaN or infinite values{where}.",
        NON_FINITE_HINT,
    )
