"""What textual inversion and LoRA training share: pictures to latents, captions to text
conditioning (with learned vectors in place of a name), and the denoising loss of an SD1/SD2 model.

The text is encoded exactly as the prompt encoder does for a one-chunk prompt at clip skip 1 (the
same tokens, the same padding, vectors placed where the name's tokens were), so what is learned
here is what a prompt gets back at generation time.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from sfumato.core.errors import InvalidRequest, UnsupportedModel

if TYPE_CHECKING:
    from pathlib import Path

    import torch
    from PIL import Image

    from sfumato.models.components import Components


@dataclass(frozen=True)
class Example:
    """One training picture and its caption."""

    image: Image.Image
    caption: str


def check_trainable(components: Components, what: str) -> None:
    if components.is_sdxl:
        raise UnsupportedModel(
            f"{what} training supports SD1 and SD2 models; {components.info.name} is SDXL.",
            "Train on an SD1/SD2 model, or use an embedding/LoRA made elsewhere for SDXL.",
        )
    if components.is_inpainting:
        raise UnsupportedModel(
            f"{what} training needs a regular model; {components.info.name} is an inpainting model.",
            "Train on the regular version of the model; the result works on its inpainting variant too.",
        )


@contextmanager
def frozen(components: Components) -> Iterator[None]:
    """The UNet and text encoder in eval mode without gradients of their own, restored after."""
    models: list[Any] = [components.unet, components.text_encoder]
    states = [(model, model.training, [p.requires_grad for p in model.parameters()]) for model in models]
    for model in models:
        model.requires_grad_(False)
        model.eval()
    try:
        yield
    finally:
        for model, training, flags in states:
            model.train(training)
            for parameter, flag in zip(model.parameters(), flags, strict=True):
                parameter.requires_grad_(flag)


def encode_pictures(components: Components, images: Sequence[Image.Image]) -> torch.Tensor:
    """The VAE latents (distribution means, scaled as the UNet sees them) of pictures of one size."""
    import torch

    sizes = {image.size for image in images}
    if len(sizes) != 1:
        raise InvalidRequest(
            f"Training pictures must all have one size; found {sorted(sizes)}.",
            "Crop or resize them to the model's native size first.",
        )
    vae = components.vae
    config = vae.config
    scale = float(getattr(config, "scaling_factor", 1.0) or 1.0)
    shift = float(getattr(config, "shift_factor", 0.0) or 0.0)
    latents = []
    with torch.no_grad():
        for start in range(0, len(images), 16):
            batch = np.stack(
                [np.asarray(image.convert("RGB"), dtype=np.float32) for image in images[start : start + 16]]
            )
            pixels = torch.from_numpy(batch / 127.5 - 1.0).permute(0, 3, 1, 2)
            pixels = pixels.to(device=components.device, dtype=vae.dtype)
            mean = vae.encode(pixels).latent_dist.mean  # pyright: ignore[reportAttributeAccessIssue]
            latents.append(((mean - shift) * scale).float())
    return torch.cat(latents)


def caption_ids(
    components: Components, captions: Sequence[str], name: str | None = None, tokens: int = 0
) -> tuple[torch.Tensor, list[list[int]]]:
    """Token ids [batch, 77] and, per caption, the offsets where ``name``'s ``tokens`` vectors go."""
    import torch

    from sfumato.prompts.encoder import CHUNK_TOKENS, EmbeddingMatch, chunk_runs

    tokenizer = components.tokenizer
    matches = {}
    if name is not None:
        name_ids = tokenizer(name, add_special_tokens=False)["input_ids"]
        matches = {name_ids[0]: [EmbeddingMatch(tuple(name_ids), 0, tokens)]}
    bos, eos = tokenizer.bos_token_id, tokenizer.eos_token_id
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else eos
    rows, offsets = [], []
    for text in captions:
        chunk = chunk_runs(tokenizer, [(text, 1.0)], matches)[0]  # captions longer than a chunk are cut
        rows.append([bos, *chunk.ids, eos] + [pad] * (CHUNK_TOKENS - len(chunk.ids)))
        offsets.append([offset + 1 for offset, _ in chunk.slots])
    return torch.tensor(rows, device=components.device), offsets


@contextmanager
def vectors_in_place(encoder: Any, offsets: Sequence[Sequence[int]], vectors: torch.Tensor) -> Iterator[None]:
    """While the encoder runs, its token embeddings at ``offsets`` (per batch row) are ``vectors``.

    The replacement keeps the autograd graph, so gradients reach ``vectors``.
    """
    table = getattr(encoder, "text_model", encoder).embeddings.token_embedding

    def replace(module: Any, args: Any, output: torch.Tensor) -> torch.Tensor:
        output = output.clone()
        for row, starts in enumerate(offsets):
            for start in starts:
                output[row, start : start + vectors.shape[0]] = vectors.to(output.dtype)
        return output

    handle = table.register_forward_hook(replace)
    try:
        yield
    finally:
        handle.remove()


def text_conditioning(components: Components, ids: torch.Tensor) -> torch.Tensor:
    """The UNet's text input for token ids: the last layer after the final norm (clip skip 1)."""
    return components.text_encoder(input_ids=ids).last_hidden_state


Teacher = Callable[["torch.Tensor", "torch.Tensor"], "torch.Tensor"]
"""(noisy latents, timesteps) -> the prediction to match, in the trained model's prediction type."""


class DenoisingLoss:
    """The model's own training objective (epsilon or v) at random noise levels, seeded per step."""

    def __init__(self, components: Components) -> None:
        import torch

        config = components.scheduler_config
        steps = int(config.get("num_train_timesteps", 1000))
        start, end = float(config.get("beta_start", 0.00085)), float(config.get("beta_end", 0.012))
        if config.get("beta_schedule", "scaled_linear") == "scaled_linear":
            betas = torch.linspace(start**0.5, end**0.5, steps, dtype=torch.float64) ** 2
        else:
            betas = torch.linspace(start, end, steps, dtype=torch.float64)
        self.alphas = torch.cumprod(1 - betas, 0).float()
        self.prediction = components.prediction_type
        self.components = components

    def __call__(
        self, latents: torch.Tensor, text: torch.Tensor, seed: int, teacher: Teacher | None = None
    ) -> torch.Tensor:
        """The loss on ``latents``; with ``teacher``, the target is its prediction for the same noisy
        latents (distillation) rather than the true noise."""
        import torch
        from torch.nn import functional

        generator = torch.Generator().manual_seed(seed)
        noise = torch.randn(latents.shape, generator=generator).to(latents)
        # Stratified noise levels (one per equal slice of the schedule): a small batch still covers
        # the whole range each step, which steadies the few-step runs a quick TI or LoRA makes.
        slices = (torch.arange(len(latents)) + torch.rand(len(latents), generator=generator)) / len(latents)
        t = (slices * len(self.alphas)).long().clamp(max=len(self.alphas) - 1)
        t = t[torch.randperm(len(latents), generator=generator)]
        a = self.alphas[t].sqrt()[:, None, None, None].to(latents)
        s = (1 - self.alphas[t]).sqrt()[:, None, None, None].to(latents)
        noisy = a * latents + s * noise
        target = a * noise - s * latents if self.prediction == "v_prediction" else noise
        if teacher is not None:
            target = teacher(noisy, t)
        unet = self.components.unet
        predicted = unet(noisy.to(unet.dtype), t.to(latents.device), encoder_hidden_states=text).sample
        return functional.mse_loss(predicted.float(), target.float())


@contextmanager
def memory_options(
    components: Components, gradient_checkpointing: bool, mixed_precision: str
) -> Iterator[None]:
    """The UNet recomputes activations in the backward pass (gradient checkpointing) and the
    forward passes run under autocast (mixed precision) while the block runs; restored after."""
    import torch

    unet: Any = components.unet
    was_checkpointing = bool(getattr(unet, "gradient_checkpointing", False))
    if gradient_checkpointing and not was_checkpointing:
        unet.enable_gradient_checkpointing()
    try:
        if mixed_precision in ("bf16", "fp16"):
            dtype = torch.bfloat16 if mixed_precision == "bf16" else torch.float16
            with torch.autocast(components.device.type, dtype=dtype):
                yield
        else:
            yield
    finally:
        if gradient_checkpointing and not was_checkpointing:
            unet.disable_gradient_checkpointing()


class PictureLatents:
    """Latents of the training pictures: encoded once (cached) or per step (the VAE runs each time)."""

    def __init__(self, components: Components, images: Sequence[Image.Image], cached: bool = True) -> None:
        self.components = components
        self.images = list(images)
        self.cached = encode_pictures(components, self.images) if cached else None
        if not cached:
            encode_pictures(components, self.images[:1])  # the size check, now rather than at step 1

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, picked: np.ndarray) -> torch.Tensor:
        import torch

        if self.cached is not None:
            return self.cached[torch.from_numpy(picked)]
        return encode_pictures(self.components, [self.images[int(i)] for i in picked])


def save_atomically(tensors: dict[str, torch.Tensor], path: Path, metadata: dict[str, str]) -> Path:
    """Write a safetensors file under a temporary name and rename it, so no reader (nor a crash)
    ever sees half a file; the temporary name does not end in .safetensors, so no library lists it."""
    from safetensors.torch import save_file

    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    try:
        save_file(tensors, str(partial), metadata=metadata)
        partial.replace(path)
    finally:
        partial.unlink(missing_ok=True)
    return path
