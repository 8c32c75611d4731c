"""Where a job's time went, by phase in the user's words (model load, denoise, decode…)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field


@dataclass
class Timings:
    """Seconds per phase; a phase measured several times (one per batch) adds up."""

    seconds: dict[str, float] = field(default_factory=dict)

    @contextmanager
    def measure(self, phase: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[phase] = self.seconds.get(phase, 0.0) + time.perf_counter() - start

    def add(self, other: dict[str, float]) -> None:
        for phase, seconds in other.items():
            self.seconds[phase] = self.seconds.get(phase, 0.0) + seconds
