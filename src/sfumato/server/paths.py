"""Names and paths that come from clients: they never reach outside the folders we configured."""

from __future__ import annotations

import re
import unicodedata
from pathlib import Path, PurePosixPath, PureWindowsPath
from urllib.parse import unquote

from sfumato.core.errors import SfumatoError


class PathRefused(SfumatoError):
    """A client-supplied name or path points outside the folder it must stay in."""


_DRIVE = re.compile(r"^[A-Za-z]:")
_EXTRA_NETWORK = re.compile(r"<\s*(lora|lyco|hypernet)\s*:\s*([^>]*)", re.IGNORECASE)


def _refuse(name: str, why: str) -> PathRefused:
    shown = name if len(name) <= 80 else name[:77] + "..."
    return PathRefused(
        f"The name {shown!r} is not allowed: {why}.",
        "Use a name relative to the folder, without '..' or a leading '/'.",
    )


def check_relative(name: str) -> PurePosixPath:
    """A relative path made only of plain components, or PathRefused."""
    decoded = name
    for _ in range(3):  # URL-encoded more than once ("%252e%252e") is still a trick
        once = unquote(decoded)
        if once == decoded:
            break
        decoded = once
    if decoded != name and ("/" in decoded or "\\" in decoded or ".." in decoded):
        raise _refuse(name, "it is URL-encoded")
    if not name or "\x00" in name or any(unicodedata.category(c) == "Cc" for c in name):
        raise _refuse(name, "it is empty or holds control characters")
    if "\\" in name or _DRIVE.match(name) or PureWindowsPath(name).is_absolute() or name.startswith("/"):
        raise _refuse(name, "it is absolute or uses backslashes")
    parts = PurePosixPath(name).parts
    if any(part in ("..", ".") for part in parts) or "~" in parts[:1]:
        raise _refuse(name, "it climbs out of its folder")
    return PurePosixPath(*parts)


def safe_child(base: Path, name: str) -> Path:
    """``base / name`` after checking the name and resolving symlinks: still inside ``base``."""
    relative = check_relative(name)
    root = base.resolve()
    target = (root / relative).resolve()
    if target != root and not target.is_relative_to(root):
        raise _refuse(name, "it leads outside its folder (through a link)")
    return target


def check_prompt_networks(prompt: str) -> None:
    """LoRA and hypernetwork names inside a prompt (``<lora:name:1>``) are plain names."""
    for match in _EXTRA_NETWORK.finditer(prompt):
        body = match.group(2).strip()
        name = body.split(":", 1)[0].strip()  # <lora:name:te weight:unet weight>
        if not name:
            continue
        check_relative(name)
        if "/" in name or "\\" in body or ".." in body:
            raise _refuse(name, f"a {match.group(1).lower()} is named by its name alone, not a path")
