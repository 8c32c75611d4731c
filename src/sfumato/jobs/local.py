"""The default run function: the project's runner (load model, generate, save to the archive)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from sfumato.core.events import CancelToken, ProgressCallback
from sfumato.core.request import GenerationRequest
from sfumato.core.settings import Settings
from sfumato.jobs.model import SavedImage
from sfumato.jobs.worker import RunFunction

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


def runner_run_function(settings: Settings, components_for: ComponentsFor | None = None) -> RunFunction:
    """``components_for`` lets tests and the server hand in already-loaded components.

    Models stay loaded between jobs in one cache with the settings' memory budget.
    """
    from sfumato.models.cache import ModelCache

    cache = ModelCache(settings.model_cache_bytes)

    def run(
        request: GenerationRequest, *, on_progress: ProgressCallback, cancel: CancelToken
    ) -> Sequence[SavedImage]:
        from sfumato.jobs.runner import run_request

        components = components_for(request) if components_for is not None else None
        output = run_request(
            settings, request, on_progress=on_progress, cancel=cancel, components=components, cache=cache
        )
        return [saved_image(picture) for picture in output.pictures]

    return run
