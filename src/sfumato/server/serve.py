"""Starting the server: the bind rules, then uvicorn."""

from __future__ import annotations

from collections.abc import Callable

from sfumato.core.errors import SfumatoError
from sfumato.core.settings import Settings
from sfumato.server.context import ServerConfig
from sfumato.server.security import is_loopback


class UnsafeBind(SfumatoError):
    """Listening beyond this machine without an access token."""


def check_bind(config: ServerConfig) -> None:
    if not is_loopback(config.listen) and not config.token:
        raise UnsafeBind(
            f"Refusing to listen on {config.listen}: anyone on the network could use this server.",
            "Give an access token with --token TOKEN, or --new-token to have one made and printed once.",
        )


def run_server(
    settings: Settings,
    config: ServerConfig,
    *,
    log_level: str = "info",
    announce: Callable[[str], None] = print,
) -> None:
    import uvicorn

    from sfumato.server.app import create_app

    check_bind(config)
    app = create_app(settings, config=config)
    announce(f"Sfumato is listening on http://{config.listen}:{config.port} (API docs at /docs).")
    uvicorn.run(app, host=config.listen, port=config.port, log_level=log_level, access_log=False)
