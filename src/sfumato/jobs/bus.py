"""Fan-out of job events to whoever listens (API streams, the CLI, the desktop app)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from sfumato.jobs.events import JobEvent

log = logging.getLogger(__name__)

Listener = Callable[[JobEvent], None]


class EventBus:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._listeners: list[Listener] = []

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        """Call ``listener`` from the emitting thread for every event; returns the unsubscribe."""
        with self._lock:
            self._listeners.append(listener)

        def unsubscribe() -> None:
            with self._lock:
                if listener in self._listeners:
                    self._listeners.remove(listener)

        return unsubscribe

    def emit(self, event: JobEvent) -> None:
        with self._lock:
            listeners = list(self._listeners)
        for listener in listeners:
            try:
                listener(event)
            except Exception:  # a broken listener must never stop a job
                log.exception("An event listener failed on %s", event.type)
