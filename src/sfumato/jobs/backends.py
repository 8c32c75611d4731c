"""Who runs a server's jobs (the `workers` setting, `sfumato serve --workers`): threads of this process,
only remote `sfumato worker`s, or Ray actors. Remote workers may join in every case."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sfumato.core.errors import InvalidSettings
from sfumato.core.settings import Settings
from sfumato.jobs.queue import JobQueue
from sfumato.jobs.run_job import TrainFunction
from sfumato.jobs.worker import RunFunction

if TYPE_CHECKING:
    from sfumato.jobs.ray_backend import RayPool

MAX_LOCAL_WORKERS = 16


def check_workers(spec: str) -> str:
    spec = spec.strip()
    if spec in ("remote", "auto") or (spec.startswith("ray://") and len(spec) > len("ray://")):
        return spec
    if spec.isdigit() and 0 <= int(spec) <= MAX_LOCAL_WORKERS:
        return spec
    raise InvalidSettings(
        f"{spec[:80]!r} does not say who runs the jobs.",
        f"Give a number of in-process workers (0-{MAX_LOCAL_WORKERS}), 'remote' (only `sfumato worker`s), "
        "'auto' (a local Ray) or 'ray://HOST:PORT' (a Ray cluster).",
    )


def add_workers(
    queue: JobQueue,
    settings: Settings,
    spec: str,
    run: RunFunction | None = None,
    poll_seconds: float = 1.0,
    *,
    train: TrainFunction | None = None,
) -> RayPool | None:
    """Adds the workers ``spec`` asks for to ``queue``; returns the Ray pool when there is one, to close.

    ``run`` and ``train`` replace the default run functions: this process's runner and trainer, or on
    Ray, calls on the actors (each actor renders and trains)."""
    spec = check_workers(spec)
    if spec == "remote":
        return None
    if spec.isdigit():
        if int(spec) and run is None:
            from sfumato.jobs.local import runner_run_function

            run = runner_run_function(settings)
        if int(spec) and train is None:
            from sfumato.jobs.run_job import training_run_function

            train = training_run_function(settings)
        for index in range(int(spec)):
            assert run is not None
            queue.add_worker(
                run, worker_id=f"local-{settings.device}-{index}", poll_seconds=poll_seconds, train=train
            )
        return None
    from sfumato.jobs.ray_backend import RayPool

    pool = RayPool(settings, address=None if spec == "auto" else spec, count=settings.ray_workers)
    for index, (ray_run, ray_train) in enumerate(
        zip(pool.run_functions(), pool.train_functions(), strict=True)
    ):
        queue.add_worker(
            ray_run, worker_id=f"ray-{index}", poll_seconds=poll_seconds, train=train or ray_train
        )
    return pool
