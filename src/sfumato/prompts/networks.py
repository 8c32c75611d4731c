"""Finding the files a prompt names: LoRAs (``<lora:name:w>``) and embeddings (by file name)."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sfumato.core.settings import Settings
    from sfumato.models.lora import LoraSpec

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

    def lora_names(self) -> dict[Path, str]:
        """Each LoRA file and a name that finds it."""
        index = self._build() if self._index is None else self._index
        names: dict[Path, str] = {}
        for name, path in index["lora"].items():
            names.setdefault(path, name)
        return names


class LibraryResolver:
    """Looks names up in the model library (A1111/ComfyUI ``Lora``, ``loras``, ``embeddings`` trees),
    then anywhere in the model folders (as :class:`FolderResolver`). Indexed once, on first use."""

    def __init__(self, settings: Settings) -> None:
        from sfumato.models.library import ModelLibrary

        self.library = ModelLibrary(settings)
        self.folders = self.library.folders()
        self._fallback = FolderResolver(self.folders)
        self._index: dict[tuple[str, str], Path] | None = None

    def __call__(self, kind: str, name: str) -> Path | None:
        if self._index is None:
            self._index = {}
            for entry in self.library.entries():
                for key in (entry.name, entry.path.stem, entry.name.lower(), entry.path.stem.lower()):
                    self._index.setdefault((entry.kind, key), entry.path)
        found = self._index.get((kind, name)) or self._index.get((kind, name.lower()))
        return found or self._fallback(kind, name)

    def lora_names(self) -> dict[Path, str]:
        """Each LoRA file and a name that finds it."""
        names = {e.path: e.name for e in self.library.entries() if e.kind == "lora" and e.path.is_file()}
        for path, name in self._fallback.lora_names().items():
            names.setdefault(path, name)
        return names


def no_files(kind: str, name: str) -> Path | None:
    return None


def default_resolver() -> Resolver:
    """The model library of the user's settings: the same files a generation finds."""
    from sfumato.core.settings import Settings

    return LibraryResolver(Settings())


def candidate_words(texts: Iterable[str]) -> list[str]:
    """Words of a prompt that could be embedding file names (A1111 matches them anywhere)."""
    seen: dict[str, None] = {}
    for text in texts:
        for word in _WORD.findall(text):
            seen.setdefault(word.removeprefix("embedding:"), None)
    return list(seen)


def prompt_loras(prompt: str, negative_prompt: str, resolve: Resolver) -> tuple[list[LoraSpec], list[str]]:
    """The LoRAs ``<lora:name:te:unet>`` of a prompt as files to apply, and notes on tags not used.

    A LoRA that is not found is an error (A1111 warns and goes on): the picture would silently
    differ from the recipe written into it. A LoRA tag in the negative prompt is not applied,
    since a LoRA changes the model for both prompts; the note says so.
    """
    from sfumato.core.errors import ModelNotFound
    from sfumato.models.lora import LoraSpec
    from sfumato.prompts.parser import extract_networks

    _, networks, _ = extract_networks(prompt)
    _, negative_networks, _ = extract_networks(negative_prompt)
    notes = [
        f"{network.tag} in the negative prompt was not applied: a LoRA changes the model for both "
        "prompts; put it in the prompt (a negative weight steers away from it)."
        for network in negative_networks
        if network.kind == "lora"
    ]
    notes += [
        f"{network.tag}: '{network.kind}' networks are not supported; it was ignored."
        for network in (*networks, *negative_networks)
        if network.kind != "lora"
    ]
    loras: list[LoraSpec] = []
    missing: list[str] = []
    for network in networks:
        if network.kind != "lora":
            continue
        path = resolve("lora", network.name)
        if path is None:
            missing.append(network.name)
            continue
        loras.append(LoraSpec(path, network.unet_weight, network.text_encoder_weight, network.name))
    if missing:
        folders = [str(folder) for folder in getattr(resolve, "folders", [])]
        where = f" (searched: {', '.join(folders)})" if folders else " (no model folders are configured)"
        names = ", ".join(f"'{name}'" for name in missing)
        raise ModelNotFound(
            f"The prompt names LoRA {names}, which is not in any model folder{where}.",
            "Put the file in a Lora or loras folder of a model folder (`sfumato models list` shows "
            "what is found), fix the name, or remove the <lora:...> tag.",
        )
    return loras, notes


_LORA_TAG = re.compile(r"<(lora|lyco):([^:>]+)((?::[^>]*)?)>")


def parse_hashes(text: str) -> dict[str, str]:
    """A1111's ``Lora hashes`` / ``TI hashes`` value (``name: hash, name: hash``) as name -> hash."""
    found: dict[str, str] = {}
    for item in text.strip().strip('"').split(","):
        name, _, digest = item.rpartition(":")
        if name.strip() and digest.strip():
            found[name.strip()] = digest.strip().lower()
    return found


def lora_by_hash(resolve: Resolver, digest: str) -> tuple[Path, str] | None:
    """The LoRA file (and a name that finds it) whose A1111 hash starts with ``digest``."""
    from sfumato.core.errors import SfumatoError
    from sfumato.models.lora import lora_hash

    names: Callable[[], dict[Path, str]] | None = getattr(resolve, "lora_names", None)
    if names is None or len(digest) < 8:
        return None
    for path, name in names().items():
        if path.suffix.lower() != ".safetensors" or resolve("lora", name) != path:
            continue
        try:
            if lora_hash(path).startswith(digest.lower()[:12]):
                return path, name
        except (OSError, ValueError, SfumatoError):  # a broken file must not stop the others being checked
            continue
    return None


def rename_loras_by_hash(
    prompt: str, lora_hashes: Mapping[str, str] | str, resolve: Resolver
) -> tuple[str, list[str]]:
    """A recalled prompt with each ``<lora:name:…>`` that is not in the library renamed to the library
    file with the same hash (from the picture's ``Lora hashes``), as A1111 does when pasting infotext.

    Returns the prompt and a note per renamed tag. Tags already found, or whose hash is unknown,
    stay as they are (a missing LoRA is reported when the prompt runs).
    """
    hashes = parse_hashes(lora_hashes) if isinstance(lora_hashes, str) else dict(lora_hashes)
    notes: list[str] = []

    def rename(match: re.Match[str]) -> str:
        kind, name, rest = match.groups()
        digest = hashes.get(name.replace(":", "").replace(",", "").strip())
        if digest is None or resolve("lora", name) is not None:
            return match.group(0)
        found = lora_by_hash(resolve, digest)
        if found is None:
            return match.group(0)
        notes.append(
            f"LoRA '{name}' is not in the library under that name; '{found[1]}' has its hash "
            f"({digest}) and was used instead."
        )
        return f"<{kind}:{found[1]}{rest}>"

    return _LORA_TAG.sub(rename, prompt), notes
