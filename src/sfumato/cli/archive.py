"""`sfumato archive list | search | show | rebuild`: the pictures made so far."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from sfumato.archive.index import ArchiveIndex, Record
from sfumato.cli.console import fail_with
from sfumato.core.errors import SfumatoError
from sfumato.core.settings import Settings

archive_app = typer.Typer(
    name="archive", help="List, search and show the pictures made so far.", no_args_is_help=True
)

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]
LimitOption = Annotated[int, typer.Option("--limit", "-n", min=1, help="How many pictures to show.")]
OffsetOption = Annotated[int, typer.Option("--offset", min=0, help="Skip this many first.")]


@contextmanager
def _user_errors() -> Iterator[None]:
    """A user error is one line on stderr and exit status 1, never a traceback."""
    try:
        yield
    except SfumatoError as error:
        fail_with(error)


def _index() -> ArchiveIndex:
    return ArchiveIndex.from_settings(Settings())


def _print_json(data: Any) -> None:
    typer.echo(json.dumps(data, ensure_ascii=False, indent=2))


def _table(records: list[Record], title: str) -> Table:
    table = Table(title=title, title_justify="left")
    table.add_column("ID", justify="right", style="cyan", no_wrap=True)
    table.add_column("Created", no_wrap=True)
    table.add_column("Prompt", overflow="fold", ratio=1)
    table.add_column("Seed", justify="right")
    table.add_column("Size", no_wrap=True)
    table.add_column("Model")
    for record in records:
        table.add_row(
            str(record.id),
            record.created[:19].replace("T", " "),
            record.prompt.replace("\n", " ") or "[dim](empty)[/dim]",
            "" if record.seed is None else str(record.seed),
            record.size,
            record.model or "",
        )
    return table


def _show_records(records: list[Record], as_json: bool, title: str, empty: str) -> None:
    if as_json:
        _print_json([record.to_json() for record in records])
    elif records:
        Console().print(_table(records, title))
    else:
        Console().print(empty)


@archive_app.command("list")
def list_pictures(limit: LimitOption = 20, offset: OffsetOption = 0, as_json: JsonOption = False) -> None:
    """The newest pictures first."""
    with _user_errors():
        index = _index()
        records = index.list(limit=limit, offset=offset)
        empty = "The archive is empty: pictures you generate appear here (or run `sfumato archive rebuild`)."
        _show_records(records, as_json, f"Archive: {index.outputs}", empty)


@archive_app.command("search")
def search_pictures(
    text: Annotated[str, typer.Argument(help="Words to find in prompts and settings.")],
    limit: LimitOption = 20,
    as_json: JsonOption = False,
) -> None:
    """Pictures whose prompt, negative prompt or settings hold every word (prefixes match)."""
    with _user_errors():
        records = _index().search(text, limit=limit)
        _show_records(records, as_json, f"Pictures matching {text!r}", f"No picture matches {text!r}.")


@archive_app.command("show")
def show_picture(
    record_id: Annotated[int, typer.Argument(metavar="ID", help="The picture's ID, as `list` shows it.")],
    as_json: JsonOption = False,
) -> None:
    """One picture: its file and its full settings."""
    with _user_errors():
        index = _index()
        record = index.get(record_id)
        path = index.path_of(record)
        if as_json:
            _print_json({**record.to_json(), "file": str(path)})
            return
        console = Console()
        console.print(f"[bold]#{record.id}[/bold]  {path}", highlight=False)
        console.print(
            f"[dim]created {record.created}, {record.size}, from {record.source}[/dim]", highlight=False
        )
        if not path.exists():
            console.print(
                "[yellow]The file is gone; `sfumato archive rebuild` removes it from the index.[/yellow]"
            )
        console.print(record.parameters, highlight=False, markup=False)


@archive_app.command("rebuild")
def rebuild_index(
    as_json: JsonOption = False,
    embeddings: Annotated[
        bool, typer.Option(help="Also compute CLIP embeddings for concept search (`sfumato search`).")
    ] = True,
) -> None:
    """Rebuild the index from the pictures in the outputs folder (their own metadata)."""
    with _user_errors():
        index = _index()
        report = index.rebuild()
        embedded = _embed_all() if embeddings else 0
        if as_json:
            _print_json(
                {
                    "indexed": report.indexed,
                    "skipped": [{"path": p, "why": w} for p, w in report.skipped],
                    "embedded": embedded,
                }
            )
            return
        console = Console()
        noun = "picture" if report.indexed == 1 else "pictures"
        console.print(f"Indexed {report.indexed} {noun} from {index.outputs}.", highlight=False)
        if embedded:
            console.print(f"Embedded {embedded} for concept search.", highlight=False)
        for path, why in report.skipped:
            console.print(f"  skipped {path}: {why}", highlight=False, markup=False)


def _embed_all() -> int:
    from sfumato.analysis.archive_search import embed_archive
    from sfumato.analysis.clip_model import load_clip

    settings = Settings()
    return embed_archive(settings, load_clip(settings.clip_model))
