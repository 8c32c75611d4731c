"""The default run function: the project's runner (load model, generate, save to the archive)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from sfumato.core.events import CancelToken, ProgressCallback
from sfumato.core.request import GenerationRequest
from sfumato.core.settings import Settings
from sfumato.jobs.model import SavedImage

if TYPE_CHECKING:
    from sfumato.jobs.runner import SavedPicture
    from sfumato.models.components import Components

ComponentsFor = Callable[[GenerationRequest], "Components | None"]


def saved_image(picture: SavedPicture) -> SavedImage:
    return SavedImage(
        path=picture.record.path,
        infotext=picture.record.parameters,
        recipe=picture.item.recipe,
        model_name=picture.item.model.name,
        model_hash=picture.item.model.hash,
    )


class RunnerRun:
    """The runner as a worker's run function, keeping models loaded between jobs in one cache."""

    def __init__(self, settings: Settings, components_for: ComponentsFor | None = None) -> None:
        from sfumato.models.cache import ModelCache

        self.settings = settings
        self.components_for = components_for
        self.cache = ModelCache(settings.model_cache_bytes)
        self._running = threading.Lock()
        self._unload_pending = False

    def __call__(
        self, request: GenerationRequest, *, on_progress: ProgressCallback, cancel: CancelToken
    ) -> Sequence[SavedImage]:
        from sfumato.jobs.runner import run_request

        with self._running:
            if self._unload_pending:
                self._unload_pending = False
                self.cache.clear()
            components = self.components_for(request) if self.components_for is not None else None
            output = run_request(
                self.settings,
                request,
                on_progress=on_progress,
                cancel=cancel,
                components=components,
                cache=self.cache,
            )
        return [saved_image(picture) for picture in output.pictures]

    def unload(self) -> None:
        """Frees the loaded models now when no job runs, else as soon as the running job ends."""
        if self._running.acquire(blocking=False):
            try:
                self.cache.clear()
            finally:
                self._running.release()
        else:
            self._unload_pending = True


def runner_run_function(settings: Settings, components_for: ComponentsFor | None = None) -> RunnerRun:
    """``components_for`` lets tests and the server hand in already-loaded components.

    Models stay loaded between jobs in one cache with the settings' memory budget.
    """
    return RunnerRun(settings, components_for)
