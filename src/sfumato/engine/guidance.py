"""The guided noise prediction: UNet calls for negative and AND-parts, combined with CFG.

Composable diffusion (``AND``): ``uncond + cfg * sum_i w_i * (cond_i - uncond)``. A negative
prompt with several parts is their weighted mean. All predictions of a step go through the UNet
as one batch when their token lengths match; otherwise one call per token length.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sfumato.core.numerics import check_finite

if TYPE_CHECKING:
    import torch

    from sfumato.models.components import Components
    from sfumato.prompts.conditioning import Conditioning, WeightedPart

# SDXL refiner's aesthetic score for the prompt and for the negative prompt (diffusers' and A1111's defaults)
AESTHETIC_SCORE = 6.0
NEGATIVE_AESTHETIC_SCORE = 2.5


@dataclass
class _Batch:
    """What one UNet call needs besides the latents, prepared once per set of parts."""

    hidden: torch.Tensor
    pooled: torch.Tensor | None
    rows: list[int]  # which terms (in order) this call computes


@dataclass
class GuidedUNet:
    """Predicts the guided noise for a batch of ``images`` latents at one step.

    ``extra_channels`` (an inpainting UNet's mask and masked-image latents) are appended to
    the latents of every call. ``size`` is (height, width) in pixels for SDXL's time ids.
    The SDXL refiner takes an aesthetic score in place of the target size: ``aesthetic_score``
    with the prompt, ``negative_aesthetic_score`` with the negative prompt.
    """

    components: Components
    cond: Conditioning
    uncond: Conditioning
    cfg_scale: float
    images: int
    size: tuple[int, int]
    extra_channels: torch.Tensor | None = None
    aesthetic_score: float = AESTHETIC_SCORE
    negative_aesthetic_score: float = NEGATIVE_AESTHETIC_SCORE
    _cache: dict[tuple[int, ...], list[_Batch]] = field(default_factory=dict, repr=False)
    _time_ids: dict[tuple[bool, ...], torch.Tensor] = field(default_factory=dict, repr=False)

    def __call__(self, latents: torch.Tensor, t: torch.Tensor, step: int) -> torch.Tensor:
        import torch

        parts = self.cond.at(step)
        negative = self.uncond.at(step)
        cond_only = self.cfg_scale == 1.0 and len(parts) == 1 and parts[0].weight == 1.0
        terms: tuple[WeightedPart, ...] = parts if cond_only else (*negative, *parts)
        predictions = self._predict(latents, t, terms, step, negatives=0 if cond_only else len(negative))
        if cond_only:
            return predictions[0]
        uncond = _weighted_mean(predictions[: len(negative)], [p.weight for p in negative])
        conds = predictions[len(negative) :]
        if len(parts) == 1 and parts[0].weight == 1.0:
            return uncond + self.cfg_scale * (conds[0] - uncond)
        guided = torch.zeros_like(uncond)
        for part, prediction in zip(parts, conds, strict=True):
            guided += part.weight * (prediction - uncond)
        return uncond + self.cfg_scale * guided

    def _predict(
        self,
        latents: torch.Tensor,
        t: torch.Tensor,
        terms: tuple[WeightedPart, ...],
        step: int,
        *,
        negatives: int,
    ) -> list[torch.Tensor]:
        """The UNet's prediction for each term; the first ``negatives`` terms are negative prompts."""
        import torch

        unet = self.components.unet
        model_in = (
            latents if self.extra_channels is None else torch.cat([latents, self.extra_channels], dim=1)
        )
        model_in = model_in.to(unet.device, unet.dtype)
        results: list[torch.Tensor | None] = [None] * len(terms)
        for batch in self._batches(terms):
            repeated = model_in.repeat(len(batch.rows), 1, 1, 1)
            added = None
            if batch.pooled is not None:
                negative_rows = tuple(row < negatives for row in batch.rows)
                added = {"text_embeds": batch.pooled, "time_ids": self._sdxl_time_ids(negative_rows)}
            with torch.no_grad():
                out = (self.components.fast_unet or unet)(
                    repeated,
                    t,
                    encoder_hidden_states=batch.hidden,
                    added_cond_kwargs=added,
                    return_dict=False,
                )[0].float()
            check_finite(out, "the UNet", self.components.info.name, step=step + 1)
            for row, chunk in zip(batch.rows, out.chunk(len(batch.rows)), strict=True):
                results[row] = chunk
        return [r for r in results if r is not None]

    def _batches(self, terms: tuple[WeightedPart, ...]) -> list[_Batch]:
        key = tuple(id(term.embedding) for term in terms)
        cached = self._cache.get(key)
        if cached is not None:
            return cached
        import torch

        unet = self.components.unet
        by_length: dict[int, list[int]] = {}
        for row, term in enumerate(terms):
            by_length.setdefault(term.embedding.hidden.shape[1], []).append(row)
        batches = []
        for rows in by_length.values():
            hidden = torch.cat([terms[r].embedding.hidden.repeat(self.images, 1, 1) for r in rows])
            pooled = None
            if terms[rows[0]].embedding.pooled is not None:
                pooled = torch.cat([_pooled(terms[r]).repeat(self.images, 1) for r in rows])
                pooled = pooled.to(unet.device, unet.dtype)
            batches.append(_Batch(hidden.to(unet.device, unet.dtype), pooled, rows))
        self._cache[key] = batches
        return batches

    def _sdxl_time_ids(self, negative_rows: tuple[bool, ...]) -> torch.Tensor:
        """Time ids for each term of a UNet call (``True`` for a negative one), ``images`` rows each."""
        import torch

        cached = self._time_ids.get(negative_rows)
        if cached is not None:
            return cached
        height, width = self.size
        if self.components.is_refiner:
            # original size, crop top-left (0, 0), aesthetic score
            ids = [
                [height, width, 0, 0, self.negative_aesthetic_score if negative else self.aesthetic_score]
                for negative in negative_rows
            ]
        else:
            # original size, crop top-left (0, 0), target size: A1111 uses the picture's size for both.
            ids = [[height, width, 0, 0, height, width] for _ in negative_rows]
        unet = self.components.unet
        tensor = torch.tensor(ids, dtype=torch.float32).repeat_interleave(self.images, dim=0)
        self._time_ids[negative_rows] = tensor.to(unet.device, unet.dtype)
        return self._time_ids[negative_rows]


def _pooled(part: WeightedPart) -> torch.Tensor:
    pooled = part.embedding.pooled
    if pooled is None:
        raise ValueError("an SDXL prompt part is missing its pooled embedding")
    return pooled.reshape(1, -1)


def _weighted_mean(predictions: list[torch.Tensor], weights: list[float]) -> torch.Tensor:
    if len(predictions) == 1:
        return predictions[0]
    total = sum(weights) or 1.0
    result = predictions[0] * (weights[0] / total)
    for prediction, weight in zip(predictions[1:], weights[1:], strict=True):
        result = result + prediction * (weight / total)
    return result
