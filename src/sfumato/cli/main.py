"""The `sfumato` command line."""

from __future__ import annotations

import gc
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from typer.core import TyperGroup

from sfumato.cli.console import console, fail, fail_with, json_errors, print_json
from sfumato.core.errors import Cancelled, SfumatoError
from sfumato.core.images import ImageFormat

if TYPE_CHECKING:
    from sfumato.core.events import StepProgress
    from sfumato.core.request import GenerationRequest
    from sfumato.core.settings import Settings
    from sfumato.jobs.runner import RunOutput


class _Commands(TyperGroup):
    """Shows Sfumato's own errors as one line (what went wrong, what to do) and exits 1."""

    # `ctx` is click's Context; newer typers vendor click privately, so it is not named here.
    def invoke(self, ctx: Any) -> Any:
        json_errors.set("--json" in getattr(ctx, "args", ()))  # the sub-command's own arguments
        try:
            return super().invoke(ctx)
        except SfumatoError as error:
            fail_with(error)
        except Exception as error:
            # click's usage errors (a missing option, a bad value), as JSON under --json; matched by
            # shape, since typer vendors click privately in some versions and not in others
            message = getattr(error, "format_message", None)
            if json_errors.get() and callable(message) and isinstance(getattr(error, "exit_code", None), int):
                fail(str(message()), code=getattr(error, "exit_code", 2), hint="See --help.")
            raise


app = typer.Typer(
    name="sfumato",
    cls=_Commands,
    help="Sfumato: an offline-first studio for Stable Diffusion.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


def _print_version(value: bool) -> None:
    if value:
        from sfumato import __version__

        typer.echo(f"sfumato {__version__}")
        raise typer.Exit()


@app.callback()
def _options(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_print_version, is_eager=True, help="Print the version and exit."),
    ] = False,
) -> None:
    """Sfumato: an offline-first studio for Stable Diffusion."""


# Options shared by generate / img2img / inpaint. None means "not given": it leaves the recalled
# recipe (--from) or the request default in place.
Negative = Annotated[str | None, typer.Option("--negative", "-n", help="Negative prompt.")]
Width = Annotated[int | None, typer.Option("--width", "-W", help="Width in pixels (multiple of 8).")]
Height = Annotated[int | None, typer.Option("--height", "-H", help="Height in pixels (multiple of 8).")]
Steps = Annotated[int | None, typer.Option("--steps", "-s", help="Denoising steps (1–150).")]
Cfg = Annotated[float | None, typer.Option("--cfg", help="CFG scale (guidance).")]
Sampler = Annotated[str | None, typer.Option("--sampler", help="Sampler by its A1111 name, e.g. 'Euler a'.")]
Schedule = Annotated[
    str | None, typer.Option("--schedule", help="Automatic, Karras, Exponential, SGM Uniform.")
]
Seed = Annotated[int | None, typer.Option("--seed", help="Seed; -1 picks one at random.")]
VarSeed = Annotated[int | None, typer.Option("--variation-seed", help="Variation seed.")]
VarStrength = Annotated[float | None, typer.Option("--variation-strength", help="Variation strength 0–1.")]
BatchSize = Annotated[int | None, typer.Option("--batch-size", "-b", help="Pictures made at once.")]
BatchCount = Annotated[
    int | None, typer.Option("--batch-count", "-c", help="Batches made one after another.")
]
ClipSkip = Annotated[int | None, typer.Option("--clip-skip", help="Skip the last N-1 text encoder layers.")]
Model = Annotated[str | None, typer.Option("--model", "-m", help="Model name, hash or path.")]
Vae = Annotated[str | None, typer.Option("--vae", help="VAE name or path.")]
Recall = Annotated[
    Path | None, typer.Option("--from", help="Start from the recipe stored in an image; flags override it.")
]
Format = Annotated[ImageFormat, typer.Option("--format", help="png, jpeg or webp.")]
OutputDir = Annotated[Path | None, typer.Option("--output-dir", "-o", help="Folder for the pictures.")]
Json = Annotated[bool, typer.Option("--json", help="Print the result as JSON.")]
Strength = Annotated[float | None, typer.Option("--strength", help="Denoising strength 0–1.")]
HiresOn = Annotated[bool, typer.Option("--hires", help="Hires fix: render, upscale, render again.")]
HrScale = Annotated[float | None, typer.Option("--hr-scale", help="Hires fix: upscale by (default 2).")]
HrUpscaler = Annotated[
    str | None,
    typer.Option(
        "--hr-upscaler",
        help="Latent (default), Latent (nearest)…, Lanczos, Nearest, or an upscaler model by name.",
    ),
]
UpscaleWith = Annotated[
    str | None,
    typer.Option(
        "--upscale",
        help="After each picture, enlarge it with this upscaler: a model from `sfumato models list`, "
        "Lanczos or Nearest.",
    ),
]
UpscaleBy = Annotated[float, typer.Option("--upscale-by", help="--upscale: enlarge by (2).")]
HrSteps = Annotated[int | None, typer.Option("--hr-steps", help="Second-pass steps; 0 = as the first.")]
HrDenoise = Annotated[float | None, typer.Option("--hr-denoise", help="Second-pass denoising (0.7).")]
HrResizeX = Annotated[
    int | None, typer.Option("--hr-resize-x", help="Second-pass width, instead of a scale.")
]
HrResizeY = Annotated[int | None, typer.Option("--hr-resize-y", help="Second-pass height.")]
HrSampler = Annotated[str | None, typer.Option("--hr-sampler", help="Second-pass sampler.")]
HrPrompt = Annotated[str | None, typer.Option("--hr-prompt", help="Second-pass prompt.")]
HrNegative = Annotated[str | None, typer.Option("--hr-negative", help="Second-pass negative prompt.")]
TiledOn = Annotated[
    bool,
    typer.Option(
        "--tiled-diffusion", help="Denoise a canvas larger than the model's size as overlapping tiles."
    ),
]
TileSide = Annotated[
    int | None, typer.Option("--tile", help="Tiled diffusion: tile side (the model's size).")
]
TileOverlap = Annotated[
    int | None, typer.Option("--tile-overlap", help="Tiled diffusion: pixels neighbouring tiles share (48).")
]
TiledMethodOption = Annotated[
    str | None, typer.Option("--tiled-method", help="'Mixture of Diffusers' (default) or MultiDiffusion.")
]
NsfwFilter = Annotated[
    str | None,
    typer.Option(
        "--nsfw-filter", help="off, blur or withhold pictures the NSFW check flags (default: settings)."
    ),
]
FixCrop = Annotated[
    bool, typer.Option("--fix-crop", help="Then outpaint where the subject is cut off by the frame.")
]


RestoreFaces = Annotated[bool, typer.Option("--restore-faces", help="Then restore faces (GFPGAN).")]
DetailTarget = Annotated[
    str | None, typer.Option("--detail", help="Then re-render each region of this kind (face) at full size.")
]
DetailPrompt = Annotated[str | None, typer.Option("--detail-prompt", help="The detailed regions' prompt.")]
DetailDenoise = Annotated[
    float | None, typer.Option("--detail-denoise", help="The detailer's denoising (0.4).")
]
AnatomyGateOn = Annotated[
    bool, typer.Option("--anatomy-gate", help="Re-render (new seed) pictures a plausibility check rejects.")
]
GateThreshold = Annotated[
    float | None, typer.Option("--gate-threshold", help="Anatomy gate: lowest plausibility accepted (0.5).")
]
GateBudget = Annotated[int | None, typer.Option("--gate-budget", help="Anatomy gate: most re-renders (3).")]
KeepRejected = Annotated[
    str | None,
    typer.Option("--keep-rejected", help="Keep the gate's set-aside pictures in this outputs sub-folder."),
]


def face_fields(
    restore_faces: bool,
    detail: str | None,
    prompt: str | None,
    denoise: float | None,
    gate: bool,
    gate_settings: dict[str, Any],
) -> dict[str, Any]:
    """The post-processing steps and the anatomy gate the face flags ask for, as request fields."""
    steps: list[dict[str, Any]] = []
    if restore_faces:
        steps.append({"kind": "restore_faces"})
    if detail is not None:
        options = {"prompt": prompt, "denoising_strength": denoise}
        steps.append(
            {"kind": "detail", "target": detail} | {k: v for k, v in options.items() if v is not None}
        )
    fields: dict[str, Any] = {"postprocess": steps} if steps else {}
    given = {key: value for key, value in gate_settings.items() if value is not None}
    if gate or given:
        fields["anatomy_gate"] = given
    return fields


def settings_for(output_dir: Path | None) -> Settings:
    from sfumato.core.settings import Settings

    settings = Settings()
    if output_dir is not None:
        settings.output_dir = output_dir
    return settings


def build_request(recall: Path | None, values: dict[str, Any]) -> GenerationRequest:
    from sfumato.core.request import parse_request

    given = {key: value for key, value in values.items() if value is not None}
    if recall is not None:
        from sfumato.archive.metadata import recall as recall_request

        request, notes = recall_request(recall, given)
        for note in notes:
            console.print(f"[yellow]note:[/] {note}")
        return request
    return parse_request(given)


def run_and_report(
    request: GenerationRequest, settings: Settings, image_format: ImageFormat, as_json: bool
) -> None:
    """Generate with a progress bar; Ctrl-C cancels between steps and nothing half-written is left."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from sfumato.core.events import CancelToken
    from sfumato.jobs.runner import run_request

    cancel = CancelToken()
    outcome: dict[str, Any] = {}
    total = request.steps * request.batch_count
    started = time.perf_counter()
    # Importing torch and diffusers and loading the model make about a million objects; the cyclic
    # collector would walk them over and over while they load (~15% of a first picture's time).
    # It is paused until the first step and then ignores what was loaded (gc.freeze).
    gc.disable()

    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]}"),
        TimeRemainingColumn(),
        console=console,
        transient=True,
        disable=as_json,
    ) as progress:
        task = progress.add_task("loading model", total=total, rate="")

        def on_progress(event: StepProgress) -> None:
            if not gc.isenabled():
                gc.freeze()
                gc.enable()
            done = event.batch * event.steps + event.step
            elapsed = time.perf_counter() - started
            rate = f"{done / elapsed:.2f} it/s" if elapsed > 0 else ""
            label = f"batch {event.batch + 1}/{event.batches}" if event.batches > 1 else "generating"
            if cancel.cancelled:
                label = "cancelling after this step"
            progress.update(
                task, completed=done, total=event.batches * event.steps, description=label, rate=rate
            )

        def work() -> None:
            try:
                outcome["value"] = run_request(
                    settings, request, on_progress=on_progress, cancel=cancel, image_format=image_format
                )
            except BaseException as error:  # handed to the main thread, which reports it
                outcome["error"] = error
            finally:
                gc.enable()  # also when the job ended before its first step
                finished.set()

        # The main thread waits on an Event, not Thread.join(timeout): on Python 3.11 a Ctrl-C inside
        # join() marks the still-running worker as stopped, and the exit then aborts the process.
        finished = threading.Event()
        threading.Thread(target=work, name="sfumato-generate", daemon=True).start()
        while not finished.is_set():
            try:
                finished.wait()
            except KeyboardInterrupt:  # cancel at the next step; a second Ctrl-C waits for that too
                cancel.cancel()
                progress.update(task, description="cancelling after this step")

    error = outcome.get("error")
    if isinstance(error, Cancelled):
        fail("Cancelled; no picture was saved.", code=130)
    if isinstance(error, SfumatoError):
        fail_with(error)
    if error is not None:
        raise error
    output: RunOutput = outcome["value"]
    for note in output.notes:
        console.print(f"[yellow]note:[/] {note}")
    if as_json:
        images = [picture.record.to_json() | {"file": str(picture.file)} for picture in output.pictures]
        print_json({"images": images, "notes": output.notes, "timings": output.timings})
        return
    for picture in output.pictures:
        typer.echo(str(picture.file))
    seconds = time.perf_counter() - started
    console.print(f"[green]saved {len(output.pictures)} picture(s)[/] in {seconds:.1f} s")


@app.command()
def generate(
    prompt: Annotated[str | None, typer.Argument(help="What to draw, in A1111 prompt syntax.")] = None,
    negative: Negative = None,
    width: Width = None,
    height: Height = None,
    steps: Steps = None,
    cfg: Cfg = None,
    sampler: Sampler = None,
    schedule: Schedule = None,
    seed: Seed = None,
    variation_seed: VarSeed = None,
    variation_strength: VarStrength = None,
    batch_size: BatchSize = None,
    batch_count: BatchCount = None,
    clip_skip: ClipSkip = None,
    model: Model = None,
    vae: Vae = None,
    recall: Recall = None,
    fix_crop: FixCrop = False,
    nsfw_filter: NsfwFilter = None,
    hires: HiresOn = False,
    hr_scale: HrScale = None,
    hr_upscaler: HrUpscaler = None,
    hr_steps: HrSteps = None,
    hr_denoise: HrDenoise = None,
    hr_resize_x: HrResizeX = None,
    hr_resize_y: HrResizeY = None,
    hr_sampler: HrSampler = None,
    hr_prompt: HrPrompt = None,
    hr_negative: HrNegative = None,
    restore_faces: RestoreFaces = False,
    detail: DetailTarget = None,
    detail_prompt: DetailPrompt = None,
    detail_denoise: DetailDenoise = None,
    anatomy_gate: AnatomyGateOn = False,
    gate_threshold: GateThreshold = None,
    gate_budget: GateBudget = None,
    keep_rejected: KeepRejected = None,
    tiled_diffusion: TiledOn = False,
    tile: TileSide = None,
    tile_overlap: TileOverlap = None,
    tiled_method: TiledMethodOption = None,
    tiled_vae: Annotated[
        bool | None,
        typer.Option(
            "--tiled-vae/--no-tiled-vae", help="VAE in tiles (default: above 4x the native pixels)."
        ),
    ] = None,
    upscale_with: UpscaleWith = None,
    upscale_by: UpscaleBy = 2.0,
    image_format: Format = "png",
    output_dir: OutputDir = None,
    as_json: Json = False,
) -> None:
    """Make pictures from a prompt (text to image)."""
    if prompt is None and recall is None:
        fail('Give a prompt, e.g. sfumato generate "a red circle on a blue background", or --from IMAGE.')
    given = locals()
    values = request_fields(given)
    values["fix_crop"] = fix_crop or None
    second = {field: given[option] for option, field in _HIRES_FIELDS.items() if given[option] is not None}
    if hires or second:
        values["hires"] = second
    gate = {"threshold": gate_threshold, "budget": gate_budget, "keep_rejected": keep_rejected}
    values |= face_fields(restore_faces, detail, detail_prompt, detail_denoise, anatomy_gate, gate)
    tiling = {"tile": tile, "overlap": tile_overlap, "method": tiled_method}
    tiling = {key: value for key, value in tiling.items() if value is not None}
    if tiled_diffusion or tiling:
        values["tiled_diffusion"] = tiling
    values["tiled_vae"] = tiled_vae
    if upscale_with is not None:  # after restoring and detailing at the model's own size
        upscale = {"kind": "upscale", "upscaler": upscale_with, "scale": upscale_by}
        values["postprocess"] = [*values.get("postprocess", []), upscale]
    request = build_request(recall, values)
    run_and_report(request, settings_for(output_dir), image_format, as_json)


@app.command()
def img2img(
    init: Annotated[Path, typer.Option("--init", "-i", help="The starting picture.")],
    prompt: Annotated[str | None, typer.Argument(help="What to draw, in A1111 prompt syntax.")] = None,
    strength: Strength = None,
    negative: Negative = None,
    width: Width = None,
    height: Height = None,
    steps: Steps = None,
    cfg: Cfg = None,
    sampler: Sampler = None,
    schedule: Schedule = None,
    seed: Seed = None,
    variation_seed: VarSeed = None,
    variation_strength: VarStrength = None,
    batch_size: BatchSize = None,
    batch_count: BatchCount = None,
    clip_skip: ClipSkip = None,
    model: Model = None,
    vae: Vae = None,
    recall: Recall = None,
    fix_crop: FixCrop = False,
    nsfw_filter: NsfwFilter = None,
    image_format: Format = "png",
    output_dir: OutputDir = None,
    as_json: Json = False,
) -> None:
    """Re-draw a picture following a prompt (image to image)."""
    values = request_fields(locals())
    values |= {"init_image": str(init), "fix_crop": fix_crop or None}
    run_and_report(build_request(recall, values), settings_for(output_dir), image_format, as_json)


@app.command()
def inpaint(
    init: Annotated[Path, typer.Option("--init", "-i", help="The picture to change.")],
    prompt: Annotated[str | None, typer.Argument(help="What to draw in the masked area.")] = None,
    mask: Annotated[
        Path | None, typer.Option("--mask", help="White = repaint, black = keep; same size as --init.")
    ] = None,
    mask_box: Annotated[
        str | None, typer.Option("--mask-box", help="Mask a box instead: X,Y,WIDTH,HEIGHT in pixels.")
    ] = None,
    mask_scribble: Annotated[
        Path | None,
        typer.Option("--mask-scribble", help="Mask what white strokes on this picture cover (GrabCut)."),
    ] = None,
    mask_object: Annotated[
        str | None, typer.Option("--mask-from", help="Mask an object the detector finds, e.g. 'red circle'.")
    ] = None,
    grabcut: Annotated[
        bool, typer.Option("--mask-grabcut", help="Narrow --mask-box / --mask-from to the object's outline.")
    ] = False,
    soft: Annotated[
        bool, typer.Option("--soft", help="Soft inpainting: blend by the mask's grey levels.")
    ] = False,
    strength: Strength = None,
    mask_blur: Annotated[
        int | None, typer.Option("--mask-blur", help="Feather the mask by N pixels.")
    ] = None,
    invert_mask: Annotated[
        bool, typer.Option("--invert-mask", help="Repaint the black area instead.")
    ] = False,
    only_masked: Annotated[
        bool, typer.Option("--only-masked", help="Re-render just the masked area at full resolution.")
    ] = False,
    padding: Annotated[
        int | None, typer.Option("--padding", help="Context around the area (--only-masked).")
    ] = None,
    fill: Annotated[
        str | None,
        typer.Option("--fill", help="Masked content: original, fill, latent noise, latent nothing."),
    ] = None,
    negative: Negative = None,
    width: Width = None,
    height: Height = None,
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
    recall: Recall = None,
    image_format: Format = "png",
    output_dir: OutputDir = None,
    as_json: Json = False,
) -> None:
    """Repaint the masked part of a picture (a mask, or one made from a box, a scribble or an object)."""
    if recall is None and mask is None and mask_box is None and mask_scribble is None and mask_object is None:
        fail(
            "Say what to repaint: --mask FILE, --mask-box X,Y,W,H, --mask-scribble FILE or --mask-from 'red circle'."
        )
    values = request_fields(locals())
    values |= {
        "init_image": str(init),
        "mask": None if mask is None else str(mask),
        "mask_from": _mask_from(mask_box, mask_scribble, mask_object, grabcut),
        "soft_inpainting": {} if soft else None,
        "mask_blur": mask_blur,
        "mask_invert": invert_mask or None,
        "inpaint_only_masked": only_masked or None,
        "inpaint_only_masked_padding": padding,
        "masked_content": fill,
    }
    run_and_report(build_request(recall, values), settings_for(output_dir), image_format, as_json)


def _mask_from(
    box: str | None, scribble: Path | None, found: str | None, grabcut: bool
) -> dict[str, Any] | None:
    if box is None and scribble is None and found is None:
        return None
    source: dict[str, Any] = {"grabcut": grabcut}
    if box is not None:
        parts = box.replace(" ", "").split(",")
        if len(parts) != 4 or not all(part.isdigit() for part in parts):
            fail(f"--mask-box {box!r} is not X,Y,WIDTH,HEIGHT; e.g. --mask-box 32,32,40,40.")
        source["box"] = [int(part) for part in parts]
    if scribble is not None:
        source["scribble"] = str(scribble)
    if found is not None:
        source["object"] = found
    return source


_FIELDS = {
    "prompt": "prompt",
    "negative": "negative_prompt",
    "width": "width",
    "height": "height",
    "steps": "steps",
    "cfg": "cfg_scale",
    "sampler": "sampler",
    "schedule": "schedule_type",
    "seed": "seed",
    "variation_seed": "variation_seed",
    "variation_strength": "variation_strength",
    "batch_size": "batch_size",
    "batch_count": "batch_count",
    "clip_skip": "clip_skip",
    "strength": "denoising_strength",
    "model": "model",
    "vae": "vae",
    "nsfw_filter": "nsfw_filter",
}


_HIRES_FIELDS = {
    "hr_scale": "scale",
    "hr_upscaler": "upscaler",
    "hr_steps": "steps",
    "hr_denoise": "denoising_strength",
    "hr_resize_x": "resize_x",
    "hr_resize_y": "resize_y",
    "hr_sampler": "sampler",
    "hr_prompt": "prompt",
    "hr_negative": "negative_prompt",
}


def request_fields(values: dict[str, Any]) -> dict[str, Any]:
    return {field: values[option] for option, field in _FIELDS.items() if option in values}


def _mount() -> None:
    import sfumato.cli.analysis
    import sfumato.cli.canvas
    import sfumato.cli.edit
    import sfumato.cli.faces
    import sfumato.cli.xyz  # noqa: F401  (registers xyz on `app`)
    from sfumato.cli.archive import archive_app
    from sfumato.cli.blocklist import blocklist_app
    from sfumato.cli.config import config
    from sfumato.cli.embeddings import embeddings_app
    from sfumato.cli.info import info
    from sfumato.cli.models import models_app
    from sfumato.cli.prompt import prompt_app
    from sfumato.cli.serve import serve
    from sfumato.cli.studio import studio
    from sfumato.cli.train import train_app
    from sfumato.cli.video import video_app
    from sfumato.cli.worker import worker

    app.add_typer(archive_app, name="archive", help="Your pictures: list, search, show, rebuild the index.")
    app.add_typer(models_app, name="models")
    app.add_typer(blocklist_app, name="blocklist")
    app.add_typer(prompt_app, name="prompt")
    app.add_typer(train_app, name="train")
    app.add_typer(video_app, name="video")
    app.add_typer(embeddings_app, name="embeddings")
    app.command()(serve)
    app.command()(worker)
    app.command()(info)
    app.command()(config)
    app.command()(studio)


_mount()


def main() -> None:
    try:
        app()
    finally:
        # Exit without the collector's final walk over every object torch and diffusers made (up to
        # ~1.5 s here); files and the index are closed by then, and Python still flushes its streams.
        gc.freeze()
