"""`sfumato video keyframes`: stylise a clip's keyframes into an EbSynth project folder."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from sfumato.cli.console import console, print_json
from sfumato.cli.main import (
    Cfg,
    Height,
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
    Width,
    request_fields,
    settings_for,
)

video_app = typer.Typer(no_args_is_help=True, help="Video: stylised keyframes for EbSynth.")


@video_app.command()
def keyframes(
    video: Annotated[Path, typer.Argument(help="A video file, or a folder of frames in name order.")],
    prompt: Annotated[str, typer.Option("--prompt", "-p", help="What every keyframe becomes.")],
    every: Annotated[
        int | None, typer.Option("--every", help="A keyframe every N frames (1, 1+N, …).")
    ] = None,
    frames: Annotated[
        str | None, typer.Option("--keyframes", help="These frames as keyframes, e.g. 1,25,50 (from 1).")
    ] = None,
    scene_changes: Annotated[
        bool, typer.Option("--scene-changes", help="A keyframe at the first frame and each scene change.")
    ] = False,
    scene_threshold: Annotated[
        float, typer.Option("--scene-threshold", help="Mean grey change (0-1) that counts as a new scene.")
    ] = 0.12,
    frozen_noise: Annotated[
        bool,
        typer.Option(
            "--frozen-noise/--per-frame-noise",
            help="The same starting and encode noise for every keyframe (steadier), or seed + k for keyframe k.",
        ),
    ] = False,
    per_position: Annotated[
        bool,
        typer.Option(
            "--noise-per-position", help="Anchor the noise to positions (frames of different sizes)."
        ),
    ] = False,
    fps: Annotated[float | None, typer.Option("--fps", help="Frame rate of a folder of frames (24).")] = None,
    out: Annotated[
        Path | None, typer.Option("--out", help="The project folder to make (default: outputs/ebsynth/…).")
    ] = None,
    negative: Negative = None,
    width: Width = None,
    height: Height = None,
    steps: Steps = None,
    cfg: Cfg = None,
    sampler: Sampler = None,
    schedule: Schedule = None,
    seed: Seed = None,
    strength: Strength = None,
    model: Model = None,
    vae: Vae = None,
    output_dir: OutputDir = None,
    as_json: Json = False,
) -> None:
    """Stylise the keyframes of VIDEO with one prompt and seed; write an EbSynth project and a preview."""
    from sfumato.archive.video import open_clip
    from sfumato.core.request import parse_request
    from sfumato.engine.keyframes import KeyframeChoice, parse_frame_list
    from sfumato.jobs.video_keyframes import default_folder, describe_consistency, run_keyframes

    fields = {key: value for key, value in request_fields(locals()).items() if value is not None}
    fields |= {"frozen_noise": frozen_noise, "noise_per_position": per_position}
    if seed is None:
        fields["seed"] = -1
    request = parse_request(fields)
    choice = KeyframeChoice(
        every=every,
        frames=parse_frame_list(frames) if frames is not None else (),
        scene_changes=scene_changes,
        scene_threshold=scene_threshold,
    )
    clip = open_clip(video, fps)
    settings = settings_for(output_dir)
    folder = out if out is not None else default_folder(settings, video)

    def on_keyframe(done: int, total: int) -> None:
        if not as_json and done < total:
            console.print(f"keyframe {done + 1}/{total}")

    result = run_keyframes(settings, clip, choice, request, folder, on_keyframe=on_keyframe)
    for note in result.notes:
        console.print(f"[yellow]note:[/] {note}")
    if as_json:
        print_json(
            {
                "folder": str(result.folder),
                "keyframes": result.keyframes,
                "consistency": result.consistency,
                "pictures": [str(p) for p in result.pictures],
                "notes": result.notes,
            }
        )
        return
    typer.echo(str(result.folder))
    console.print(
        f"[green]{len(result.keyframes)} keyframe(s)[/] stylised for EbSynth; "
        f"consistency (stylised change / source change): {describe_consistency(result.consistency)}"
    )
