"""`sfumato info FILE`: A1111's PNG Info for any picture, and what `generate --from` would recall."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from sfumato.cli.console import print_json

SOURCES = {
    "sfumato": "Sfumato",
    "a1111": "A1111 (or a tool writing its infotext)",
    "comfyui": "ComfyUI",
    "invokeai": "InvokeAI",
    "novelai": "NovelAI",
    "fooocus": "Fooocus",
    "swarmui": "SwarmUI",
}
_SHOWN_CHARS = 300  # of each other item in the human output (ComfyUI's graphs run to 100 kB)


def _report(path: Path) -> dict[str, Any]:
    from PIL import Image

    from sfumato.archive.metadata import read_metadata, request_from_image
    from sfumato.archive.pnginfo import png_info
    from sfumato.core.errors import InvalidRequest

    read_metadata(path)  # the one reader's errors for missing, unreadable or hostile files
    with Image.open(path) as image:
        found = png_info(image)
    report: dict[str, Any] = {
        "file": str(path),
        "source": found.metadata.source,
        "info": found.info,
        "items": found.items,
        "parameters": found.parameters,
        "request": None,
    }
    try:
        report["request"] = request_from_image(path).model_dump(mode="json")
    except InvalidRequest as error:
        report["recall_error"] = str(error)
    return report


def info(
    file: Annotated[Path, typer.Argument(help="A PNG, JPEG or WebP picture.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")] = False,
) -> None:
    """Show how a picture was made (A1111's PNG Info): its infotext, its other metadata, its recipe."""
    from rich.console import Console
    from rich.markup import escape

    report = _report(file)
    out = Console(highlight=False, soft_wrap=True)
    if as_json:
        print_json(report)
        return
    if report["source"] is None:
        typer.echo(f"{file.name} holds no generation settings.")
    else:
        typer.echo(report["info"])
        out.print(f"\n[bold]made with:[/] {escape(SOURCES.get(report['source'], str(report['source'])))}")
    for key, value in report["items"].items():
        text = str(value).replace("\n", " ")
        shown = text if len(text) <= _SHOWN_CHARS else f"{text[:_SHOWN_CHARS]}… ({len(text)} characters)"
        out.print(f"[bold]{escape(key)}:[/] {escape(shown)}")
    if report["request"] is not None:
        out.print(f"[green]recall:[/] sfumato generate --from {escape(str(file))}")
    elif "recall_error" in report and report["source"] is not None:
        out.print(f"[yellow]recall:[/] {escape(report['recall_error'])}")
