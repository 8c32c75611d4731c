"""`sfumato serve`: the HTTP API and the A1111-compatible API."""

from __future__ import annotations

from typing import Annotated

import typer


def serve(
    listen: Annotated[
        str, typer.Option("--listen", "--host", help="Address to bind; anything but loopback needs a token.")
    ] = "127.0.0.1",
    port: Annotated[int | None, typer.Option("--port", help="Port (default 7860, as A1111).")] = None,
    token: Annotated[
        str | None,
        typer.Option("--token", envvar="SFUMATO_TOKEN", help="Access token every request must carry."),
    ] = None,
    new_token: Annotated[
        bool, typer.Option("--new-token", help="Make a random access token and print it once.")
    ] = False,
    cors_origin: Annotated[
        list[str] | None, typer.Option("--cors-origin", help="A web origin allowed to call the API.")
    ] = None,
    workers: Annotated[
        str | None,
        typer.Option(
            "--workers",
            help="Who runs jobs: N in-process workers (default 1), 'remote' (only `sfumato worker`s), "
            "'auto' (a local Ray) or 'ray://HOST:PORT' (a Ray cluster).",
        ),
    ] = None,
) -> None:
    """Serve Sfumato's API and an AUTOMATIC1111-compatible /sdapi/v1."""
    from sfumato.core.settings import Settings
    from sfumato.server.context import ServerConfig
    from sfumato.server.security import new_token as make_token
    from sfumato.server.serve import check_bind, run_server

    settings = Settings()
    if workers is not None:
        from sfumato.jobs.backends import check_workers

        settings.workers = check_workers(workers)
    if new_token and token is None:
        token = make_token()
        typer.echo(f"Access token (shown once): {token}")
    config = ServerConfig(
        listen=listen,
        port=port if port is not None else settings.port,
        token=token or settings.token,
        cors_origins=list(cors_origin or settings.cors_origins),
    )
    check_bind(config)
    run_server(settings, config)
