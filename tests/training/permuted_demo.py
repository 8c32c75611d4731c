"""A second demo model whose text vectors no longer line up with the first's.

The text encoder's hidden channels are permuted throughout (token and position tables, every layer),
and the UNet's inputs from the text (cross-attention keys and values, the pooled text embedding) are
permuted to match: it draws exactly what the demo model draws from a prompt, but an embedding's
vectors made for the demo model mean something else to it, as across real model versions.
"""

from __future__ import annotations

import copy
import dataclasses

import torch

from sfumato.core.result import ModelInfo
from sfumato.models.components import Components


def permuted_model(components: Components, seed: int = 1) -> Components:
    width = int(components.text_encoder.config.hidden_size)  # pyright: ignore[reportAttributeAccessIssue]
    perm = torch.randperm(width, generator=torch.Generator().manual_seed(seed))
    encoder = copy.deepcopy(components.text_encoder)
    unet = copy.deepcopy(components.unet)
    with torch.no_grad():
        for name, param in encoder.named_parameters():
            if name.endswith(("token_embedding.weight", "position_embedding.weight")):
                param.copy_(param[:, perm])
            elif "layer_norm" in name:
                param.copy_(param[perm])
            elif name.endswith(("q_proj.weight", "k_proj.weight", "v_proj.weight", "fc1.weight")):
                param.copy_(param[:, perm])  # they read the residual stream
            elif name.endswith(("out_proj.weight", "fc2.weight")):
                param.copy_(param[perm, :])  # they write it
            elif name.endswith(("out_proj.bias", "fc2.bias")):
                param.copy_(param[perm])
        for name, param in unet.named_parameters():
            if ("attn2.to_k.weight" in name or "attn2.to_v.weight" in name) or name.endswith(
                (
                    "add_embedding.pool.q_proj.weight",
                    "add_embedding.pool.k_proj.weight",
                    "add_embedding.pool.v_proj.weight",
                )
            ):
                param.copy_(param[:, perm])
            elif name.endswith(("add_embedding.norm1.weight", "add_embedding.norm1.bias")):
                param.copy_(param[perm])
            elif name.endswith("add_embedding.pool.positional_embedding"):
                param.copy_(param[:, perm])
    info = dataclasses.replace(components.info, name="sfumato-demo-b", hash="b0b0b0b0b0")
    assert isinstance(info, ModelInfo)
    return dataclasses.replace(components, text_encoder=encoder, unet=unet, info=info)
