"""The archive by concept: CLIP embeddings of its pictures, searched by text or by a picture.

Embeddings live beside the archive index in their own SQLite file (``clip_embeddings.sqlite`` in
the data folder), keyed by the picture's path, size and modification time and by the CLIP that
made them; like the index they can always be rebuilt from the files. A search first embeds any
picture not yet embedded (saved before, or by another CLIP), so it never misses one.
"""

from __future__ import annotations

import contextlib
import hashlib
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from sfumato.analysis.vector_index import VectorIndex
from sfumato.core.errors import ImageReadError, InvalidRequest

if TYPE_CHECKING:
    from PIL import Image

    from sfumato.analysis.clip_model import Clip
    from sfumato.archive.index import Record
    from sfumato.core.settings import Settings

SCHEMA = """CREATE TABLE IF NOT EXISTS embeddings (
    path TEXT NOT NULL, clip TEXT NOT NULL, size INTEGER NOT NULL, mtime_ns INTEGER NOT NULL,
    vector BLOB NOT NULL, PRIMARY KEY (path, clip))"""


@dataclass(frozen=True)
class ArchiveHit:
    record: Record
    score: float

    def to_json(self) -> dict[str, Any]:
        return {**self.record.to_json(), "score": round(self.score, 4)}


def embeddings_path(settings: Settings) -> Path:
    return settings.data_dir / "clip_embeddings.sqlite"


def clip_key(clip: Clip) -> str:
    """Which CLIP made a vector: its name, size and a digest of a few of its weights."""
    import torch

    first = next(iter(clip.model.parameters()))
    digest = hashlib.sha256(first.detach().to(torch.float32).numpy().tobytes()[:65536]).hexdigest()[:12]
    return f"{clip.name}-{clip.dim}-{digest}"


@contextlib.contextmanager
def _open(path: Path) -> Iterator[sqlite3.Connection]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.closing(sqlite3.connect(path, timeout=30)) as db:
        db.execute("PRAGMA journal_mode=WAL")
        db.execute(SCHEMA)
        with db:
            yield db


def embed_archive(settings: Settings, clip: Clip, records: list[Record] | None = None) -> int:
    """Embed every archived picture that has no current embedding by this CLIP; returns how many."""
    from sfumato.archive.index import Archive

    archive = Archive(settings)
    records = records if records is not None else archive.list(limit=archive.count())
    key = clip_key(clip)
    with _open(embeddings_path(settings)) as db:
        known = {
            (row[0], row[1], row[2])
            for row in db.execute("SELECT path, size, mtime_ns FROM embeddings WHERE clip = ?", (key,))
        }
    todo: list[tuple[str, int, int, Image.Image]] = []
    for record in records:
        file = archive.path_of(record)
        try:
            stat = file.stat()
        except OSError:
            continue
        if (record.path, stat.st_size, stat.st_mtime_ns) in known:
            continue
        picture = _open_picture(file)
        if picture is not None:
            todo.append((record.path, stat.st_size, stat.st_mtime_ns, picture))
    if not todo:
        return 0
    vectors = clip.embed_pictures([item[3] for item in todo])
    with _open(embeddings_path(settings)) as db:
        db.executemany(
            "INSERT OR REPLACE INTO embeddings (path, clip, size, mtime_ns, vector) VALUES (?, ?, ?, ?, ?)",
            [
                (p, key, s, m, v.astype(np.float32).tobytes())
                for (p, s, m, _), v in zip(todo, vectors, strict=True)
            ],
        )
    return len(todo)


def _open_picture(file: Path) -> Image.Image | None:
    from sfumato.core.images import load_image

    try:
        picture = load_image(str(file), "picture")
        picture.load()
        return picture
    except (ImageReadError, OSError):
        return None


def search_archive(
    settings: Settings, clip: Clip, text: str | None = None, like: Image.Image | None = None, limit: int = 20
) -> list[ArchiveHit]:
    """Pictures nearest to a text or to a picture, best first."""
    from sfumato.archive.index import Archive

    if (text is None) == (like is None):
        raise InvalidRequest(
            "Search by a text or by a picture (one of them).", 'e.g. sfumato search "a yellow star".'
        )
    archive = Archive(settings)
    records = archive.list(limit=archive.count())
    embed_archive(settings, clip, records)
    by_path = {record.path: record for record in records}
    key = clip_key(clip)
    paths, rows = [], []
    with _open(embeddings_path(settings)) as db:
        for path, blob in db.execute("SELECT path, vector FROM embeddings WHERE clip = ?", (key,)):
            if path in by_path:
                paths.append(path)
                rows.append(np.frombuffer(blob, dtype=np.float32))
    if not rows:
        return []
    query = clip.embed_texts([text])[0] if text is not None else clip.embed_pictures([like])[0]  # type: ignore[list-item]
    hits = VectorIndex(np.stack(rows)).search(query, limit)
    return [ArchiveHit(by_path[paths[i]], float(s)) for i, s in zip(hits.ids, hits.scores, strict=True)]


def remember_picture(settings: Settings, record: Record) -> None:
    """Embed one newly saved picture (setting ``embed_on_save``)."""
    from sfumato.analysis.clip_model import load_clip

    embed_archive(settings, load_clip(settings.clip_model), [record])
