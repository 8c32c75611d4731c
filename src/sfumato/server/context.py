"""Everything a route needs, built once by the app factory and passed down (no globals)."""

from __future__ import annotations

import json
import logging
import threading
from dataclasses import dataclass, field
from typing import Any

from sfumato.core.settings import Settings
from sfumato.jobs.queue import JobQueue
from sfumato.server.catalog import ModelCatalog, ModelEntry, find, usable

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 64 * 1024 * 1024
MAX_OPTIONS = 256


@dataclass
class ServerConfig:
    listen: str = "127.0.0.1"
    port: int = 7860
    token: str | None = None
    cors_origins: list[str] = field(default_factory=list)
    max_body_bytes: int = MAX_BODY_BYTES


class ServerContext:
    def __init__(
        self, settings: Settings, config: ServerConfig, queue: JobQueue, catalog: ModelCatalog
    ) -> None:
        self.settings = settings
        self.config = config
        self.queue = queue
        self.catalog = catalog
        self._lock = threading.Lock()
        self._options_path = settings.data_dir / "server-options.json"
        self.options: dict[str, Any] = self._load_options()

    def _load_options(self) -> dict[str, Any]:
        try:
            data = json.loads(self._options_path.read_text("utf-8"))
            return data if isinstance(data, dict) else {}
        except (OSError, ValueError):
            return {}

    def save_options(self) -> None:
        try:
            self._options_path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self._options_path.with_suffix(".tmp")
            tmp.write_text(json.dumps(self.options), "utf-8")
            tmp.replace(self._options_path)
        except OSError:
            log.warning("Could not save the server options to %s", self._options_path)

    @property
    def selected_model(self) -> ModelEntry | None:
        """The model requests use when they name none: the one selected, else the settings' default."""
        for name in (self.options.get("sd_model_checkpoint"), self.settings.default_model):
            if isinstance(name, str) and name:
                try:
                    return find(self.catalog, name)
                except Exception:
                    continue
        listed = usable(self.catalog.list("checkpoint"))
        return listed[0] if listed else None

    def select_model(self, name: str) -> ModelEntry:
        entry = find(self.catalog, name)
        with self._lock:
            self.options["sd_model_checkpoint"] = entry.title
            self.save_options()
        return entry
