"""`sfumato studio`: the desktop canvas app."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def studio(
    files: Annotated[
        list[Path] | None,
        typer.Argument(help="Canvases (.ora, .psd) or pictures to open.", show_default=False),
    ] = None,
    install_desktop_entry: Annotated[
        bool,
        typer.Option(
            "--install-desktop-entry",
            help="Linux: add Sfumato Studio to the applications menu (~/.local/share), then exit.",
        ),
    ] = False,
) -> None:
    """Open Sfumato Studio, the canvas app: layers, masks, generation frames, gallery."""
    if install_desktop_entry:
        from sfumato.desktop.install import install_desktop_entry as install

        for path in install():
            typer.echo(f"Wrote {path}")
        return
    from sfumato.desktop.app import main

    raise typer.Exit(main(["sfumato-studio", *(str(path) for path in files or [])]))
