"""Output helpers shared by the CLI commands: one-line errors, JSON for scripts."""

from __future__ import annotations

import json
import sys
from typing import Any, NoReturn

from rich.console import Console

console = Console(stderr=True, highlight=False)


def fail(message: str, code: int = 1) -> NoReturn:
    """Print a one-line error (never a traceback) and exit non-zero."""
    console.print(f"[bold red]error:[/] {message}", soft_wrap=True)
    raise SystemExit(code)


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")
    sys.stdout.flush()
