"""Face commands on a picture you have: `sfumato restore-faces`, `sfumato detail`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from sfumato.cli.console import console, fail, print_json
from sfumato.cli.main import Json, Model, OutputDir, Seed, Steps, app, settings_for

Picture = Annotated[Path, typer.Argument(help="The picture.", exists=True, dir_okay=False)]


def _save(
    picture: Path,
    image: Any,
    step: Any,
    settings: Any,
    notes: list[str],
    as_json: bool,
    keep_recipe: bool = True,
) -> None:
    """The result into the outputs folder: with the picture's recipe plus this step when it has one
    (so the archive reproduces it), else as a plain PNG."""
    import io

    from sfumato.archive.files import save_bytes
    from sfumato.archive.index import Archive
    from sfumato.archive.metadata import read_metadata
    from sfumato.core.result import GeneratedImage, ModelInfo

    found = read_metadata(picture)
    if found.request is not None and keep_recipe:
        recipe = found.request.model_copy(update={"postprocess": [*found.request.postprocess, step]})
        item = GeneratedImage(image, recipe, found.model_info or ModelInfo(name=found.model or "unknown"))
        archive = Archive(settings)
        out = archive.path_of(archive.save(item))
    else:
        buffer = io.BytesIO()
        image.save(buffer, format="PNG")
        out = save_bytes(buffer.getvalue(), settings.outputs, 0, picture.stem + "-" + step.kind, ".png")
    for note in notes:
        console.print(f"[yellow]note:[/] {note}")
    if as_json:
        print_json({"file": str(out), "notes": notes})
    else:
        typer.echo(str(out))


def _open(picture: Path) -> Any:
    from sfumato.core.errors import SfumatoError
    from sfumato.core.images import load_image

    try:
        return load_image(str(picture), "picture").convert("RGB")
    except SfumatoError as error:
        fail(str(error))


@app.command("restore-faces")
def restore_faces_command(
    picture: Picture,
    model: Annotated[
        str, typer.Option("--model", "-m", help="GFPGAN, RestoreFormer, CodeFormer or a file.")
    ] = "GFPGAN",
    visibility: Annotated[
        float, typer.Option(help="Blend of the restored faces over the original, 0–1.")
    ] = 1.0,
    codeformer_weight: Annotated[
        float, typer.Option(help="CodeFormer: 0 = most restoration, 1 = most fidelity.")
    ] = 0.5,
    output_dir: OutputDir = None,
    as_json: Json = False,
) -> None:
    """Find the faces in a picture and restore them with a face-restorer model."""
    from pydantic import ValidationError

    from sfumato.core.errors import SfumatoError
    from sfumato.core.postprocess import RestoreFacesStep
    from sfumato.core.request import describe_validation_error
    from sfumato.postprocess.faces import restore_faces

    try:
        step = RestoreFacesStep(model=model, visibility=visibility, codeformer_weight=codeformer_weight)
    except ValidationError as error:
        fail(describe_validation_error(error))
    settings = settings_for(output_dir)
    try:
        restored = restore_faces(_open(picture), step, settings)
        _save(picture, restored.picture, step, settings, restored.notes, as_json)
    except SfumatoError as error:
        fail(str(error))


@app.command("detail")
def detail_command(
    picture: Picture,
    prompt: Annotated[
        str | None, typer.Argument(help="The regions' prompt; default: the picture's own.")
    ] = None,
    target: Annotated[str, typer.Option(help="face, a demo-world shape, or a class of --detector.")] = "face",
    detector: Annotated[str, typer.Option(help="auto, haar, demo, or a YOLO detector .onnx file.")] = "auto",
    denoise: Annotated[float, typer.Option(help="Denoising strength of the re-render, 0–1.")] = 0.4,
    padding: Annotated[int, typer.Option(help="Context pixels around each region.")] = 32,
    max_count: Annotated[int, typer.Option(help="Most regions re-rendered; 0 = all.")] = 0,
    order: Annotated[
        str, typer.Option(help="largest, confidence, left-to-right, top-to-bottom.")
    ] = "largest",
    save_crops: Annotated[bool, typer.Option(help="Also save each re-rendered crop on its own.")] = False,
    negative: Annotated[
        str | None, typer.Option("--negative", "-n", help="The regions' negative prompt.")
    ] = None,
    steps: Steps = None,
    seed: Seed = None,
    model: Model = None,
    output_dir: OutputDir = None,
    as_json: Json = False,
) -> None:
    """Re-render the faces (or other regions) of a picture at the model's full resolution."""
    import io

    from pydantic import ValidationError

    from sfumato.archive.files import save_bytes
    from sfumato.archive.metadata import read_metadata
    from sfumato.core.errors import SfumatoError
    from sfumato.core.postprocess import DetailStep
    from sfumato.core.request import GenerationRequest, describe_validation_error
    from sfumato.models.loading import load_model
    from sfumato.postprocess.detailer import detail

    try:
        step = DetailStep(
            target=target,
            detector=detector,
            prompt=prompt or "",
            negative_prompt=negative or "",
            denoising_strength=denoise,
            padding=padding,
            max_count=max_count,
            order=order,  # pyright: ignore[reportArgumentType]  # validated by the model
            save_crops=save_crops,
            seed=-1 if seed is None else seed,
            steps=steps or 0,
        )
    except ValidationError as error:
        fail(describe_validation_error(error))
    settings = settings_for(output_dir)
    image = _open(picture)
    recipe = read_metadata(picture).request
    base = recipe or GenerationRequest()
    notes: list[str] = []
    if model is not None and recipe is not None and model != recipe.model:
        # The picture's recipe renders with its own model; a result from another one has no recipe.
        notes.append(f"Detailed with {model}, not the picture's model: the result is saved without a recipe.")
        recipe = None
    base = base.model_copy(update={"postprocess": [], **({"model": model} if model is not None else {})})
    if not (step.prompt or base.prompt):
        fail(
            f'{picture.name} holds no prompt; give one after the picture, e.g. sfumato detail in.png "a face".'
        )
    try:
        components = load_model(settings, base.model)
        result = detail(image, step, components, base)
        _save(
            picture,
            result.picture,
            step,
            settings,
            notes + result.notes,
            as_json,
            keep_recipe=recipe is not None,
        )
        for crop in result.crops if step.save_crops else []:
            buffer = io.BytesIO()
            crop.save(buffer, format="PNG")
            save_bytes(buffer.getvalue(), settings.outputs, 0, picture.stem + "-detail-crop", ".png")
    except SfumatoError as error:
        fail(str(error))
