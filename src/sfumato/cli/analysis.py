"""`sfumato interrogate` and `sfumato search`: what CLIP sees in a picture, and pictures by concept."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from sfumato.cli.console import console, print_json
from sfumato.cli.main import Json, app

if TYPE_CHECKING:
    from sfumato.core.settings import Settings

ClipOption = Annotated[
    Path | None,
    typer.Option(
        "--clip",
        help="A CLIP folder or .safetensors file; default: settings' clip_model, else the demo CLIP.",
    ),
]


def _settings(clip: Path | None) -> Settings:
    from sfumato.core.settings import Settings

    settings = Settings()
    if clip is not None:
        settings.clip_model = clip
    return settings


@app.command()
def interrogate(
    picture: Annotated[Path, typer.Argument(help="The picture to describe.")],
    clip: ClipOption = None,
    lists: Annotated[
        str | None,
        typer.Option("--lists", help="Only these phrase lists, comma separated (e.g. mediums,artists)."),
    ] = None,
    tags: Annotated[
        bool, typer.Option("--tags", help="Booru-style tags from the configured tagger instead.")
    ] = False,
    as_json: Json = False,
) -> None:
    """Describe a picture as a prompt: CLIP ranks phrase lists against it (and a captioner leads, if set)."""
    from sfumato.analysis.interrogate import interrogate_with_settings, tags_with_settings
    from sfumato.core.images import load_image

    settings = _settings(clip)
    image = load_image(str(picture), "picture")
    if tags:
        found = tags_with_settings(image, settings)
        if as_json:
            print_json(
                {"tags": [{"tag": t.name, "score": round(t.score, 4), "category": t.category} for t in found]}
            )
        else:
            typer.echo(", ".join(t.name for t in found if t.category != "rating"))
        return
    only = [name.strip() for name in lists.split(",") if name.strip()] if lists else None
    result = interrogate_with_settings(image, settings, only)
    if as_json:
        print_json(result.to_json())
        return
    typer.echo(result.prompt)
    for name, ranked in result.ranked.items():
        console.print(f"[dim]{name}:[/] " + ", ".join(f"{r.phrase} ({r.score:.2f})" for r in ranked[:3]))


@app.command()
def search(
    text: Annotated[str | None, typer.Argument(help='What to look for, e.g. "a yellow star".')] = None,
    like: Annotated[Path | None, typer.Option("--like", help="Find pictures like this one instead.")] = None,
    dataset: Annotated[
        Path | None,
        typer.Option(
            "--dataset", help="Search this LAION-style dataset (clip-retrieval layout), not the archive."
        ),
    ] = None,
    neighbours: Annotated[
        int | None, typer.Option("--neighbours", help="With --dataset: the rows nearest to this row id.")
    ] = None,
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, max=1000, help="How many results.")] = 10,
    clip: ClipOption = None,
    as_json: Json = False,
) -> None:
    """Pictures by concept: your archive (or a dataset) searched by text, by a picture, or by a neighbour."""
    from sfumato.analysis.clip_model import load_clip
    from sfumato.core.errors import InvalidRequest
    from sfumato.core.images import load_image

    given = sum(x is not None for x in (text, like, neighbours))
    if given != 1:
        raise InvalidRequest(
            "Give one of: a text, --like PICTURE, or --neighbours ID.", 'e.g. sfumato search "a yellow star".'
        )
    if neighbours is not None and dataset is None:
        raise InvalidRequest("--neighbours walks a dataset's rows: give --dataset too.")
    settings = _settings(clip)
    picture = load_image(str(like), "picture") if like is not None else None
    if dataset is not None:
        from sfumato.analysis.dataset_search import dataset_stamp, open_dataset

        found = open_dataset(str(dataset.resolve()), dataset_stamp(dataset))
        if neighbours is not None:
            hits = found.neighbours(neighbours, limit)
        else:
            model = load_clip(settings.clip_model)
            query = model.embed_texts([text])[0] if text is not None else model.embed_pictures([picture])[0]  # type: ignore[list-item]
            hits = found.search(query, limit)
        if as_json:
            print_json(
                {"index": found.index.kind, "rows": len(found), "results": [h.to_json() for h in hits]}
            )
            return
        for hit in hits:
            score = f" aesthetic {hit.aesthetic:.2f}" if hit.aesthetic is not None else ""
            typer.echo(f"{hit.id}\t{hit.score:.3f}\t{hit.caption}\t{hit.url}{score}")
        return
    from sfumato.analysis.archive_search import search_archive

    results = search_archive(settings, load_clip(settings.clip_model), text=text, like=picture, limit=limit)
    if as_json:
        print_json({"results": [r.to_json() for r in results]})
        return
    if not results:
        console.print("The archive is empty: pictures you generate appear here.")
    for hit in results:
        typer.echo(f"#{hit.record.id}\t{hit.score:.3f}\t{hit.record.path}\t{hit.record.prompt}")
