"""The user's model files, used in place: configured folders, A1111 and ComfyUI trees, cached hashes.

Listing only walks folders and stats files; headers are read and files hashed only when asked,
and both results are cached in SQLite by path + size + mtime.
"""

from __future__ import annotations

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
from typing import TYPE_CHECKING

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
}

ProgressCallback = Callable[[int, int], None]


@dataclass(frozen=True)
class ModelEntry:
    name: str  # file name without extension, with sub-folders as A1111 shows them ("sdxl/foo")
    kind: str  # checkpoint, vae, lora, embedding, upscaler, restorer
    path: Path
    size: int
    architecture: str | None = None
    hash: str | None = None  # AutoV2

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
            for path, kind, name, size, mtime in self._walk():
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
                found[path] = ModelEntry(name, kind, path, size, arch, digest[:10] if digest else None)
        return sorted(found.values(), key=lambda e: (e.kind, e.name.lower()))

    def _walk(self) -> Iterator[tuple[Path, str, str, int, int]]:
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
            for folder, kind in _kind_folders(root):
                for path, stat in _model_files(folder):
                    rel = path.relative_to(folder).as_posix()
                    if path.suffix.lower() in MODEL_SUFFIXES:
                        rel = rel[: -len(path.suffix)]
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
            for path, entry_kind, rel, size, mtime in self._walk():
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
        return conn


def _kind_folders(root: Path) -> list[tuple[Path, str]]:
    """The (folder, kind) pairs of a root: an A1111/ComfyUI tree's known sub-folders, else the root itself."""
    pairs: list[tuple[Path, str]] = []
    for base in (root, root / "models"):
        try:
            # exact names: on case-insensitive systems "vae" would also match "VAE"
            names = {item.name for item in base.iterdir()}
        except OSError:
            continue
        pairs += [
            (base / sub, kind) for sub, kind in TREE_KINDS.items() if sub in names and (base / sub).is_dir()
        ]
    return pairs or [(root, "checkpoint")]


def _model_files(folder: Path) -> Iterator[tuple[Path, os.stat_result]]:
    stack = [folder]
    while stack:
        current = stack.pop()
        try:
            with os.scandir(current) as it:
                for item in it:
                    if item.name.startswith("."):
                        continue
                    if item.is_dir(follow_symlinks=True):
                        if Path(item.path, "model_index.json").is_file():  # a diffusers model folder
                            yield Path(item.path), item.stat()
                        else:
                            stack.append(Path(item.path))
                    elif Path(item.name).suffix.lower() in MODEL_SUFFIXES:
                        yield Path(item.path), item.stat()
        except OSError:
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
) -> None:
    with db:
        row = db.execute(
            "SELECT size, mtime_ns, architecture, sha256 FROM files WHERE path = ?", (str(path),)
        ).fetchone()
        if row and (row[0], row[1]) == (size, mtime):
            architecture = architecture or row[2]
            sha256 = sha256 or row[3]
        db.execute(
            "INSERT OR REPLACE INTO files (path, size, mtime_ns, sha256, architecture) VALUES (?, ?, ?, ?, ?)",
            (str(path), size, mtime, sha256, architecture),
        )
