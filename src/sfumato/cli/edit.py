"""`sfumato edit` and `sfumato invert`: change a picture by prompt through its recovered noise."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from sfumato.cli.console import console, print_json
from sfumato.cli.main import Json, Model, OutputDir, app, settings_for

Method = Annotated[str, typer.Option("--method", help="fixed-point (exact) or ddim.")]
InversionSteps = Annotated[int, typer.Option("--steps", "-s", help="DDIM steps (1-150).")]


@app.command()
def edit(
    picture: Annotated[Path, typer.Argument(help="The picture to change.")],
    source: Annotated[str, typer.Option("--from", help='What the picture shows, e.g. "a red circle".')],
    target: Annotated[str, typer.Option("--to", help='What it should show, e.g. "a blue circle".')],
    steps: InversionSteps = 20,
    guidance: Annotated[float, typer.Option("--guidance", help="How hard the new words are followed.")] = 5.0,
    threshold: Annotated[
        float, typer.Option("--threshold", help="Mask: share of the largest prediction change (0-1).")
    ] = 0.35,
    method: Method = "fixed-point",
    region: Annotated[
        str, typer.Option("--region", help="auto, changed (where the prompts differ) or background.")
    ] = "auto",
    model: Model = None,
    output_dir: OutputDir = None,
    as_json: Json = False,
) -> None:
    """Change what the prompts differ in (--from "a red circle" --to "a blue circle"), keep everything else."""
    from pydantic import ValidationError

    from sfumato.core.edit import EditRequest
    from sfumato.core.errors import InvalidRequest
    from sfumato.core.request import describe_validation_error
    from sfumato.jobs.edit import run_edit

    try:
        request = EditRequest.model_validate(
            {
                "picture": str(picture),
                "source_prompt": source,
                "target_prompt": target,
                "steps": steps,
                "guidance": guidance,
                "threshold": threshold,
                "method": method,
                "region": region,
                "model": model,
            }
        )
    except ValidationError as error:
        raise InvalidRequest(f"Invalid edit: {describe_validation_error(error)}.") from None
    output = run_edit(settings_for(output_dir), request)
    for note in output.notes:
        console.print(f"[yellow]note:[/] {note}")
    if as_json:
        print_json({"file": str(output.file), "notes": output.notes})
        return
    typer.echo(str(output.file))


@app.command()
def invert(
    picture: Annotated[Path, typer.Argument(help="The picture whose noise to recover.")],
    prompt: Annotated[str, typer.Option("--prompt", "-p", help="What the picture shows.")],
    steps: InversionSteps = 20,
    method: Method = "fixed-point",
    model: Model = None,
    as_json: Json = False,
) -> None:
    """Recover the noise that makes PICTURE with PROMPT, regenerate from it, and print how close it comes back."""
    from sfumato.jobs.edit import check_inversion

    if not 1 <= steps <= 150:
        from sfumato.core.errors import InvalidRequest

        raise InvalidRequest(f"{steps} steps is out of range.", "Use 1-150 steps, e.g. 20.")
    check = check_inversion(settings_for(None), str(picture), prompt, steps, method, model)
    if as_json:
        print_json({"psnr": check.psnr, "psnr_through_vae": check.psnr_latents, "residual": check.residual})
        return
    typer.echo(
        f"reconstruction PSNR {check.psnr:.2f} dB (vs the picture through the VAE alone: "
        f"{check.psnr_latents:.2f} dB), {method}, {steps} steps"
    )
