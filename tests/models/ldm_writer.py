"""Write diffusers components as an original-layout (LDM) single-file checkpoint.

The inverse of diffusers' LDM -> diffusers converters, generic over block counts, so tests can
produce the files users actually have (A1111/ComfyUI layout) for tiny and full-size models.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

_RESNET = {
    "norm1": "in_layers.0",
    "conv1": "in_layers.2",
    "norm2": "out_layers.0",
    "conv2": "out_layers.3",
    "time_emb_proj": "emb_layers.1",
    "conv_shortcut": "skip_connection",
}
_UNET_TOP = {
    "time_embedding.linear_1": "time_embed.0",
    "time_embedding.linear_2": "time_embed.2",
    "conv_in": "input_blocks.0.0",
    "conv_norm_out": "out.0",
    "conv_out": "out.2",
    "add_embedding.linear_1": "label_emb.0.0",
    "add_embedding.linear_2": "label_emb.0.2",
}


def unet_to_ldm(unet: Any) -> dict[str, torch.Tensor]:
    layers = int(unet.config.layers_per_block)
    up_has_attention = [hasattr(block, "attentions") for block in unet.up_blocks]
    out: dict[str, torch.Tensor] = {}
    for key, value in unet.state_dict().items():
        out[_unet_key(key, layers, up_has_attention)] = value
    return out


def _unet_key(key: str, layers: int, up_has_attention: list[bool]) -> str:
    parts = key.split(".")
    for old, new in _UNET_TOP.items():
        if key.startswith(old + "."):
            return new + key[len(old) :]
    if parts[0] == "down_blocks":
        block, kind = int(parts[1]), parts[2]
        if kind == "downsamplers":  # down_blocks.b.downsamplers.0.conv.w -> input_blocks.n.0.op.w
            return f"input_blocks.{1 + block * (layers + 1) + layers}.0.op." + ".".join(parts[5:])
        index = 1 + block * (layers + 1) + int(parts[3])
        return _inner(f"input_blocks.{index}", kind, parts[4:])
    if parts[0] == "mid_block":
        index = {"resnets": 0, "attentions": 1}[parts[1]] + 2 * int(parts[2])
        rest = parts[3:]
        if parts[1] == "resnets":
            rest = [_RESNET.get(rest[0], rest[0]), *rest[1:]]
        return f"middle_block.{index}." + ".".join(rest)
    if parts[0] == "up_blocks":
        block, kind = int(parts[1]), parts[2]
        if kind == "upsamplers":
            slot = 2 if up_has_attention[block] else 1
            return f"output_blocks.{block * (layers + 1) + layers}.{slot}.conv." + ".".join(parts[5:])
        index = block * (layers + 1) + int(parts[3])
        return _inner(f"output_blocks.{index}", kind, parts[4:])
    raise KeyError(f"no LDM name for UNet key {key}")


def _inner(prefix: str, kind: str, rest: list[str]) -> str:
    if kind == "resnets":
        rest = [_RESNET.get(rest[0], rest[0]), *rest[1:]]
        return f"{prefix}.0." + ".".join(rest)
    return f"{prefix}.1." + ".".join(rest)


def vae_to_ldm(vae: Any) -> dict[str, torch.Tensor]:
    blocks = len(vae.config.block_out_channels)
    out: dict[str, torch.Tensor] = {}
    for key, value in vae.state_dict().items():
        new = key.replace("conv_norm_out", "norm_out").replace("conv_shortcut", "nin_shortcut")
        new = new.replace("mid_block.resnets.0", "mid.block_1").replace("mid_block.resnets.1", "mid.block_2")
        if "mid_block.attentions.0" in new:
            new = new.replace("mid_block.attentions.0", "mid.attn_1").replace("group_norm", "norm")
            new = (
                new.replace("to_q", "q")
                .replace("to_k", "k")
                .replace("to_v", "v")
                .replace("to_out.0", "proj_out")
            )
            if value.ndim == 2:  # LDM stores these as 1x1 convolutions
                value = value[:, :, None, None]
        parts = new.split(".")
        if parts[1] == "down_blocks":
            rest = ".".join(parts[3:]).replace("resnets.", "block.").replace("downsamplers.0.", "downsample.")
            new = f"{parts[0]}.down.{parts[2]}.{rest}"
        elif parts[1] == "up_blocks":
            rest = ".".join(parts[3:]).replace("resnets.", "block.").replace("upsamplers.0.", "upsample.")
            new = f"{parts[0]}.up.{blocks - 1 - int(parts[2])}.{rest}"
        out[new] = value
    return out


def clip_to_ldm(text_encoder: Any, *, with_text_model: bool = True) -> dict[str, torch.Tensor]:
    """CLIP-L keys as SD1 files store them (``text_model.`` present unless asked otherwise)."""
    out: dict[str, torch.Tensor] = {}
    for key, value in text_encoder.state_dict().items():
        if key.startswith("text_projection"):
            continue
        bare = key.removeprefix("text_model.")
        out[("text_model." + bare) if with_text_model else bare] = value
    return out


def open_clip_to_ldm(text_encoder: Any) -> dict[str, torch.Tensor]:
    """OpenCLIP layout (SD2, SDXL's second encoder): fused q/k/v, ``resblocks``, transposed projection."""
    state = {k.removeprefix("text_model."): v for k, v in text_encoder.state_dict().items()}
    hidden = int(text_encoder.config.hidden_size)
    out: dict[str, torch.Tensor] = {
        "token_embedding.weight": state.pop("embeddings.token_embedding.weight"),
        "positional_embedding": state.pop("embeddings.position_embedding.weight"),
        "ln_final.weight": state.pop("final_layer_norm.weight"),
        "ln_final.bias": state.pop("final_layer_norm.bias"),
    }
    projection = state.pop("text_projection.weight", None)
    out["text_projection"] = projection.T.contiguous() if projection is not None else torch.eye(hidden)
    layers = int(text_encoder.config.num_hidden_layers)
    for i in range(layers):
        src = f"encoder.layers.{i}."
        dst = f"transformer.resblocks.{i}."
        for part in ("weight", "bias"):
            out[dst + f"attn.in_proj_{part}"] = torch.cat(
                [state.pop(src + f"self_attn.{p}_proj.{part}") for p in ("q", "k", "v")]
            )
            out[dst + f"attn.out_proj.{part}"] = state.pop(src + f"self_attn.out_proj.{part}")
            out[dst + f"ln_1.{part}"] = state.pop(src + f"layer_norm1.{part}")
            out[dst + f"ln_2.{part}"] = state.pop(src + f"layer_norm2.{part}")
            out[dst + f"mlp.c_fc.{part}"] = state.pop(src + f"mlp.fc1.{part}")
            out[dst + f"mlp.c_proj.{part}"] = state.pop(src + f"mlp.fc2.{part}")
    assert not state, f"unmapped text encoder keys: {sorted(state)}"
    return out


def checkpoint_to_ldm(
    unet: Any,
    vae: Any | None,
    text_encoder: Any | None,
    text_encoder_2: Any | None = None,
    *,
    architecture: str,
    with_text_model: bool = True,
    ema: bool = False,
) -> dict[str, torch.Tensor]:
    """The whole state dict of an original-layout checkpoint for ``architecture`` (sd1, sd2, sdxl, sdxl-refiner)."""
    out = {"model.diffusion_model." + k: v for k, v in unet_to_ldm(unet).items()}
    if vae is not None:
        out |= {"first_stage_model." + k: v for k, v in vae_to_ldm(vae).items()}
    if architecture == "sd1":
        out |= {
            "cond_stage_model.transformer." + k: v
            for k, v in clip_to_ldm(text_encoder, with_text_model=with_text_model).items()
        }
    elif architecture == "sd2":
        out |= {"cond_stage_model.model." + k: v for k, v in open_clip_to_ldm(text_encoder).items()}
    elif architecture == "sdxl":
        out |= {
            "conditioner.embedders.0.transformer." + k: v
            for k, v in clip_to_ldm(text_encoder, with_text_model=with_text_model).items()
        }
        out |= {"conditioner.embedders.1.model." + k: v for k, v in open_clip_to_ldm(text_encoder_2).items()}
    elif architecture == "sdxl-refiner":
        out |= {"conditioner.embedders.0.model." + k: v for k, v in open_clip_to_ldm(text_encoder_2).items()}
    else:
        raise ValueError(architecture)
    if ema:  # EMA copies: keys flattened without dots, as LDM's LitEma stores them
        for key in list(out):
            if key.startswith("model.diffusion_model."):
                out["model_ema." + "".join(key.split(".")[1:])] = out[key] + 1.0
    return out


def write_checkpoint(
    path: Path,
    state: dict[str, torch.Tensor],
    dtype: torch.dtype | None = None,
    metadata: dict[str, str] | None = None,
) -> Path:
    from safetensors.torch import save_file

    tensors = {
        k: (v.to(dtype) if dtype is not None and v.is_floating_point() else v).contiguous()
        for k, v in state.items()
    }
    save_file(tensors, str(path), metadata=metadata)
    return path
