"""Who may call the server: the access token, and no web page from a foreign origin.

A pure ASGI middleware, so it guards HTTP and WebSocket routes alike, docs included.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import ipaddress
import json
import secrets
from collections.abc import Sequence
from urllib.parse import parse_qs, urlsplit

from starlette.types import ASGIApp, Receive, Scope, Send

from sfumato.server.errors import error_content

LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1", "[::1]"})


def is_loopback(host: str) -> bool:
    name = host.strip("[]")
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def new_token() -> str:
    return secrets.token_urlsafe(24)


def _host_name(host_header: str) -> str:
    if host_header.startswith("["):
        return host_header.split("]", 1)[0] + "]"
    return host_header.rsplit(":", 1)[0] if host_header.count(":") == 1 else host_header


class AccessGuard:
    def __init__(
        self,
        app: ASGIApp,
        *,
        token: str | None,
        allowed_origins: Sequence[str] = (),
        loopback_only: bool = True,
    ) -> None:
        self.app = app
        self.token = token
        self.allowed_origins = {o.rstrip("/") for o in allowed_origins}
        # On a loopback bind with no token, a page served from a rebinding DNS name (evil.test -> 127.0.0.1)
        # is same-origin with itself; refusing foreign Host headers closes that door.
        self.loopback_only = loopback_only

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        refusal = self._refusal(scope, headers)
        if refusal is None:
            await self.app(scope, receive, send)
            return
        status, message = refusal
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008, "reason": message[:120]})
            return
        name = "Unauthorized" if status == 401 else "Forbidden"
        body = json.dumps(error_content(scope.get("path", ""), name, message)).encode()
        response_headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
        ]
        if status == 401:
            response_headers.append((b"www-authenticate", b'Bearer realm="sfumato", Basic realm="sfumato"'))
        await send({"type": "http.response.start", "status": status, "headers": response_headers})
        await send({"type": "http.response.body", "body": body})

    def _refusal(self, scope: Scope, headers: dict[str, str]) -> tuple[int, str] | None:
        host = headers.get("host", "")
        if self.loopback_only and host and not is_loopback(_host_name(host)):
            return 403, (
                f"This server answers only on a loopback address, not at {host!r}. "
                "Connect to 127.0.0.1 or localhost."
            )
        origin = headers.get("origin")
        if origin is not None and not self._origin_allowed(origin, host):
            return 403, (
                f"Requests from web pages at {origin!r} are refused. "
                "To allow that site, add it to cors_origins in the settings."
            )
        if self.token is not None and not self._authorised(scope, headers):
            return 401, (
                "An access token is required. Send 'Authorization: Bearer <token>' "
                "(or HTTP Basic with the token as password)."
            )
        return None

    def _origin_allowed(self, origin: str, host: str) -> bool:
        if origin.rstrip("/") in self.allowed_origins:
            return True
        parts = urlsplit(origin)
        return parts.scheme in ("http", "https") and bool(host) and parts.netloc.lower() == host.lower()

    def _authorised(self, scope: Scope, headers: dict[str, str]) -> bool:
        assert self.token is not None
        offered: list[str] = []
        authorization = headers.get("authorization", "")
        scheme, _, value = authorization.partition(" ")
        if scheme.lower() == "bearer":
            offered.append(value.strip())
        elif scheme.lower() == "basic":
            try:
                decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
            except (binascii.Error, UnicodeDecodeError, ValueError):
                decoded = ""
            offered.append(
                decoded.partition(":")[2]
            )  # A1111's --api-auth user:password; the token is the password
        # Browsers cannot put headers on EventSource, WebSocket or <img>: the token may ride in the URL there.
        if scope["type"] == "websocket" or scope.get("method") == "GET":
            query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
            offered.extend(query.get("token", []))
        expected = self.token.encode()
        return any(hmac.compare_digest(candidate.encode(), expected) for candidate in offered)
