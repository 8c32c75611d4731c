"""`sfumato models …`: list, add-folder, convert, identify."""

from __future__ import annotations

import functools
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, ParamSpec, TypeVar

import typer

from sfumato.cli.console import console, fail_with, print_json
from sfumato.core.errors import SfumatoError

if TYPE_CHECKING:
    from rich.progress import Progress

    from sfumato.models.compatibility import Compatibility
    from sfumato.models.library import ProgressCallback

models_app = typer.Typer(help="Your model files: list, add folders, identify, convert.", no_args_is_help=True)

P = ParamSpec("P")
R = TypeVar("R")


def _one_line_errors(command: Callable[P, R]) -> Callable[P, R]:
    """Errors as one line even when this sub-app runs on its own (the main app does the same)."""

    @functools.wraps(command)
    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return command(*args, **kwargs)
        except SfumatoError as error:
            fail_with(error)

    return run


def _human(size: int) -> str:
    value = float(size)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:.1f} {unit}" if unit != "B" else f"{int(value)} B"
        value /= 1024
    return f"{value:.1f} GB"


def _hash_progress(progress: Progress) -> Callable[[Path], ProgressCallback]:
    def for_file(path: Path) -> ProgressCallback:
        task = progress.add_task(f"hashing {path.name}", total=path.stat().st_size)

        def update(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)
            if done >= total:
                progress.remove_task(task)

        return update

    return for_file


@models_app.command("list")
@_one_line_errors
def list_models(
    json_output: Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")] = False,
    hash_files: Annotated[
        bool, typer.Option("--hash", help="Compute missing AutoV2 hashes (slow once, cached).")
    ] = False,
) -> None:
    """Every model in your folders: name, kind, architecture, size, hash."""
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn
    from rich.table import Table

    from sfumato.core.settings import Settings
    from sfumato.models.library import ModelLibrary

    library = ModelLibrary(Settings())
    if not library.folders():
        console.print(
            "No model folders yet. Add one with `sfumato models add-folder PATH` "
            "(an AUTOMATIC1111 or ComfyUI folder works as it is)."
        )
    with ExitStack() as stack:
        on_file = None
        if hash_files:
            progress = stack.enter_context(
                Progress(
                    TextColumn("{task.description}"),
                    BarColumn(),
                    DownloadColumn(),
                    TimeRemainingColumn(),
                    console=console,
                    transient=True,
                )
            )
            on_file = _hash_progress(progress)
        entries = library.entries(identify=True, hash=hash_files, progress=on_file)
    from sfumato.models.compatibility import compatibility

    fit = {(c.kind, c.name): c for c in compatibility(entries)}
    if json_output:
        print_json([e.to_json() | _fits_json(fit.get((e.kind, e.name))) for e in entries])
        return
    table = Table("name", "kind", "architecture", "size", "hash", "fits")
    for e in entries:
        found = fit.get((e.kind, e.name))
        architecture = e.architecture or (found.family if found else "?")
        table.add_row(e.name, e.kind, architecture, _human(e.size), e.hash or "", _fits_text(found))
    from rich.console import Console

    Console().print(table)


def _fits_json(found: Compatibility | None) -> dict[str, object]:
    if found is None:
        return {}
    return {"made_for": found.family, "fits": list(found.models), "problem": found.problem or None}


def _fits_text(found: Compatibility | None) -> str:
    if found is None:
        return ""
    if found.problem:
        return f"unreadable: {found.problem}"
    return ", ".join(found.models) if found.models else "none of your models"


@models_app.command("add-folder")
@_one_line_errors
def add_folder(
    path: Annotated[
        Path,
        typer.Argument(
            help="A folder of models: an A1111, ComfyUI, Stability Matrix or InvokeAI install, or flat."
        ),
    ],
    json_output: Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")] = False,
) -> None:
    """Use the models in PATH where they are (nothing is copied)."""
    from sfumato.core.settings import Settings
    from sfumato.models.library import ModelLibrary

    library = ModelLibrary(Settings())
    folder = library.add_folder(path)
    found = [e for e in library.entries() if _under(e.path, folder)]
    if json_output:
        print_json({"folder": str(folder), "models": [e.to_json() for e in found]})
        return
    console.print(f"Added {folder}: {len(found)} model file(s) found.")


def _under(path: Path, folder: Path) -> bool:
    try:
        path.relative_to(folder)
    except ValueError:
        return False
    return True


@models_app.command("convert")
@_one_line_errors
def convert(
    path: Annotated[Path, typer.Argument(help="A .ckpt/.pt/.pth/.bin file you trust.")],
    json_output: Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")] = False,
) -> None:
    """Read only the tensors of a pickled checkpoint and write a .safetensors file beside it."""
    from sfumato.models.safety import convert_to_safetensors

    if not path.is_file():
        raise SfumatoError(f"{path} is not a file.", "Give the path of the .ckpt/.pt file to convert.")
    target = convert_to_safetensors(path)
    if json_output:
        print_json({"converted": str(path), "file": str(target)})
        return
    console.print(f"Wrote {target}. Sfumato will use it; you may delete {path.name}.")


@models_app.command("identify")
@_one_line_errors
def identify(
    path: Annotated[Path, typer.Argument(help="A model file or diffusers folder.")],
    json_output: Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")] = False,
) -> None:
    """Tell a model's architecture and variant from its header (never runs code in it)."""
    from dataclasses import asdict

    from sfumato.models.identify import identify_file

    if not path.exists():
        raise SfumatoError(f"{path} does not exist.", "Check the path.")
    identity = identify_file(path)
    if identity.kind in ("upscaler", "unknown") and path.is_file():
        from sfumato.models.upscalers import identify_upscaler

        try:
            architecture = identify_upscaler(path)
        except SfumatoError:
            architecture = None
        if architecture is not None:
            if json_output:
                print_json({"kind": "upscaler", "architecture": architecture, "description": architecture})
            else:
                typer.echo(f"{path.name}: {architecture} (upscaler)")
            return
    if json_output:
        print_json(asdict(identity) | {"description": identity.describe()})
        return
    extras = [x for x, on in (("has a VAE", identity.has_vae), ("has EMA weights", identity.has_ema)) if on]
    kind = "" if identity.kind == "checkpoint" else f" ({identity.kind})"
    typer.echo(f"{path.name}: {identity.describe()}{kind}" + (f"; {', '.join(extras)}" if extras else ""))
