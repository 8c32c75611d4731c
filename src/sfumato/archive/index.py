"""The SQLite index over the outputs folder: list, full-text search, show, rebuild.

The files are the truth: every row can be rebuilt from the pictures' own metadata. Each
operation opens its own short-lived connection (WAL, busy timeout), so a server worker and a
CLI can use the same index at once.
"""

from __future__ import annotations

import contextlib
import os
import re
import sqlite3
import threading
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sfumato.archive.files import IMAGE_SUFFIXES, TEMP_PREFIX, ImageFormat, save_image
from sfumato.archive.metadata import ImageMetadata, read_metadata
from sfumato.core.errors import ImageReadError, OutputError, SfumatoError
from sfumato.core.result import GeneratedImage
from sfumato.core.settings import Settings

BUSY_TIMEOUT_S = 30.0

_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS images (
        id INTEGER PRIMARY KEY,
        path TEXT NOT NULL UNIQUE,
        created TEXT NOT NULL,
        prompt TEXT NOT NULL,
        negative TEXT NOT NULL,
        seed INTEGER,
        model TEXT,
        width INTEGER NOT NULL,
        height INTEGER NOT NULL,
        params TEXT NOT NULL,
        source TEXT
    )""",
    "CREATE INDEX IF NOT EXISTS images_created ON images (created)",
    """CREATE VIRTUAL TABLE IF NOT EXISTS images_text USING fts5(
        prompt, negative, params, content='images', content_rowid='id'
    )""",
    """CREATE TRIGGER IF NOT EXISTS images_added AFTER INSERT ON images BEGIN
        INSERT INTO images_text (rowid, prompt, negative, params) VALUES (new.id, new.prompt, new.negative, new.params);
    END""",
    """CREATE TRIGGER IF NOT EXISTS images_removed AFTER DELETE ON images BEGIN
        INSERT INTO images_text (images_text, rowid, prompt, negative, params)
        VALUES ('delete', old.id, old.prompt, old.negative, old.params);
    END""",
)
_INSERT = (
    "INSERT INTO images (path, created, prompt, negative, seed, model, width, height, params, source)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_COLUMNS = "id, path, created, prompt, negative, seed, model, width, height, params, source"


class RecordNotFound(SfumatoError):
    def __init__(self, record_id: int) -> None:
        super().__init__(
            f"No picture with id {record_id} in the archive.", "List them with `sfumato archive list`."
        )
        self.record_id = record_id


class ArchiveIndexError(SfumatoError):
    """The index database cannot be opened or written."""


@dataclass(frozen=True)
class Record:
    """One archived picture. ``path`` is relative to the outputs folder, with forward slashes."""

    id: int
    path: str
    created: str  # ISO 8601, UTC: the file's modification time
    prompt: str
    negative_prompt: str
    seed: int | None
    model: str | None
    width: int
    height: int
    parameters: str
    source: str | None

    @property
    def size(self) -> str:
        return f"{self.width}x{self.height}"

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class RebuildReport:
    indexed: int = 0
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (relative path, why)


def _created(path: Path) -> str:
    return datetime.fromtimestamp(path.stat().st_mtime, UTC).isoformat(timespec="microseconds")


# SQLite integers are signed 64-bit; ComfyUI's seeds reach 2**64 - 1, so the top half is stored
# as its two's complement (pictures never record a negative seed).
_SIGNED = 2**63


def _stored_seed(seed: int | None) -> int | None:
    return seed - 2 * _SIGNED if seed is not None and seed >= _SIGNED else seed


def _row(relative: str, created: str, metadata: ImageMetadata) -> tuple[Any, ...]:
    return (
        relative,
        created,
        metadata.prompt,
        metadata.negative_prompt,
        _stored_seed(metadata.seed),
        metadata.model,
        metadata.width,
        metadata.height,
        metadata.parameters,
        metadata.source,
    )


def _record(row: sqlite3.Row | tuple[Any, ...]) -> Record:
    record = Record(*row)
    if record.seed is not None and record.seed < 0:
        return replace(record, seed=record.seed + 2 * _SIGNED)
    return record


def fts_query(text: str) -> str:
    """User words -> an FTS5 query: every word must match, as a prefix, taken literally."""
    words = re.findall(r"\w+", text)
    return " ".join(f'"{word}"*' for word in words)


class ArchiveIndex:
    def __init__(self, outputs: Path, index_path: Path) -> None:
        self.outputs = Path(outputs)
        self.index_path = Path(index_path)
        self._local = threading.local()

    @classmethod
    def from_settings(cls, settings: Settings) -> ArchiveIndex:
        return cls(settings.outputs, settings.index_path)

    def _open(self) -> sqlite3.Connection:
        """This thread's connection, opened once: closing the last connection to a WAL database
        checkpoints it, which would make every short transaction pay for a full sync."""
        connection: sqlite3.Connection | None = getattr(self._local, "connection", None)
        if connection is not None:
            return connection
        try:
            self.index_path.parent.mkdir(parents=True, exist_ok=True)
            connection = sqlite3.connect(self.index_path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
            connection.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
            if connection.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                connection.execute("PRAGMA journal_mode = WAL")
            connection.execute("PRAGMA synchronous = NORMAL")
            connection.execute("BEGIN IMMEDIATE")
            for statement in _SCHEMA:
                connection.execute(statement)
            connection.execute("COMMIT")
        except (OSError, sqlite3.Error) as error:
            if connection is not None:
                self._rollback(connection)
                connection.close()
            raise self._unusable(error) from None
        self._local.connection = connection
        return connection

    def close(self) -> None:
        """Close this thread's connection (others close when their thread ends)."""
        connection = getattr(self._local, "connection", None)
        self._local.connection = None
        if connection is not None:
            connection.close()

    @contextlib.contextmanager
    def _connect(self, write: bool = False) -> Iterator[sqlite3.Connection]:
        """One short transaction; ``write`` takes the write lock at once (no upgrade deadlocks)."""
        connection = self._open()
        try:
            connection.execute("BEGIN IMMEDIATE" if write else "BEGIN")
            yield connection
            connection.execute("COMMIT")
        except sqlite3.Error as error:
            self._rollback(connection)
            self.close()  # reopened (and re-checked) on the next call
            raise self._unusable(error) from None
        except BaseException:
            self._rollback(connection)
            raise

    @staticmethod
    def _rollback(connection: sqlite3.Connection) -> None:
        if connection.in_transaction:
            with contextlib.suppress(sqlite3.Error):
                connection.execute("ROLLBACK")

    def _unusable(self, error: Exception) -> ArchiveIndexError:
        return ArchiveIndexError(
            f"The archive index {self.index_path} cannot be used: {error}.",
            "Check that its folder is writable (SFUMATO_DATA_DIR), or rebuild it with `sfumato archive rebuild`.",
        )

    def _relative(self, path: Path) -> str:
        try:
            return path.resolve().relative_to(self.outputs.resolve()).as_posix()
        except ValueError:
            raise OutputError(
                f"{path} is outside the outputs folder {self.outputs}.",
                "Only pictures in the outputs folder are indexed.",
            ) from None

    def add(self, path: Path, metadata: ImageMetadata | None = None) -> Record:
        """Index a picture already in the outputs folder (again, if it was indexed before)."""
        path = Path(path)
        relative = self._relative(path)
        metadata = metadata or read_metadata(path)
        row = _row(relative, _created(path), metadata)
        with self._connect(write=True) as db:
            db.execute("DELETE FROM images WHERE path = ?", (relative,))
            cursor = db.execute(_INSERT, row)
            record_id = cursor.lastrowid
        assert record_id is not None
        return _record((record_id, *row))

    def save(self, item: GeneratedImage, format: ImageFormat = "png", subfolder: str | None = None) -> Record:
        """Write the picture (atomically) into the outputs folder, then index it.

        ``subfolder`` defaults to today's date (``YYYY-MM-DD``). If writing fails, OutputError is
        raised and the index is unchanged.
        """
        folder = self.outputs / (subfolder if subfolder is not None else datetime.now().strftime("%Y-%m-%d"))
        path = save_image(item, folder, format=format)
        return self.add(path)

    def remove(self, path: Path) -> None:
        """Forget a picture of the outputs folder and delete its file (a client asked not to keep it)."""
        relative = self._relative(Path(path))
        with self._connect(write=True) as db:
            db.execute("DELETE FROM images WHERE path = ?", (relative,))
        (self.outputs / relative).unlink(missing_ok=True)

    def list(self, limit: int = 50, offset: int = 0) -> list[Record]:
        """Newest first."""
        with self._connect() as db:
            rows = db.execute(
                f"SELECT {_COLUMNS} FROM images ORDER BY created DESC, id DESC LIMIT ? OFFSET ?",
                (max(0, limit), max(0, offset)),
            ).fetchall()
        return [_record(row) for row in rows]

    def count(self) -> int:
        with self._connect() as db:
            return int(db.execute("SELECT count(*) FROM images").fetchone()[0])

    def search(self, text: str, limit: int = 50, offset: int = 0) -> list[Record]:
        """Pictures whose prompt, negative prompt or parameters hold every word of ``text``; best first."""
        query = fts_query(text)
        if not query:
            raise SfumatoError("Nothing to search for.", "Give one or more words, for example: red circle.")
        columns = ", ".join(f"images.{name.strip()}" for name in _COLUMNS.split(","))
        with self._connect() as db:
            rows = db.execute(
                f"SELECT {columns} FROM images_text JOIN images ON images.id = images_text.rowid"
                " WHERE images_text MATCH ? ORDER BY bm25(images_text), images.created DESC LIMIT ? OFFSET ?",
                (query, max(0, limit), max(0, offset)),
            ).fetchall()
        return [_record(row) for row in rows]

    def get(self, record_id: int) -> Record:
        with self._connect() as db:
            row = db.execute(f"SELECT {_COLUMNS} FROM images WHERE id = ?", (record_id,)).fetchone()
        if row is None:
            raise RecordNotFound(record_id)
        return _record(row)

    def path_of(self, record: Record) -> Path:
        return self.outputs / record.path

    def _scan(self) -> Iterator[Path]:
        if not self.outputs.is_dir():
            return
        for folder, folders, names in os.walk(self.outputs):
            folders[:] = sorted(name for name in folders if not name.startswith("."))
            for name in names:
                if not name.startswith(TEMP_PREFIX):
                    yield Path(folder) / name

    def rebuild(self) -> RebuildReport:
        """Drop the index and rebuild it from the pictures alone.

        Files are read before the database is touched, so the write lock is held only for the
        final swap. Files that are not pictures, or carry no recipe, are skipped and reported.
        """
        report = RebuildReport()
        found: list[tuple[float, str, tuple[Any, ...]]] = []
        for path in self._scan():
            relative = path.relative_to(self.outputs).as_posix()
            if path.suffix.lower() not in IMAGE_SUFFIXES:
                report.skipped.append((relative, "not a PNG, JPEG or WebP picture"))
                continue
            try:
                metadata = read_metadata(path)
                mtime = path.stat().st_mtime
            except (ImageReadError, OSError) as error:
                report.skipped.append((relative, str(error)))
                continue
            if not metadata.has_recipe:
                report.skipped.append((relative, "no generation settings in it"))
                continue
            found.append((mtime, relative, _row(relative, _created(path), metadata)))
        found.sort(key=lambda entry: (entry[0], entry[1]))
        self._set_aside_if_corrupt()
        with self._connect(write=True) as db:
            for name in ("images_text", "images"):
                db.execute(f"DROP TABLE IF EXISTS {name}")
            for statement in _SCHEMA:
                db.execute(statement)
            db.executemany(_INSERT, [row for _, _, row in found])
        report.indexed = len(found)
        return report

    def _set_aside_if_corrupt(self) -> None:
        """A damaged index file is renamed (kept for inspection), so that rebuild can start afresh."""
        self.close()
        if not self.index_path.exists():
            return
        try:
            with contextlib.closing(sqlite3.connect(self.index_path, timeout=BUSY_TIMEOUT_S)) as db:
                db.execute("PRAGMA schema_version").fetchone()
        except sqlite3.DatabaseError:
            stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
            for suffix in ("", "-wal", "-shm"):
                old = self.index_path.with_name(self.index_path.name + suffix)
                if old.exists():
                    old.replace(old.with_name(f"{self.index_path.name}.corrupt-{stamp}{suffix}"))


class Archive(ArchiveIndex):
    """The archive a Settings names: its outputs folder and its index file."""

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings.outputs, settings.index_path)
