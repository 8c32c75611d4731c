"""The real CLIP tokenizer, built offline from the CLIP BPE vocabulary shipped in this package.

The vocabulary (``clip_bpe/bpe_simple_vocab_16e6.txt.gz``, MIT, from open_clip) gives exactly the
49408-entry vocabulary of Hugging Face's CLIPTokenizer when built the way OpenAI's CLIP does.
"""

from __future__ import annotations

import gzip
import json
import os
import tempfile
from functools import cache
from importlib.resources import files
from pathlib import Path
from typing import TYPE_CHECKING

import platformdirs

if TYPE_CHECKING:
    from transformers import CLIPTokenizer

VOCAB_SIZE = 49408
_MERGES = 49152 - 256 - 2  # OpenAI's CLIP uses the first 48894 merges of the file
_FORMAT_VERSION = "1"


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2's reversible byte -> printable character table, as CLIP uses it."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1))
    printable += list(range(ord("®"), ord("ÿ") + 1))
    codes = printable[:]
    extra = 0
    for byte in range(256):
        if byte not in printable:
            printable.append(byte)
            codes.append(256 + extra)
            extra += 1
    return dict(zip(printable, (chr(c) for c in codes), strict=True))


def _write_atomic(path: Path, text: str) -> None:
    with tempfile.NamedTemporaryFile("w", encoding="utf-8", dir=path.parent, delete=False) as handle:
        handle.write(text)
    Path(handle.name).replace(path)


def write_tokenizer_files(folder: Path, pad_token: str = "<|endoftext|>") -> Path:
    """Write vocab.json, merges.txt and the tokenizer configs of CLIP's tokenizer into ``folder``.

    SD1 pads with ``<|endoftext|>``; SD2 and SDXL's second encoder pad with ``!``.
    """
    folder.mkdir(parents=True, exist_ok=True)
    source = files("sfumato.models").joinpath("clip_bpe/bpe_simple_vocab_16e6.txt.gz")
    lines = gzip.decompress(source.read_bytes()).decode("utf-8").split("\n")
    merges = [tuple(line.split()) for line in lines[1 : _MERGES + 1]]
    alphabet = list(_bytes_to_unicode().values())
    tokens = alphabet + [token + "</w>" for token in alphabet] + ["".join(merge) for merge in merges]
    tokens += ["<|startoftext|>", "<|endoftext|>"]
    assert len(tokens) == VOCAB_SIZE
    _write_atomic(folder / "vocab.json", json.dumps({t: i for i, t in enumerate(tokens)}, ensure_ascii=False))
    _write_atomic(folder / "merges.txt", "#version: 0.2\n" + "\n".join(" ".join(m) for m in merges) + "\n")
    special = {
        "bos_token": "<|startoftext|>",
        "eos_token": "<|endoftext|>",
        "unk_token": "<|endoftext|>",
        "pad_token": pad_token,
    }
    config = {**special, "model_max_length": 77, "do_lower_case": True, "tokenizer_class": "CLIPTokenizer"}
    _write_atomic(folder / "special_tokens_map.json", json.dumps(special))
    _write_atomic(folder / "tokenizer_config.json", json.dumps(config))
    return folder


def tokenizer_folder(pad_token: str = "<|endoftext|>") -> Path:
    """A cached folder holding the tokenizer files (built once per machine)."""
    name = "pad-eos" if pad_token == "<|endoftext|>" else "pad-" + format(ord(pad_token[0]), "x")
    base = Path(os.environ.get("SFUMATO_CACHE_DIR") or platformdirs.user_cache_path("sfumato"))
    folder = base / f"clip-tokenizer-v{_FORMAT_VERSION}" / name
    if not (folder / "tokenizer_config.json").exists():
        write_tokenizer_files(folder, pad_token)
    return folder


@cache
def load_clip_tokenizer(pad_token: str = "<|endoftext|>") -> CLIPTokenizer:
    from transformers import CLIPTokenizer

    return CLIPTokenizer.from_pretrained(str(tokenizer_folder(pad_token)), local_files_only=True)
