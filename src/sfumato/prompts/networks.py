"""Finding the files a prompt names: LoRAs (``<lora:name:w>``) and embeddings (by file name)."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from pathlib import Path

# resolve(kind, name) -> the file, or None when there is none; kind is "lora" or "embedding".
Resolver = Callable[[str, str], Path | None]

NETWORK_SUFFIXES = (".safetensors", ".pt", ".bin", ".ckpt", ".pth")
_EMBEDDING_FOLDERS = {"embeddings", "embedding", "textual_inversion", "textual-inversion"}
_LORA_FOLDERS = {"lora", "loras", "lycoris", "lyco"}
_WORD = re.compile(r"[^\s,()\[\]:|<>\\]+")


class FolderResolver:
    """Looks names up in model folders (searched recursively, once, on first use).

    Embeddings are only taken from folders called ``embeddings`` (A1111 and ComfyUI layouts), so a
    prompt word never picks up an unrelated checkpoint. LoRAs prefer ``Lora``/``loras`` folders.
    """

    def __init__(self, folders: Iterable[Path]) -> None:
        self.folders = [Path(folder) for folder in folders]
        self._index: dict[str, dict[str, Path]] | None = None

    def __call__(self, kind: str, name: str) -> Path | None:
        index = self._build() if self._index is None else self._index
        found = index.get(kind, {})
        return found.get(name) or found.get(name.lower())

    def _build(self) -> dict[str, dict[str, Path]]:
        index: dict[str, dict[str, Path]] = {"embedding": {}, "lora": {}, "other": {}}
        for folder in self.folders:
            if not folder.is_dir():
                continue
            for path in sorted(folder.rglob("*")):
                if path.suffix.lower() not in NETWORK_SUFFIXES or not path.is_file():
                    continue
                parents = {part.lower() for part in path.relative_to(folder.parent).parts[:-1]}
                kind = (
                    "embedding"
                    if parents & _EMBEDDING_FOLDERS
                    else "lora"
                    if parents & _LORA_FOLDERS
                    else "other"
                )
                for key in (path.stem, path.stem.lower()):
                    index[kind].setdefault(key, path)
        for name, path in index["other"].items():
            index["lora"].setdefault(name, path)
        self._index = index
        return index


def no_files(kind: str, name: str) -> Path | None:
    return None


def default_resolver() -> Resolver:
    """Search ``settings.model_folders``."""
    from sfumato.core.settings import Settings

    return FolderResolver(Settings().model_folders)


def candidate_words(texts: Iterable[str]) -> list[str]:
    """Words of a prompt that could be embedding file names (A1111 matches them anywhere)."""
    seen: dict[str, None] = {}
    for text in texts:
        for word in _WORD.findall(text):
            seen.setdefault(word.removeprefix("embedding:"), None)
    return list(seen)
