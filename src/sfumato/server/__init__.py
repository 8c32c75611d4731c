"""The HTTP server: Sfumato's API and an AUTOMATIC1111-compatible /sdapi/v1."""

from sfumato.server.app import create_app
from sfumato.server.context import ServerConfig

__all__ = ["ServerConfig", "create_app"]
