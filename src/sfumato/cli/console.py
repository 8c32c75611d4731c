"""Output helpers shared by the CLI commands: one-line errors, JSON for scripts.

Under ``--json`` an error is JSON too: ``{"error": what went wrong, "hint": what to do or null}`` on
stdout (where a script reads the result), and the exit status is the same as without ``--json``.
"""

from __future__ import annotations

import json
import sys
from contextvars import ContextVar
from typing import Any, NoReturn

from rich.console import Console

from sfumato.core.errors import SfumatoError

console = Console(stderr=True, highlight=False)
json_errors: ContextVar[bool] = ContextVar("json_errors", default=False)


def fail(message: str, code: int = 1, hint: str | None = None) -> NoReturn:
    """Print a one-line error (never a traceback), or its JSON under --json, and exit non-zero."""
    if json_errors.get():
        print_json({"error": message, "hint": hint})
    else:
        text = f"{message} {hint}" if hint else message
        console.print(f"[bold red]error:[/] {text}", soft_wrap=True)
    raise SystemExit(code)


def fail_with(error: SfumatoError, code: int = 1) -> NoReturn:
    fail(error.message, code, error.hint)


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")
    sys.stdout.flush()
