"""A LoRA file for a test: random low-rank deltas on a UNet's cross-attention keys and values, in
kohya's layout, as a user's LoRA would be."""

from __future__ import annotations

from pathlib import Path

import torch
from safetensors.torch import save_file

from sfumato.models.components import Components


def write_lora(components: Components, path: Path, scale: float = 0.5) -> Path:
    generator = torch.Generator().manual_seed(11)
    tensors: dict[str, torch.Tensor] = {}
    for name, module in components.unet.named_modules():
        if name.endswith(("attn2.to_k", "attn2.to_v")):
            out_features, in_features = module.weight.shape
            key = "lora_unet_" + name.replace(".", "_")
            tensors[f"{key}.lora_down.weight"] = torch.randn(4, in_features, generator=generator) * scale
            tensors[f"{key}.lora_up.weight"] = torch.randn(out_features, 4, generator=generator) * scale
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(path), metadata={"ss_network_module": "networks.lora"})
    return path
