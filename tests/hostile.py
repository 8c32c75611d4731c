"""A corpus of hostile model files, written as an attacker or a broken download would leave them.

Each maker writes one file (or diffusers folder) under a folder and returns its path. The classes:
safetensors headers with deep nesting, non-finite or out-of-range numbers, wrong types, bad
encodings, lengths past the end; diffusers folders whose configs are lists, not UTF-8, deeply
nested or carry hostile values.
"""

from __future__ import annotations

import json
import shutil
import struct
from collections.abc import Callable
from pathlib import Path

UNET_KEY = "model.diffusion_model.input_blocks.0.0.weight"
CLIP_KEY = "cond_stage_model.transformer.text_model.embeddings.token_embedding.weight"


def _safetensors(raw_header: bytes, data: bytes = b"\0" * 16) -> bytes:
    return struct.pack("<Q", len(raw_header)) + raw_header + data


def _entry(dtype: object = "F32", shape: object = (2, 2), offsets: object = (0, 16)) -> str:
    return json.dumps({"dtype": dtype, "shape": shape, "data_offsets": offsets})


def _header(entry: str, key: str = UNET_KEY, extra: str = "") -> bytes:
    return ("{" + f'"{key}": {entry}, "{CLIP_KEY}": ' + _entry() + extra + "}").encode()


def _raw_entry(text: str) -> bytes:
    return ("{" + f'"{UNET_KEY}": ' + text + "}").encode()


SAFETENSORS: dict[str, Callable[[], bytes]] = {
    "deep-nesting": lambda: _safetensors(b'{"a": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"),
    "deep-nesting-metadata": lambda: _safetensors(
        b'{"__metadata__": {"a": ' + b"[" * 50_000 + b"]" * 50_000 + b"}}"
    ),
    "offset-1e999": lambda: _safetensors(
        _raw_entry('{"dtype": "F32", "shape": [2, 2], "data_offsets": [0, 1e999]}')
    ),
    "shape-1e999": lambda: _safetensors(
        _raw_entry('{"dtype": "F32", "shape": [1e999, 2], "data_offsets": [0, 16]}')
    ),
    "offset-nan": lambda: _safetensors(
        _raw_entry('{"dtype": "F32", "shape": [2, 2], "data_offsets": [NaN, 16]}')
    ),
    "offset-infinity": lambda: _safetensors(
        _raw_entry('{"dtype": "F32", "shape": [2, 2], "data_offsets": [0, Infinity]}')
    ),
    "offset-negative": lambda: _safetensors(_header(_entry(offsets=[-16, 0]))),
    "offset-past-end": lambda: _safetensors(_header(_entry(offsets=[0, 10**12]))),
    "offset-float": lambda: _safetensors(_header(_entry(offsets=[0.0, 16.0]))),
    "offset-bool": lambda: _safetensors(_header(_entry(offsets=[False, 16]))),
    "offset-huge-int": lambda: _safetensors(
        _raw_entry('{"dtype": "F32", "shape": [2, 2], "data_offsets": [0, ' + "9" * 5000 + "]}")
    ),
    "offsets-three": lambda: _safetensors(_header(_entry(offsets=[0, 8, 16]))),
    "offsets-string": lambda: _safetensors(_header(_entry(offsets="0,16"))),
    "shape-negative": lambda: _safetensors(_header(_entry(shape=[-2, -2]))),
    "shape-string": lambda: _safetensors(_header(_entry(shape="22"))),
    "shape-nested": lambda: _safetensors(_header(_entry(shape=[[2], [2]]))),
    "shape-huge": lambda: _safetensors(_header(_entry(shape=[2**62, 2**62]))),
    "dtype-list": lambda: _safetensors(_header(_entry(dtype=["F32"]))),
    "dtype-unknown": lambda: _safetensors(_header(_entry(dtype="F128"))),
    "entry-string": lambda: _safetensors(_raw_entry('"tensor"')),
    "entry-missing-dtype": lambda: _safetensors(_raw_entry('{"shape": [2, 2], "data_offsets": [0, 16]}')),
    "metadata-list": lambda: _safetensors(_header(_entry(), extra=', "__metadata__": [1, 2]')),
    "metadata-nested": lambda: _safetensors(_header(_entry(), extra=', "__metadata__": {"a": {"b": 1}}')),
    "header-list": lambda: _safetensors(b"[1, 2, 3]"),
    "header-not-utf8": lambda: _safetensors(b'{"\xff\xfe": 1}'),
    "header-bad-json": lambda: _safetensors(b'{"a": '),
    "header-length-past-end": lambda: struct.pack("<Q", 10**9) + b'{"a": 1}',
    "header-length-max": lambda: struct.pack("<Q", 2**64 - 1) + b"{}",
    "header-length-zero": lambda: struct.pack("<Q", 0) + b"{}",
    "truncated-prefix": lambda: b"\x08\x00\x00",
    "empty": lambda: b"",
    "pickle": lambda: b"\x80\x04\x95\x10\x00\x00\x00\x00\x00\x00\x00}\x94.",
    "zip-pickle": lambda: b"PK\x03\x04" + b"\0" * 60,
    "gguf": lambda: b"GGUF" + b"\0" * 60,
    "random-bytes": lambda: bytes(range(256)) * 4,
}


def _write(folder: Path, makers: dict[str, Callable[[], bytes]], suffix: str) -> dict[str, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    written = {}
    for name, make in makers.items():
        path = folder / f"{name}{suffix}"
        path.write_bytes(make())
        written[name] = path
    return written


def write_safetensors(folder: Path) -> dict[str, Path]:
    return _write(folder, SAFETENSORS, ".safetensors")


def _unet_config(**overrides: object) -> dict[str, object]:
    return {"_class_name": "UNet2DConditionModel", "in_channels": 4, "cross_attention_dim": 32, **overrides}


FOLDER_CONFIGS: dict[str, tuple[str, bytes | None]] = {
    "unet-config-list": ("unet/config.json", b"[1, 2, 3]"),
    "unet-config-not-utf8": ("unet/config.json", b'{"in_channels": "\xff\xfe"}'),
    "unet-config-nested": ("unet/config.json", b'{"a": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"),
    "unet-config-bad-json": ("unet/config.json", b'{"in_channels": '),
    "unet-in-channels-1e999": (
        "unet/config.json",
        json.dumps(_unet_config()).replace('"in_channels": 4', '"in_channels": 1e999').encode(),
    ),
    "unet-in-channels-string": ("unet/config.json", json.dumps(_unet_config(in_channels="four")).encode()),
    "unet-in-channels-negative": ("unet/config.json", json.dumps(_unet_config(in_channels=-4)).encode()),
    "unet-cross-attention-null": (
        "unet/config.json",
        json.dumps(_unet_config(cross_attention_dim=None)).encode(),
    ),
    "unet-block-channels-string": ("unet/config.json", None),  # filled from the model below
    "scheduler-config-list": ("scheduler/scheduler_config.json", b"[]"),
    "scheduler-config-missing": ("scheduler/scheduler_config.json", b""),
    "text-encoder-config-list": ("text_encoder/config.json", b'["CLIPTextModel"]'),
    "vae-config-not-utf8": ("vae/config.json", b"\xff\xfe\xfd"),
    "unet-weights-hostile": ("unet/diffusion_pytorch_model.safetensors", SAFETENSORS["offset-1e999"]()),
}


def write_folders(folder: Path, good: Path) -> dict[str, Path]:
    """Copies of the diffusers folder ``good``, each with one file replaced by a hostile one."""
    written = {}
    for name, (relative, content) in FOLDER_CONFIGS.items():
        target = folder / name
        shutil.copytree(good, target)
        file = target / relative
        if name == "scheduler-config-missing":
            file.unlink()
        elif content is None:
            config = json.loads(file.read_text("utf-8"))
            config["block_out_channels"] = "wide"
            file.write_text(json.dumps(config))
        else:
            file.write_bytes(content)
        written[name] = target
    return written


def one_line_error(output: str) -> bool:
    """A clear error as the CLI prints it: one ``error:`` line, no traceback."""
    lines = [line for line in output.strip().splitlines() if line.strip()]
    return "Traceback" not in output and len(lines) >= 1 and lines[-1].startswith("error:")


def _png(chunks: dict[str, str], size: tuple[int, int] = (8, 8)) -> bytes:
    import io

    from PIL import Image, PngImagePlugin

    info = PngImagePlugin.PngInfo()
    for key, value in chunks.items():
        info.add_text(key, value)
    buffer = io.BytesIO()
    Image.new("RGB", size, "gray").save(buffer, format="PNG", pnginfo=info)
    return buffer.getvalue()


def _png_header_only(width: int, height: int) -> bytes:
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"\0" * 64))
        + chunk(b"IEND", b"")
    )


_NESTED = "[" * 100_000 + "]" * 100_000
PICTURES: dict[str, Callable[[], bytes]] = {
    "sfumato-nested": lambda: _png({"sfumato": '{"request": ' + _NESTED + "}"}),
    "sfumato-1e999": lambda: _png({"sfumato": '{"request": {"prompt": "a", "seed": 1e999, "steps": 1e999}}'}),
    "sfumato-huge-int": lambda: _png({"sfumato": '{"request": {"prompt": "a", "seed": ' + "9" * 5000 + "}}"}),
    "sfumato-list": lambda: _png({"sfumato": "[1, 2]"}),
    "sfumato-wrong-types": lambda: _png(
        {
            "sfumato": json.dumps(
                {"request": {"prompt": ["a"], "width": "wide"}, "model": {"name": 3, "hash": []}}
            )
        }
    ),
    "parameters-hostile": lambda: _png(
        {
            "parameters": "a cat\nSteps: 99999999999999999999999, Seed: 99999999999999999999999, Size: 99999x-1, CFG scale: nan"
        }
    ),
    "parameters-nested-quotes": lambda: _png(
        {"parameters": 'a\nSteps: 3, Lora hashes: "' + '\\"' * 5000 + '"'}
    ),
    "comfyui-nested": lambda: _png({"prompt": '{"1": ' + _NESTED + "}", "workflow": _NESTED}),
    "comfyui-1e999": lambda: _png(
        {"prompt": '{"1": {"class_type": "KSampler", "inputs": {"seed": 1e999, "steps": -1, "cfg": 1e999}}}'}
    ),
    "invokeai-hostile": lambda: _png(
        {"invokeai_metadata": '{"positive_prompt": ["x"], "seed": 1e999, "width": -5, "steps": "many"}'}
    ),
    "bomb-header": lambda: _png_header_only(100_000, 100_000),
    "truncated": lambda: _png({"parameters": "a\nSteps: 3"})[:40],
    "not-an-image": lambda: b"GIF89a this is not a picture at all" * 3,
    "empty": lambda: b"",
}


def write_pictures(folder: Path) -> dict[str, Path]:
    return _write(folder, PICTURES, ".png")
