"""Commands that grow a picture: `sfumato outpaint`, `sfumato fix-crop`, `sfumato upscale`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from sfumato.cli.console import fail
from sfumato.cli.main import (
    BatchCount,
    BatchSize,
    Cfg,
    ClipSkip,
    Format,
    Json,
    Model,
    Negative,
    OutputDir,
    Sampler,
    Schedule,
    Seed,
    Steps,
    Strength,
    Vae,
    app,
    build_request,
    request_fields,
    run_and_report,
    settings_for,
)

Picture = Annotated[Path, typer.Argument(help="The picture to grow.", exists=True, dir_okay=False)]
Prompt = Annotated[
    str | None, typer.Argument(help="What to draw; default: the prompt stored in the picture.")
]
Fill = Annotated[
    str | None, typer.Option("--fill", help="New area starts as: blurred mirror, edge stretch, latent noise.")
]
Seam = Annotated[
    int | None, typer.Option("--seam", help="Pixels of the known picture re-rendered with it, feathered.")
]


def _pixels(help: str) -> Any:
    return typer.Option(help=help, min=0)


def picture_prompts(picture: Path, prompt: str | None, negative: str | None) -> tuple[str, str | None]:
    """The prompt given, else the one the picture's recipe holds (and its negative, unless given)."""
    if prompt is not None:
        return prompt, negative
    from sfumato.archive.metadata import read_metadata

    found = read_metadata(picture)
    if not found.has_recipe or not found.prompt:
        fail(
            f'{picture.name} holds no prompt; give one after the picture, e.g. sfumato outpaint in.png "a castle".'
        )
    return found.prompt, negative if negative is not None else found.negative_prompt


@app.command()
def outpaint(
    picture: Picture,
    prompt: Prompt = None,
    top: Annotated[int, _pixels("Pixels to add above (rounded up to 8).")] = 0,
    bottom: Annotated[int, _pixels("Pixels to add below.")] = 0,
    left: Annotated[int, _pixels("Pixels to add on the left.")] = 0,
    right: Annotated[int, _pixels("Pixels to add on the right.")] = 0,
    aspect: Annotated[
        str | None, typer.Option("--aspect", help="Grow evenly to this aspect ratio (W:H), instead of sides.")
    ] = None,
    fill: Fill = None,
    seam: Seam = None,
    tiles: Annotated[
        bool | None,
        typer.Option("--tiles/--no-tiles", help="Grow tile by tile (default: above twice the native size)."),
    ] = None,
    strength: Strength = None,
    negative: Negative = None,
    steps: Steps = None,
    cfg: Cfg = None,
    sampler: Sampler = None,
    schedule: Schedule = None,
    seed: Seed = None,
    batch_size: BatchSize = None,
    batch_count: BatchCount = None,
    clip_skip: ClipSkip = None,
    model: Model = None,
    vae: Vae = None,
    image_format: Format = "png",
    output_dir: OutputDir = None,
    as_json: Json = False,
) -> None:
    """Grow a picture's canvas on any sides and draw the new area, with the whole picture as context."""
    prompt, negative = picture_prompts(picture, prompt, negative)
    values = request_fields(locals())
    sides: dict[str, Any] = {"top": top, "bottom": bottom, "left": left, "right": right}
    if aspect is not None:
        from sfumato.core.images import load_image
        from sfumato.core.request import aspect_sides

        if any(sides.values()):
            fail("Give either --aspect or the sides to grow, not both.")
        sides |= aspect_sides(load_image(str(picture), "picture").size, aspect)
    if fill is not None:
        sides["fill"] = fill
    if seam is not None:
        sides["seam"] = seam
    if tiles is not None:
        sides["tiled"] = tiles
    # The recipe keeps the picture's full path, so that --from finds it from any folder.
    values |= {"init_image": str(picture.resolve()), "outpaint": sides}
    run_and_report(build_request(None, values), settings_for(output_dir), image_format, as_json)


@app.command("fix-crop")
def fix_crop(
    picture: Picture,
    prompt: Prompt = None,
    side: Annotated[
        str | None, typer.Option("--side", help="top, bottom, left or right; default: found in the picture.")
    ] = None,
    strength: Strength = None,
    negative: Negative = None,
    steps: Steps = None,
    cfg: Cfg = None,
    sampler: Sampler = None,
    schedule: Schedule = None,
    seed: Seed = None,
    batch_size: BatchSize = None,
    batch_count: BatchCount = None,
    model: Model = None,
    vae: Vae = None,
    image_format: Format = "png",
    output_dir: OutputDir = None,
    as_json: Json = False,
) -> None:
    """Complete a subject cut off by the frame: outpaint the side it touches, with the picture's own recipe."""
    from sfumato.jobs.fix_crop import fix_crop_request

    request = fix_crop_request(str(picture.resolve()), side, request_fields(locals()))
    run_and_report(request, settings_for(output_dir), image_format, as_json)


@app.command()
def upscale(
    picture: Annotated[Path, typer.Argument(help="The picture to enlarge.", exists=True, dir_okay=False)],
    prompt: Prompt = None,
    scale: Annotated[float, typer.Option("--scale", help="Enlarge by (e.g. 2 or 4).")] = 2.0,
    upscaler: Annotated[
        str | None,
        typer.Option(
            "--upscaler",
            help="An upscaler model from `sfumato models list` (ESRGAN, RealESRGAN, SwinIR…), Lanczos or "
            "Nearest (default: Lanczos).",
        ),
    ] = None,
    width: Annotated[
        int | None, typer.Option("--width", help="Exact width instead of a scale.", min=1)
    ] = None,
    height: Annotated[
        int | None, typer.Option("--height", help="Exact height instead of a scale.", min=1)
    ] = None,
    tiled: Annotated[
        bool | None,
        typer.Option(
            "--tiled/--no-tiled",
            help="SD upscale: Lanczos, then re-render tile by tile with the diffusion model (new detail). "
            "Implied by a prompt, --tile, --overlap or --strength.",
        ),
    ] = None,
    overlap: Annotated[
        int | None, typer.Option("--overlap", help="--tiled: pixels neighbouring tiles share (32).")
    ] = None,
    tile: Annotated[
        int | None, typer.Option("--tile", help="--tiled: tile side; default: the model's native size.")
    ] = None,
    strength: Annotated[
        float | None, typer.Option("--strength", help="--tiled: denoising of each tile (0.2; low keeps it).")
    ] = None,
    seam_fix: Annotated[
        bool, typer.Option("--seam-fix", help="Then re-render a band along every tile border.")
    ] = False,
    seam_fix_width: Annotated[
        int | None, typer.Option("--seam-fix-width", help="Seam-fix band width in pixels (32).")
    ] = None,
    seam_fix_denoise: Annotated[
        float | None, typer.Option("--seam-fix-denoise", help="Seam-fix denoising strength (0.25).")
    ] = None,
    negative: Negative = None,
    steps: Steps = None,
    cfg: Cfg = None,
    sampler: Sampler = None,
    schedule: Schedule = None,
    seed: Seed = None,
    model: Model = None,
    vae: Vae = None,
    image_format: Format = "png",
    output_dir: OutputDir = None,
    as_json: Json = False,
) -> None:
    """Enlarge a picture: with an upscaler model (or Lanczos), or with --tiled, re-rendered tile by tile.

    Without --tiled the picture is only enlarged (A1111's Extras tab); with --tiled (or a prompt, --tile,
    --overlap or --strength) it gains new detail from the diffusion model (A1111's "SD upscale" script).
    """
    tiled_only = [prompt, tile, overlap, strength]
    if tiled is None:
        tiled = any(option is not None for option in tiled_only)
    if not tiled:
        if any(option is not None for option in tiled_only):
            fail("A prompt, --tile, --overlap and --strength are for --tiled (re-rendered) upscaling.")
        _upscale_with_model(
            picture, upscaler or "Lanczos", scale, width or 0, height or 0, output_dir, as_json
        )
        return
    if upscaler is not None or width is not None or height is not None:
        fail(
            "--upscaler, --width and --height are for upscaling without --tiled; --tiled enlarges by --scale."
        )
    strength = 0.2 if strength is None else strength
    prompt, negative = picture_prompts(picture, prompt, negative)
    values = request_fields(locals())
    settings: dict[str, Any] = {"scale": scale}
    if overlap is not None:
        settings["overlap"] = overlap
    if tile is not None:
        settings["tile"] = tile
    band = {"width": seam_fix_width, "denoising_strength": seam_fix_denoise}
    band = {key: value for key, value in band.items() if value is not None}
    if seam_fix or band:
        settings["seam_fix"] = band
    values |= {"init_image": str(picture.resolve()), "upscale": settings}
    run_and_report(build_request(None, values), settings_for(output_dir), image_format, as_json)


def _upscale_with_model(
    picture: Path,
    upscaler: str,
    scale: float,
    width: int,
    height: int,
    output_dir: Path | None,
    as_json: bool,
) -> None:
    from pydantic import ValidationError

    from sfumato.cli.console import print_json
    from sfumato.core.postprocess import UpscaleStep
    from sfumato.core.request import describe_validation_error
    from sfumato.jobs.extras import postprocess_file

    try:
        step = UpscaleStep(upscaler=upscaler, scale=scale, width=width, height=height)
    except ValidationError as error:
        fail(f"Invalid upscale: {describe_validation_error(error)}.")
    saved = postprocess_file(settings_for(output_dir), picture, [step])
    if as_json:
        print_json({"images": [str(saved)]})
    else:
        typer.echo(str(saved))
