"""The job queue: requests waiting, running and done, with events and persistence."""

from sfumato.jobs.bus import EventBus
from sfumato.jobs.events import JobEvent
from sfumato.jobs.model import Job, JobState, SavedImage, SavedImageInfo
from sfumato.jobs.queue import JobQueue
from sfumato.jobs.store import JobStore
from sfumato.jobs.store_sqlite import JobNotFound, SqliteJobStore
from sfumato.jobs.worker import PartialResult, RunFunction, Worker

__all__ = [
    "EventBus",
    "Job",
    "JobEvent",
    "JobNotFound",
    "JobQueue",
    "JobState",
    "JobStore",
    "PartialResult",
    "RunFunction",
    "SavedImage",
    "SavedImageInfo",
    "SqliteJobStore",
    "Worker",
]
