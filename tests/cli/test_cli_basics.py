"""What any CLI is expected to do: say its version, complete in the shell."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from sfumato import __version__

SFUMATO = str(Path(sys.executable).parent / "sfumato")


def test_version() -> None:
    done = subprocess.run([SFUMATO, "--version"], capture_output=True, text=True, check=False)
    assert done.returncode == 0
    assert done.stdout.strip() == f"sfumato {__version__}"


def test_shell_completion_script_for_bash() -> None:
    done = subprocess.run([SFUMATO, "--show-completion", "bash"], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert "complete" in done.stdout and "sfumato" in done.stdout
