"""`sfumato xyz`: one request varied along up to three axes, as a labelled grid."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from sfumato.cli.console import console, print_json
from sfumato.cli.main import (
    Cfg,
    ClipSkip,
    Format,
    Height,
    Json,
    Model,
    Negative,
    OutputDir,
    Sampler,
    Schedule,
    Seed,
    Steps,
    Vae,
    Width,
    app,
    request_fields,
    settings_for,
)
from sfumato.core.errors import InvalidRequest

AxisOption = Annotated[
    str | None,
    typer.Option(help='An axis: "name: value, value, …", e.g. "steps: 10, 20" or "prompt s/r: red, blue".'),
]


def parse_axis(text: str) -> dict[str, Any]:
    name, colon, values = text.partition(":")
    items = [value.strip() for value in values.split(",") if value.strip()]
    if not colon or not name.strip() or not items:
        raise InvalidRequest(
            f"The axis {text!r} has no values.", 'Write it as "name: value, value", e.g. "steps: 10, 20".'
        )
    return {"name": name.strip(), "values": items}


@app.command()
def xyz(
    prompt: Annotated[str, typer.Argument(help="What to draw, in A1111 prompt syntax.")],
    x: AxisOption = None,
    y: AxisOption = None,
    z: AxisOption = None,
    negative: Negative = None,
    width: Width = None,
    height: Height = None,
    steps: Steps = None,
    cfg: Cfg = None,
    sampler: Sampler = None,
    schedule: Schedule = None,
    seed: Seed = None,
    clip_skip: ClipSkip = None,
    model: Model = None,
    vae: Vae = None,
    image_format: Format = "png",
    output_dir: OutputDir = None,
    as_json: Json = False,
) -> None:
    """Render a grid: the prompt with request fields varied along x (and y, z); every cell saved with its recipe."""
    from pydantic import ValidationError

    from sfumato.core.request import describe_validation_error
    from sfumato.core.xyz import XYZPlot
    from sfumato.jobs.xyz import run_plot

    if x is None:
        raise InvalidRequest("Give at least the x axis.", 'For example --x "steps: 10, 20, 30".')
    fields = {key: value for key, value in request_fields(locals()).items() if value is not None}
    axes = {name: parse_axis(text) for name, text in (("x", x), ("y", y), ("z", z)) if text is not None}
    try:
        plot = XYZPlot.model_validate({"request": fields, **axes})
    except ValidationError as error:
        raise InvalidRequest(f"Invalid plot: {describe_validation_error(error)}.") from None
    output = run_plot(settings_for(output_dir), plot, image_format=image_format)
    for note in output.notes:
        console.print(f"[yellow]note:[/] {note}")
    cells = [str(picture.file) for picture in output.cells]
    if as_json:
        print_json({"grid": str(output.grid), "cells": cells, "notes": output.notes})
        return
    typer.echo(str(output.grid))
    console.print(f"[green]saved a grid of {len(cells)} cell(s)[/], each with its recipe")
