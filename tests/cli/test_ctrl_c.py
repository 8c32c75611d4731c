"""Ctrl-C in a terminal during `sfumato generate`: exit 130, one line, nothing half-written.

A real process on a pseudo-terminal (so the progress bar is drawn, as a user sees it) gets SIGINT
once it is generating.
"""

from __future__ import annotations

import os
import pty
import select
import signal
import subprocess
import sys
import time
from pathlib import Path


def _read(fd: int, timeout: float) -> bytes:
    ready, _, _ = select.select([fd], [], [], timeout)
    if not ready:
        return b""
    try:
        return os.read(fd, 4096)
    except OSError:  # the child closed the terminal
        return b""


def test_ctrl_c_while_generating_exits_130_and_saves_nothing(tiny_model_folder: Path, tmp_path: Path) -> None:
    outputs = tmp_path / "out"
    command = [str(Path(sys.executable).parent / "sfumato"), "generate", "a red circle"]
    command += ["--model", str(tiny_model_folder), "--steps", "150", "--seed", "1", "-o", str(outputs)]
    leader, terminal = pty.openpty()
    env = dict(os.environ, COLUMNS="120")
    process = subprocess.Popen(command, stdin=terminal, stdout=terminal, stderr=terminal, env=env)
    os.close(terminal)
    seen = b""
    try:
        deadline = time.monotonic() + 120
        while b"generating" not in seen and time.monotonic() < deadline and process.poll() is None:
            seen += _read(leader, 1)
        assert b"generating" in seen, seen.decode(errors="replace")
        process.send_signal(signal.SIGINT)
        deadline = time.monotonic() + 60
        while process.poll() is None and time.monotonic() < deadline:
            seen += _read(leader, 0.5)
        seen += _read(leader, 0.5)
    finally:
        if process.poll() is None:
            process.kill()
        os.close(leader)
    text = seen.decode(errors="replace")
    assert process.wait() == 130, text
    assert "Cancelled; no picture was saved." in text
    assert "Traceback" not in text and "terminate called" not in text
    assert not outputs.exists() or not any(path.is_file() for path in outputs.rglob("*"))
