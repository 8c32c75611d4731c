"""`sfumato worker`: run a server's jobs on this machine (its GPU, its model folders)."""

from __future__ import annotations

from typing import Annotated

import typer

from sfumato.cli.console import console, fail, fail_with


def worker(
    server: Annotated[str, typer.Option("--server", help="The server, e.g. http://gpu-box:7860.")],
    token: Annotated[
        str | None,
        typer.Option("--token", envvar="SFUMATO_TOKEN", help="The token the server was started with."),
    ] = None,
    name: Annotated[
        str | None, typer.Option("--name", help="How the server lists this worker (default: host-pid).")
    ] = None,
    poll: Annotated[float, typer.Option("--poll", min=0.1, help="Seconds between asks when idle.")] = 2.0,
    retry_for: Annotated[
        float,
        typer.Option("--retry-for", min=0.0, help="Seconds to keep trying a server that does not answer."),
    ] = 120.0,
    jobs: Annotated[
        int | None,
        typer.Option("--jobs", min=1, help="Stop after this many jobs (default: run until stopped)."),
    ] = None,
) -> None:
    """Take jobs from a Sfumato server and run them here; the pictures go to the server's archive."""
    from sfumato.core.errors import SfumatoError
    from sfumato.core.settings import Settings
    from sfumato.jobs.execute import JobExecutor
    from sfumato.jobs.leases import WORKER_NAME
    from sfumato.jobs.remote_worker import RemoteWorker, ServerRefused, WorkerClient, default_name

    if name is not None and not WORKER_NAME.match(name):
        fail(
            f"{name[:80]!r} is not a usable worker name.",
            hint="Use letters, digits, '.', '_' or '-' (64 at most).",
        )
    try:
        client = WorkerClient(server, token, retry_for=retry_for)
        executor = JobExecutor(Settings())
        remote = RemoteWorker(
            client, executor, name or default_name(), poll_seconds=poll, say=lambda text: console.print(text)
        )
        console.print(f"Worker {remote.name} takes jobs from {client.url} (Ctrl+C to stop).")
        remote.run(max_jobs=jobs)
    except ServerRefused as error:
        fail_with(error, 2)
    except SfumatoError as error:
        fail_with(error)
    except KeyboardInterrupt:
        console.print(
            "Stopped; a job it was running goes back to the server's queue when its lease runs out."
        )
        raise SystemExit(130) from None
