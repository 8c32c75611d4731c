"""`sfumato blocklist …`: check a prompt or a list file against the name blocklists."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from sfumato.cli.console import print_json

blocklist_app = typer.Typer(
    help="Name blocklists: prompts naming a listed person or character are refused.", no_args_is_help=True
)

Lists = Annotated[
    list[Path] | None,
    typer.Option("--list", "-l", help="A blocklist file; default: the settings' blocklists."),
]


@blocklist_app.callback()
def blocklist_group() -> None:
    """Name blocklists: prompts naming a listed person or character are refused."""


def _lists(given: list[Path] | None) -> list[Path]:
    if given:
        return given
    from sfumato.core.settings import Settings

    return list(Settings().blocklists)


@blocklist_app.command("check")
def check_command(
    prompt: Annotated[str, typer.Argument(help="A prompt in A1111 syntax.")],
    lists: Lists = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Say whether a prompt would be refused, and by which entry. Exits 1 when it would be."""
    from sfumato.analysis.blocklist import load_blocklists

    paths = _lists(lists)
    found = load_blocklists(paths).find(prompt)
    if as_json:
        print_json(
            {
                "blocked": found is not None,
                "lists": [str(path) for path in paths],
                "entry": None if found is None else found.entry.name,
                "list": None if found is None else found.entry.list_name,
                "line": None if found is None else found.entry.line,
            }
        )
    elif found is None:
        typer.echo("allowed" if paths else "allowed (no blocklist is set: see docs/blocklist.md)")
    else:
        entry = found.entry
        typer.echo(f'blocked: "{entry.name}" ({entry.list_name}, line {entry.line})')
    if found is not None:
        raise typer.Exit(1)


@blocklist_app.command("validate")
def validate_command(
    files: Annotated[list[Path], typer.Argument(help="Blocklist files to read.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Read blocklist files and say how many entries each holds (or the line that does not parse)."""
    from sfumato.analysis.blocklist import parse_blocklist

    counts = {str(path): len(parse_blocklist(path)) for path in files}
    if as_json:
        print_json(counts)
        return
    for path, count in counts.items():
        typer.echo(f"{path}: {count} entries")
