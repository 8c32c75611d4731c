"""`sfumato embeddings migrate`: carry a textual-inversion embedding to another model."""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path
from typing import Annotated

import typer

from sfumato.cli.console import console, print_json

embeddings_app = typer.Typer(no_args_is_help=True, help="Textual-inversion embeddings.")


@embeddings_app.command()
def migrate(
    embedding: Annotated[str, typer.Argument(help="The embedding: a file, or its name in your library.")],
    source: Annotated[str, typer.Option("--from", help="The model it was made for (name, hash or path).")],
    target: Annotated[str, typer.Option("--to", help="The model to carry it to.")],
    prompts: Annotated[
        list[str] | None,
        typer.Option(
            "--prompt", help='A prompt with {name} for the word, e.g. "a {name} circle" (repeatable).'
        ),
    ] = None,
    pictures: Annotated[int, typer.Option("--pictures", help="Pictures drawn with the old model.")] = 24,
    steps: Annotated[int, typer.Option("--steps", help="Training steps on the new model.")] = 200,
    init_text: Annotated[
        str,
        typer.Option(
            "--init-text",
            help="Words the new word starts from when --to has another text encoder (e.g. a near concept).",
        ),
    ] = "*",
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Learn, on --to, a word that makes what EMBEDDING made on --from; written beside it (A1111 format)."""
    from sfumato.core.errors import InvalidRequest
    from sfumato.core.settings import Settings
    from sfumato.models.library import ModelLibrary
    from sfumato.models.loading import load_model
    from sfumato.training.migrate_embedding import DEFAULT_PROMPTS, MigrationConfig, migrate_embedding

    if pictures < 1 or steps < 0:
        raise InvalidRequest(
            "--pictures must be 1 or more and --steps 0 or more.", "e.g. --pictures 24 --steps 200"
        )
    settings = Settings()
    path = Path(embedding)
    if not path.is_file():
        found = ModelLibrary(settings).resolve("embedding", embedding)
        if found is None:
            raise InvalidRequest(f"No embedding {embedding!r} in your library.", "Give its file or its name.")
        path = found
    config = MigrationConfig(
        prompts=tuple(prompts or DEFAULT_PROMPTS), pictures=pictures, steps=steps, init_text=init_text
    )
    old, new = load_model(settings, source), load_model(settings, target)

    def progress(stage: str, done: int, total: int) -> None:
        if not as_json:
            console.print(f"{stage} {done}/{total}", end="\r")

    # The trainer's progress lines go to stderr with --json, so stdout is the JSON alone.
    with contextlib.redirect_stdout(sys.stderr) if as_json else contextlib.nullcontext():
        trained = migrate_embedding(old, new, path, config, on_progress=progress)
    if as_json:
        print_json({"embedding": str(trained.path), "word": trained.path.stem, "steps": trained.result.step})
        return
    typer.echo(str(trained.path))
    console.print(f"[green]migrated[/]: use the word '{trained.path.stem}' in prompts for {new.info.name}")
