"""The job store in one SQLite file (WAL), shared by every worker that can open it."""

from __future__ import annotations

import json
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sfumato.core.errors import SfumatoError
from sfumato.core.request import GenerationRequest
from sfumato.core.training_request import TrainingRequest
from sfumato.jobs.model import ErrorKind, Job, JobKind, JobState, SavedImageInfo

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    state TEXT NOT NULL,
    priority INTEGER NOT NULL DEFAULT 0,
    request TEXT NOT NULL,
    created_at REAL NOT NULL,
    started_at REAL,
    finished_at REAL,
    worker_id TEXT,
    heartbeat_at REAL,
    attempts INTEGER NOT NULL DEFAULT 0,
    cancel_requested INTEGER NOT NULL DEFAULT 0,
    error TEXT,
    error_kind TEXT,
    images TEXT NOT NULL DEFAULT '[]',
    notes TEXT NOT NULL DEFAULT '[]'
);
CREATE INDEX IF NOT EXISTS jobs_queue ON jobs (state, priority DESC, seq);
"""

_COLUMNS = (
    "id, state, priority, request, created_at, started_at, finished_at, worker_id, attempts, "
    "cancel_requested, error, error_kind, images, notes, kind, training, output"
)
# Columns added after the first release: a store written before them gets them with these defaults.
_ADDED_COLUMNS = {
    "kind": "TEXT NOT NULL DEFAULT 'generate'",
    "training": "TEXT",
    "output": "TEXT",
}


class JobNotFound(SfumatoError):
    """No job has this id."""


def _job(row: sqlite3.Row) -> Job:
    return Job(
        id=row["id"],
        state=JobState(row["state"]),
        priority=row["priority"],
        request=GenerationRequest.model_validate_json(row["request"]),
        created_at=row["created_at"],
        started_at=row["started_at"],
        finished_at=row["finished_at"],
        worker_id=row["worker_id"],
        attempts=row["attempts"],
        cancel_requested=bool(row["cancel_requested"]),
        error=row["error"],
        error_kind=row["error_kind"],
        images=[SavedImageInfo.model_validate(item) for item in json.loads(row["images"])],
        notes=json.loads(row["notes"]),
        kind=row["kind"],
        training=TrainingRequest.model_validate_json(row["training"]) if row["training"] else None,
        output=row["output"],
    )


class SqliteJobStore:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._lock = threading.RLock()
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=30)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        # NORMAL in WAL mode survives a killed process; only a power cut can lose the last commits.
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)
        self._add_columns()

    def _add_columns(self) -> None:
        with self._lock:
            present = {row["name"] for row in self._db.execute("PRAGMA table_info(jobs)")}
            for name, definition in _ADDED_COLUMNS.items():
                if name not in present:
                    self._db.execute(f"ALTER TABLE jobs ADD COLUMN {name} {definition}")

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def _one(self, job_id: str) -> Job:
        row = self._db.execute(f"SELECT {_COLUMNS} FROM jobs WHERE id = ?", (job_id,)).fetchone()
        if row is None:
            raise JobNotFound(f"There is no job {job_id!r}.", "List jobs to see their ids.")
        return _job(row)

    def add(self, request: GenerationRequest, priority: int = 0) -> Job:
        job_id = uuid.uuid4().hex
        with self._transaction() as db:
            db.execute(
                "INSERT INTO jobs (id, state, priority, request, created_at) VALUES (?, ?, ?, ?, ?)",
                (job_id, JobState.queued.value, priority, request.model_dump_json(), time.time()),
            )
            return self._one(job_id)

    def add_training(self, training: TrainingRequest, priority: int = 0) -> Job:
        job_id = uuid.uuid4().hex
        with self._transaction() as db:
            db.execute(
                "INSERT INTO jobs (id, state, priority, request, created_at, kind, training) "
                "VALUES (?, ?, ?, ?, ?, 'train', ?)",
                (
                    job_id,
                    JobState.queued.value,
                    priority,
                    GenerationRequest().model_dump_json(),
                    time.time(),
                    training.model_dump_json(),
                ),
            )
            return self._one(job_id)

    def set_output(self, job_id: str, output: str) -> Job:
        """Record the file a training job wrote (before ``complete``)."""
        with self._transaction() as db:
            db.execute("UPDATE jobs SET output = ? WHERE id = ?", (output, job_id))
            return self._one(job_id)

    def get(self, job_id: str) -> Job | None:
        with self._lock:
            try:
                return self._one(job_id)
            except JobNotFound:
                return None

    @staticmethod
    def _where(states: Sequence[JobState]) -> tuple[str, list[Any]]:
        if not states:
            return "", []
        return f" WHERE state IN ({', '.join('?' * len(states))})", [s.value for s in states]

    def list(self, states: Sequence[JobState] = (), limit: int = 100, offset: int = 0) -> list[Job]:
        where, args = self._where(states)
        with self._lock:
            rows = self._db.execute(
                f"SELECT {_COLUMNS} FROM jobs{where} ORDER BY seq DESC LIMIT ? OFFSET ?",
                (*args, limit, offset),
            ).fetchall()
        return [_job(row) for row in rows]

    def count(self, states: Sequence[JobState] = ()) -> int:
        where, args = self._where(states)
        with self._lock:
            return int(self._db.execute(f"SELECT COUNT(*) FROM jobs{where}", args).fetchone()[0])

    def position(self, job_id: str) -> int | None:
        with self._lock:
            row = self._db.execute("SELECT state, priority, seq FROM jobs WHERE id = ?", (job_id,)).fetchone()
            if row is None or row["state"] != JobState.queued.value:
                return None
            ahead = self._db.execute(
                "SELECT COUNT(*) FROM jobs WHERE state = 'queued' AND (priority > ? OR (priority = ? AND seq < ?))",
                (row["priority"], row["priority"], row["seq"]),
            ).fetchone()[0]
        return int(ahead)

    def claim(self, worker_id: str, kinds: Sequence[JobKind] | None = None) -> Job | None:
        now = time.time()
        only = "" if kinds is None else f" AND kind IN ({', '.join('?' * len(kinds))})"
        with self._transaction() as db:
            row = db.execute(
                f"SELECT id FROM jobs WHERE state = 'queued'{only} ORDER BY priority DESC, seq LIMIT 1",
                tuple(kinds or ()),
            ).fetchone()
            if row is None:
                return None
            db.execute(
                "UPDATE jobs SET state = 'running', worker_id = ?, started_at = ?, heartbeat_at = ?, "
                "attempts = attempts + 1 WHERE id = ?",
                (worker_id, now, now, row["id"]),
            )
            return self._one(row["id"])

    def heartbeat(self, job_id: str, worker_id: str) -> bool:
        with self._transaction() as db:
            db.execute(
                "UPDATE jobs SET heartbeat_at = ? WHERE id = ? AND worker_id = ?",
                (time.time(), job_id, worker_id),
            )
            row = db.execute("SELECT cancel_requested FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return bool(row and row["cancel_requested"])

    def complete(
        self, job_id: str, worker_id: str, images: Sequence[SavedImageInfo], notes: Sequence[str] = ()
    ) -> Job:
        payload = json.dumps([image.model_dump(mode="json") for image in images])
        with self._transaction() as db:
            row = db.execute("SELECT notes FROM jobs WHERE id = ?", (job_id,)).fetchone()
            kept = json.loads(row["notes"]) if row else []
            kept += [note for note in notes if note not in kept]
            db.execute(
                "UPDATE jobs SET state = 'finished', finished_at = ?, images = ?, notes = ?, error = NULL "
                "WHERE id = ? AND state = 'running'",
                (time.time(), payload, json.dumps(kept), job_id),
            )
            return self._one(job_id)

    def _finish(
        self, job_id: str, state: JobState, reason: str, images: Sequence[SavedImageInfo] | None = None
    ) -> Job:
        with self._transaction() as db:
            db.execute(
                "UPDATE jobs SET state = ?, finished_at = ?, error = ? WHERE id = ? AND state IN ('queued', 'running')",
                (state.value, time.time(), reason, job_id),
            )
            if images:
                db.execute(
                    "UPDATE jobs SET images = ? WHERE id = ?",
                    (json.dumps([i.model_dump(mode="json") for i in images]), job_id),
                )
            return self._one(job_id)

    def fail(self, job_id: str, reason: str, kind: ErrorKind = "internal") -> Job:
        with self._lock:
            self._db.execute(
                "UPDATE jobs SET error_kind = ? WHERE id = ? AND state IN ('queued', 'running')",
                (kind, job_id),
            )
            return self._finish(job_id, JobState.failed, reason)

    def mark_cancelled(
        self, job_id: str, reason: str = "Cancelled.", images: Sequence[SavedImageInfo] | None = None
    ) -> Job:
        return self._finish(job_id, JobState.cancelled, reason, images)

    def request_cancel(self, job_id: str) -> Job | None:
        with self._transaction() as db:
            db.execute(
                "UPDATE jobs SET state = 'cancelled', finished_at = ?, error = 'Cancelled before it started.' "
                "WHERE id = ? AND state = 'queued'",
                (time.time(), job_id),
            )
            db.execute("UPDATE jobs SET cancel_requested = 1 WHERE id = ? AND state = 'running'", (job_id,))
            try:
                return self._one(job_id)
            except JobNotFound:
                return None

    def recover(self, worker_ids: Sequence[str], stale_after: float, max_attempts: int) -> list[Job]:
        marks = ", ".join("?" * len(worker_ids)) or "NULL"
        with self._transaction() as db:
            rows = db.execute(
                f"SELECT id, attempts, cancel_requested, notes, kind FROM jobs WHERE state = 'running' "
                f"AND (worker_id IN ({marks}) OR heartbeat_at < ?)",
                (*worker_ids, time.time() - stale_after),
            ).fetchall()
            for row in rows:
                notes = json.loads(row["notes"])
                if row["cancel_requested"]:
                    db.execute(
                        "UPDATE jobs SET state = 'cancelled', finished_at = ?, error = ? WHERE id = ?",
                        (time.time(), "Cancelled (the server stopped while it ran).", row["id"]),
                    )
                elif row["attempts"] >= max_attempts:
                    reason = (
                        f"The server or its worker stopped while this job ran, {row['attempts']} times; "
                        "it may be what crashes it. Check the request (size, model) and submit it again."
                    )
                    db.execute(
                        "UPDATE jobs SET state = 'failed', finished_at = ?, error = ?, error_kind = 'lost' "
                        "WHERE id = ?",
                        (time.time(), reason, row["id"]),
                    )
                else:
                    notes.append(
                        "Queued again after the server or its worker stopped while it ran; it resumes from "
                        "the last checkpoint where that machine trains it again, else from the start."
                        if row["kind"] == "train"
                        else "Resumed from the start after the server or its worker stopped while it ran; "
                        "pictures saved before that stay in the outputs folder."
                    )
                    db.execute(
                        "UPDATE jobs SET state = 'queued', worker_id = NULL, started_at = NULL, notes = ? "
                        "WHERE id = ?",
                        (json.dumps(notes), row["id"]),
                    )
            return [self._one(row["id"]) for row in rows]

    def close(self) -> None:
        with self._lock:
            self._db.close()
