"""The user's model files, used in place: configured folders, cached hashes.

Layouts understood: A1111 (webui root or its ``models/``), ComfyUI (root or ``models/``, plus the
folders its ``extra_model_paths.yaml`` names), Stability Matrix (``Data/Models`` with
``StableDiffusion``, ``Lora``, ``TextualInversion``…), InvokeAI (``models/<base>/<type>/``) and a flat
folder of files. In the named folders of the first three the folder says the kind; in InvokeAI and
flat folders each file's own tensors say it (a LoRA in a flat folder is a LoRA), read from its
safetensors header once and cached in SQLite by path + size + mtime, as are hashes and
architectures. A symlink loop is walked once.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import sqlite3
import tempfile
from collections.abc import Callable, Iterator
from contextlib import closing
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from sfumato.core.errors import SfumatoError

if TYPE_CHECKING:
    from sfumato.core.settings import Settings

MODEL_SUFFIXES = frozenset({".safetensors", ".sft", ".ckpt", ".pt", ".pth", ".bin"})
HASH_CHUNK = 1 << 20

# Sub-folders of an A1111 (webui root or its models/) and a ComfyUI (root or models/) tree, by kind.
TREE_KINDS: dict[str, str] = {
    "Stable-diffusion": "checkpoint",
    "checkpoints": "checkpoint",
    "VAE": "vae",
    "vae": "vae",
    "Lora": "lora",
    "LyCORIS": "lora",
    "loras": "lora",
    "embeddings": "embedding",
    "ESRGAN": "upscaler",
    "RealESRGAN": "upscaler",
    "BSRGAN": "upscaler",
    "SwinIR": "upscaler",
    "DAT": "upscaler",
    "HAT": "upscaler",
    "ScuNET": "upscaler",
    "upscale_models": "upscaler",
    "GFPGAN": "restorer",
    "Codeformer": "restorer",
    "facerestore_models": "restorer",
    "ControlNet": "controlnet",
    "controlnet": "controlnet",
    "unet": "unet",
    "diffusion_models": "unet",
    "clip": "text_encoder",
    "text_encoders": "text_encoder",
    "VAE-approx": "vae_approx",
    "vae_approx": "vae_approx",
    # Stability Matrix's shared Data/Models folder
    "StableDiffusion": "checkpoint",
    "TextualInversion": "embedding",
    "CodeFormer": "restorer",
    "ApproxVAE": "vae_approx",
    "DiffusionModels": "unet",
    "CLIP": "text_encoder",
    "TextEncoders": "text_encoder",
}

# ComfyUI's extra_model_paths.yaml keys, by kind.
COMFYUI_PATH_KINDS: dict[str, str] = {
    "checkpoints": "checkpoint",
    "vae": "vae",
    "loras": "lora",
    "embeddings": "embedding",
    "upscale_models": "upscaler",
    "facerestore_models": "restorer",
    "controlnet": "controlnet",
    "unet": "unet",
    "diffusion_models": "unet",
    "clip": "text_encoder",
    "text_encoders": "text_encoder",
    "vae_approx": "vae_approx",
}

# InvokeAI's models/<base>/<type>/ folders: the base names that mark such a tree, and what a type
# folder holds when a file's contents cannot tell (a pickle).
INVOKEAI_BASES = frozenset({"sd-1", "sd-2", "sdxl", "sdxl-refiner", "sd-3", "flux", "any"})
INVOKEAI_TYPES: dict[str, str] = {
    "main": "checkpoint",
    "vae": "vae",
    "lora": "lora",
    "embedding": "embedding",
    "controlnet": "controlnet",
    "t5_encoder": "text_encoder",
    "clip_embed": "text_encoder",
}
BY_CONTENT = "by content"  # a folder whose files' kinds come from their tensors

ProgressCallback = Callable[[int, int], None]


@dataclass(frozen=True)
class ModelEntry:
    name: str  # file name without extension, with sub-folders as A1111 shows them ("sdxl/foo")
    kind: str  # checkpoint, vae, lora, embedding, upscaler, restorer
    path: Path
    size: int
    architecture: str | None = None
    hash: str | None = None  # AutoV2
    sha256: str | None = None  # the whole SHA-256, when it was computed

    @property
    def title(self) -> str:
        """A1111's checkpoint title: ``name [hash]``."""
        return f"{self.name} [{self.hash}]" if self.hash else self.name

    def to_json(self) -> dict[str, object]:
        data = asdict(self)
        data["path"] = str(self.path)
        return data


class ModelLibrary:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.db_path = settings.data_dir / "models.sqlite"
        self.folders_path = settings.data_dir / "model_folders.json"

    # folders -----------------------------------------------------------------------------------

    def added_folders(self) -> list[Path]:
        try:
            return [Path(p) for p in json.loads(self.folders_path.read_text("utf-8"))]
        except (OSError, json.JSONDecodeError, TypeError):
            return []

    def add_folder(self, folder: Path) -> Path:
        folder = folder.expanduser().resolve()
        if not folder.is_dir():
            raise SfumatoError(f"{folder} is not a folder.", "Give the path of an existing folder of models.")
        if (folder / EXTRA_MODEL_PATHS).is_file():
            read_extra_model_paths(folder / EXTRA_MODEL_PATHS)  # a broken file is said now, not ignored later
        folders = [p for p in self.added_folders() if p != folder] + [folder]
        self.folders_path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(
            "w", dir=self.folders_path.parent, delete=False, encoding="utf-8"
        ) as tmp:
            json.dump([str(p) for p in folders], tmp, indent=1)
        Path(tmp.name).replace(self.folders_path)
        return folder

    def folders(self) -> list[Path]:
        seen: list[Path] = []
        for folder in [*self.settings.model_folders, *self.added_folders()]:
            folder = folder.expanduser().resolve()
            if folder not in seen:
                seen.append(folder)
        return seen

    # listing -----------------------------------------------------------------------------------

    def entries(
        self,
        *,
        identify: bool = False,
        hash: bool = False,
        progress: Callable[[Path], ProgressCallback | None] | None = None,
    ) -> list[ModelEntry]:
        """Every model file; with ``identify``/``hash`` also architecture and AutoV2 (cached)."""
        found: dict[Path, ModelEntry] = {}
        with closing(self._db()) as db:
            for path, kind, name, size, mtime in self._walk(db):
                if path in found:
                    continue
                cached = _cached(db, path, size, mtime)
                arch = cached[0] if cached else None
                digest = cached[1] if cached else None
                if identify and arch is None and kind in ("checkpoint", "vae", "upscaler"):
                    arch = self._identify(path, kind)
                    _store(db, path, size, mtime, architecture=arch)
                if hash and digest is None and not path.is_dir():
                    digest = self.hash_file(path, progress(path) if progress else None, db=db)
                found[path] = ModelEntry(
                    name, kind, path, size, arch, digest[:10] if digest else None, digest
                )
        return sorted(found.values(), key=lambda e: (e.kind, e.name.lower()))

    def _walk(self, db: sqlite3.Connection) -> Iterator[tuple[Path, str, str, int, int]]:
        from sfumato.models.loading import BUILTIN_MODEL, demo_model_folder
        from sfumato.models.upscalers import BUILTIN_UPSCALER, demo_upscaler_file

        builtin = demo_model_folder()
        if (builtin / "model_index.json").is_file():
            size = sum(p.stat().st_size for p in builtin.rglob("*") if p.is_file())
            yield builtin, "checkpoint", BUILTIN_MODEL, size, builtin.stat().st_mtime_ns
        upscaler = demo_upscaler_file()
        if upscaler.is_file():
            stat = upscaler.stat()
            yield upscaler, "upscaler", BUILTIN_UPSCALER, stat.st_size, stat.st_mtime_ns
        for root in self.folders():
            if (root / "model_index.json").is_file():  # the folder is itself one diffusers model
                stat = root.stat()
                yield root, "checkpoint", root.name, stat.st_size, stat.st_mtime_ns
                continue
            for folder in kind_folders(root):
                for path, stat in _model_files(folder.path):
                    rel = path.relative_to(folder.path).as_posix()
                    if path.suffix.lower() in MODEL_SUFFIXES:
                        rel = rel[: -len(path.suffix)]
                    kind = folder.kind or _content_kind(db, path, stat, folder.fallback)
                    yield path, kind, rel, stat.st_size, stat.st_mtime_ns

    def _identify(self, path: Path, kind: str = "checkpoint") -> str:
        from sfumato.models.identify import identify_file
        from sfumato.models.upscalers import identify_upscaler

        try:
            if kind == "upscaler":
                return identify_upscaler(path)
            identity = identify_file(path)
        except SfumatoError as exc:
            if type(exc).__name__ == "UnsafeModelFile":
                return "unsafe"
            return (
                "unknown" if type(exc).__name__ == "UnsupportedModel" and kind == "upscaler" else "unreadable"
            )
        return identity.architecture or identity.kind

    # hashing -----------------------------------------------------------------------------------

    def hash_file(
        self, path: Path, progress: ProgressCallback | None = None, db: sqlite3.Connection | None = None
    ) -> str:
        """The file's AutoV2 hash (first 10 hex of its SHA-256), cached by path + size + mtime."""
        stat = path.stat()
        own = db is None
        conn = db if db is not None else self._db()
        try:
            cached = _cached(conn, path.absolute(), stat.st_size, stat.st_mtime_ns)
            if cached and cached[1]:
                return cached[1][:10]
            digest = sha256_file(path, progress)
            _store(conn, path.absolute(), stat.st_size, stat.st_mtime_ns, sha256=digest)
            return digest[:10]
        finally:
            if own:
                conn.close()

    # lookup ------------------------------------------------------------------------------------

    def resolve(self, kind: str, name: str) -> Path | None:
        """A file of ``kind`` by name (with or without extension), AutoV2/SHA-256 prefix, or ``name [hash]``."""
        wanted_hash = None
        title = re.fullmatch(r"(.*?)\s*\[([0-9a-fA-F]{8,64})\]", name.strip())
        if title:
            name, wanted_hash = title.group(1), title.group(2).lower()
        key = name.strip().replace("\\", "/")
        stem = key.rsplit(".", 1)[0] if Path(key).suffix.lower() in MODEL_SUFFIXES else key
        by_hash: Path | None = None
        with closing(self._db()) as db:
            for path, entry_kind, rel, size, mtime in self._walk(db):
                if entry_kind != kind:
                    continue
                if stem in (rel, path.stem, rel.rsplit("/", 1)[-1]):
                    return path
                cached = _cached(db, path, size, mtime)
                digest = cached[1] if cached else None
                probe = wanted_hash or key.lower()
                if (
                    digest
                    and len(probe) >= 8
                    and re.fullmatch(r"[0-9a-f]+", probe)
                    and digest.startswith(probe)
                ):
                    by_hash = by_hash or path
        return by_hash

    # storage -----------------------------------------------------------------------------------

    def _db(self) -> sqlite3.Connection:
        self.db_path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self.db_path, timeout=30)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute(
            "CREATE TABLE IF NOT EXISTS files (path TEXT PRIMARY KEY, size INTEGER, mtime_ns INTEGER,"
            " sha256 TEXT, architecture TEXT)"
        )
        with contextlib.suppress(sqlite3.OperationalError):  # added later: what the file's tensors say it is
            conn.execute("ALTER TABLE files ADD COLUMN kind TEXT")
        return conn


class KindFolder(NamedTuple):
    path: Path
    kind: str | None  # None: each file's tensors say its kind
    fallback: str = "checkpoint"  # the kind of a file whose tensors cannot be read (a pickle)


EXTRA_MODEL_PATHS = "extra_model_paths.yaml"


def read_extra_model_paths(path: Path) -> list[KindFolder]:
    """The existing folders a ComfyUI ``extra_model_paths.yaml`` names: per section a ``base_path``
    (relative to the file's folder) and per kind one folder a line."""
    import yaml

    try:
        data = yaml.safe_load(path.read_text("utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as error:
        first = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise SfumatoError(
            f"{path} cannot be read as YAML: {first}.", "Fix the file (ComfyUI reads it too), then try again."
        ) from None
    if data is None:
        return []
    if not isinstance(data, dict):
        raise SfumatoError(
            f"{path} is not a list of sections (ComfyUI's extra_model_paths.yaml format).",
            "Each section needs a base_path and folders by kind, e.g. `checkpoints: models/Stable-diffusion`.",
        )
    folders: list[KindFolder] = []
    for section in data.values():
        if not isinstance(section, dict):
            continue
        base = section.get("base_path")
        base_dir = path.parent / Path(base).expanduser() if isinstance(base, str) else path.parent
        for key, value in section.items():
            kind = COMFYUI_PATH_KINDS.get(str(key))
            if kind is None or not isinstance(value, str):
                continue
            for line in value.splitlines():
                folder = base_dir / Path(line.strip()).expanduser()
                if line.strip() and folder.is_dir():
                    folders.append(KindFolder(folder, kind))
    return folders


def _names(folder: Path) -> set[str]:
    try:
        # exact names: on case-insensitive systems "vae" would also match "VAE"
        return {item.name for item in folder.iterdir()}
    except OSError:
        return set()


def kind_folders(root: Path) -> list[KindFolder]:
    """The folders of a root and what they hold: an A1111, ComfyUI or Stability Matrix tree's known
    sub-folders and the folders ComfyUI's extra_model_paths.yaml names (by kind); InvokeAI's type
    folders (by content); else the root itself (by content)."""
    folders: list[KindFolder] = []
    if (root / EXTRA_MODEL_PATHS).is_file():
        with contextlib.suppress(SfumatoError):  # `models add-folder` reports a broken file
            folders += read_extra_model_paths(root / EXTRA_MODEL_PATHS)
    for base in (root, root / "models", root / "Models", root / "Data" / "Models"):
        names = _names(base)
        folders += [KindFolder(base / sub, kind) for sub, kind in TREE_KINDS.items() if sub in names]
        for invoke_base in sorted(INVOKEAI_BASES & names):
            for type_folder in sorted(base / invoke_base / name for name in _names(base / invoke_base)):
                fallback = INVOKEAI_TYPES.get(type_folder.name, "checkpoint")
                folders.append(KindFolder(type_folder, None, fallback))
    unique: dict[Path, KindFolder] = {}
    for folder in folders:
        with contextlib.suppress(OSError):
            if folder.path.is_dir():
                unique.setdefault(folder.path.resolve(), folder)  # models/ and Models/ on a case-blind disk
    return list(unique.values()) or [KindFolder(root, None)]


def _content_kind(db: sqlite3.Connection, path: Path, stat: os.stat_result, fallback: str) -> str:
    """What a file's tensors say it is (cached); ``fallback`` when they cannot be read."""
    if path.is_dir():
        return "checkpoint"  # a diffusers model folder
    row = db.execute(
        "SELECT kind FROM files WHERE path = ? AND size = ? AND mtime_ns = ?",
        (str(path), stat.st_size, stat.st_mtime_ns),
    ).fetchone()
    if row and row[0]:
        return row[0]
    from sfumato.models.identify import kind_of_header
    from sfumato.models.safety import read_safetensors_header

    try:
        kind = kind_of_header(read_safetensors_header(path))
    except SfumatoError:  # a pickle, or a damaged file: the folder's guess
        return fallback
    kind = fallback if kind == "unknown" else kind
    _store(db, path, stat.st_size, stat.st_mtime_ns, kind=kind)
    return kind


def _model_files(folder: Path) -> Iterator[tuple[Path, os.stat_result]]:
    """Model files and diffusers folders under ``folder``, each once: a folder reached again through a
    symlink (a loop, or a link to a sibling) is not walked again, nor one that links back above."""
    try:
        top = folder.resolve()
    except OSError:
        return
    seen: set[tuple[int, int]] = set()
    stack = [folder]
    while stack:
        current = stack.pop()
        try:
            stat = current.stat()
        except OSError:
            continue
        if (stat.st_dev, stat.st_ino) in seen:
            continue
        seen.add((stat.st_dev, stat.st_ino))
        try:
            with os.scandir(current) as it:
                items = list(it)
        except OSError:
            continue
        for item in items:
            if item.name.startswith("."):
                continue
            try:
                if item.is_dir(follow_symlinks=True):
                    target = Path(os.path.realpath(item.path))
                    if item.is_symlink() and (target == top or target in top.parents):
                        continue
                    if Path(item.path, "model_index.json").is_file():  # a diffusers model folder
                        yield Path(item.path), item.stat()
                    else:
                        stack.append(Path(item.path))
                elif Path(item.name).suffix.lower() in MODEL_SUFFIXES:
                    file_stat = item.stat()
                    if (file_stat.st_dev, file_stat.st_ino) not in seen:
                        seen.add((file_stat.st_dev, file_stat.st_ino))
                        yield Path(item.path), file_stat
            except OSError:  # a dangling link, a file removed while listing
                continue


def sha256_file(path: Path, progress: ProgressCallback | None = None) -> str:
    total = path.stat().st_size
    digest = hashlib.sha256()
    done = 0
    with path.open("rb") as handle:
        while chunk := handle.read(HASH_CHUNK * 8):
            digest.update(chunk)
            done += len(chunk)
            if progress is not None:
                progress(done, total)
    return digest.hexdigest()


def _cached(
    db: sqlite3.Connection, path: Path, size: int, mtime: int
) -> tuple[str | None, str | None] | None:
    row = db.execute(
        "SELECT architecture, sha256 FROM files WHERE path = ? AND size = ? AND mtime_ns = ?",
        (str(path), size, mtime),
    ).fetchone()
    return (row[0], row[1]) if row else None


def _store(
    db: sqlite3.Connection,
    path: Path,
    size: int,
    mtime: int,
    *,
    architecture: str | None = None,
    sha256: str | None = None,
    kind: str | None = None,
) -> None:
    with db:
        row = db.execute(
            "SELECT size, mtime_ns, architecture, sha256, kind FROM files WHERE path = ?", (str(path),)
        ).fetchone()
        if row and (row[0], row[1]) == (size, mtime):
            architecture = architecture or row[2]
            sha256 = sha256 or row[3]
            kind = kind or row[4]
        db.execute(
            "INSERT OR REPLACE INTO files (path, size, mtime_ns, sha256, architecture, kind)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (str(path), size, mtime, sha256, architecture, kind),
        )
