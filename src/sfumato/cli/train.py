"""`sfumato train …`: train the built-in demo model and export a run into a diffusers folder."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from sfumato.cli.console import print_json
from sfumato.training.demo_pink import DECODER_STEPS as PINK_DECODER_STEPS
from sfumato.training.demo_pink import STEPS as PINK_STEPS
from sfumato.training.demo_recipe import DECODER_STEPS, POOL_SIZE, UNET_STEPS, VAE_STEPS
from sfumato.training.upscaler_recipe import STEPS as UPSCALER_STEPS

train_app = typer.Typer(
    help="Train models: embeddings and LoRAs from your pictures, and the built-in demo model.",
    no_args_is_help=True,
)


@train_app.command("demo")
def train_demo_command(
    out: Annotated[Path, typer.Option(help="Run folder: checkpoints, logs. Run again to resume.")] = Path(
        "runs/demo"
    ),
    seed: Annotated[int, typer.Option(help="Seed for weights, data and noise.")] = 0,
    vae_steps: Annotated[int, typer.Option(help="Steps of the VAE stage.")] = VAE_STEPS,
    unet_steps: Annotated[int, typer.Option(help="Steps of the UNet stage.")] = UNET_STEPS,
    decoder_steps: Annotated[
        int, typer.Option(help="Steps of the final VAE-decoder stage (encoder frozen).")
    ] = DECODER_STEPS,
    pool: Annotated[int, typer.Option(help="Scenes rendered and encoded for the UNet stage.")] = POOL_SIZE,
    decoder_only: Annotated[
        bool,
        typer.Option(
            help="Only the decoder stage. It needs only the VAE stage, so on a machine with cores to "
            "spare run it beside the main command (started with --decoder-beside): same result, sooner. "
            "On 2 cores one process is faster."
        ),
    ] = False,
    decoder_beside: Annotated[
        bool, typer.Option(help="Leave the decoder stage to a `--decoder-only` run beside this one.")
    ] = False,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the run folder as JSON for scripts.")
    ] = False,
) -> None:
    """Train (or resume) the demo model from scratch on the synthetic shapes world.

    The defaults make the shipped model. A finished stage is skipped, an interrupted one resumes.
    """
    from sfumato.training.demo_recipe import DemoPlan, train_decoder, train_demo

    plan = DemoPlan(
        out=out,
        seed=seed,
        pool_size=pool,
        vae_steps=vae_steps,
        unet_steps=unet_steps,
        decoder_steps=decoder_steps,
    )
    if decoder_only:
        train_decoder(plan)
    else:
        train_demo(plan, decoder_beside=decoder_beside)
    if as_json:
        print_json({"run": str(out)})
        return
    typer.echo(f"Trained. Export it with: sfumato train export {out} <folder>")


@train_app.command("demo-pink")
def train_demo_pink_command(
    model: Annotated[Path, typer.Argument(help="An exported demo model folder (`sfumato train export`).")],
    run: Annotated[Path, typer.Option(help="Checkpoints and log. Run again to resume.")] = Path(
        "runs/demo-pink"
    ),
    to: Annotated[
        Path | None,
        typer.Option(help="Where to write the result; default: replace MODEL once it is written."),
    ] = None,
    steps: Annotated[int, typer.Option(help="Fine-tuning steps of the UNet.")] = PINK_STEPS,
    decoder_steps: Annotated[
        int, typer.Option(help="Fine-tuning steps of the VAE decoder.")
    ] = PINK_DECODER_STEPS,
    seed: Annotated[int, typer.Option(help="Seed for data and noise.")] = 0,
) -> None:
    """The demo model's last stage: its UNet learns pink from pictures captioned "rosa", never "pink".

    What a textual inversion needs to find pink from pictures; the shipped model went through it.
    """
    from sfumato.training.demo_pink import teach_pink

    typer.echo(f"Wrote {teach_pink(model, run, to, steps=steps, seed=seed, decoder_steps=decoder_steps)}")


@train_app.command("export")
def export_command(
    run: Annotated[Path, typer.Argument(help="A run folder written by `sfumato train demo`.")],
    folder: Annotated[Path, typer.Argument(help="Where to write the diffusers model folder.")],
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the model folder as JSON for scripts.")
    ] = False,
) -> None:
    """Export a demo run's newest checkpoints as a diffusers folder (fp16 safetensors) with a model card."""
    from sfumato.training.export import export_demo

    written = export_demo(run, folder)
    if as_json:
        print_json({"model": str(written)})
        return
    typer.echo(f"Exported the demo model to {written}")


@train_app.command("upscaler")
def train_upscaler_command(
    out: Annotated[Path, typer.Option(help="Run folder: checkpoints, logs. Run again to resume.")] = Path(
        "runs/upscaler"
    ),
    to: Annotated[Path, typer.Option(help="The .safetensors file to write when training is done.")] = Path(
        "runs/upscaler/2x-sfumato-demo.safetensors"
    ),
    seed: Annotated[int, typer.Option(help="Seed for weights and data.")] = 0,
    steps: Annotated[int, typer.Option(help="Training steps.")] = UPSCALER_STEPS,
) -> None:
    """Train (or resume) the built-in 2x upscaler on the demo world; the defaults make the shipped one."""
    import torch

    from sfumato.core.postprocess import UpscaleStep
    from sfumato.models.upscalers import load_upscaler
    from sfumato.postprocess.upscale import upscale_picture
    from sfumato.training.upscaler_recipe import UpscalerPlan, evaluate, export_upscaler, train_upscaler

    model = train_upscaler(UpscalerPlan(out=out, seed=seed, steps=steps))
    written = export_upscaler(model, to)
    typer.echo(f"Wrote {written}")
    loaded = load_upscaler(written, device=torch.device("cpu"), dtype=torch.float32)
    step = UpscaleStep(upscaler=written.stem, scale=2)
    scores = evaluate(lambda low: upscale_picture(low, step, max_side=4096, model=loaded))
    typer.echo("Held-out PSNR (dB): " + ", ".join(f"{name} {value:.2f}" for name, value in scores.items()))


@train_app.command("clip")
def train_clip_command(
    out: Annotated[Path, typer.Option(help="Run folder: checkpoints, logs. Run again to resume.")] = Path(
        "runs/clip"
    ),
    seed: Annotated[int, typer.Option(help="Seed for weights and data.")] = 0,
    steps: Annotated[int | None, typer.Option(help="Training steps (default: the shipped CLIP's).")] = None,
    time_limit: Annotated[
        float | None,
        typer.Option(help="Stop (with a checkpoint) after this many seconds; run again to go on."),
    ] = None,
) -> None:
    """Train (or resume) the demo CLIP: image and text towers, contrastive, on the shapes world."""
    from sfumato.training.clip_recipe import CLIP_STEPS, ClipPlan, train_clip

    train_clip(ClipPlan(out=out, seed=seed, steps=steps or CLIP_STEPS), time_limit_s=time_limit)
    typer.echo(f"Trained. Export it with: sfumato train export-clip {out} <folder>")


@train_app.command("export-clip")
def export_clip_command(
    run: Annotated[Path, typer.Argument(help="A run folder written by `sfumato train clip`.")],
    folder: Annotated[Path, typer.Argument(help="Where to write the transformers CLIP folder.")],
) -> None:
    """Export a CLIP run's newest checkpoint as a transformers CLIP folder (fp16 safetensors)."""
    from sfumato.training.clip_recipe import export_clip

    typer.echo(f"Exported the demo CLIP to {export_clip(run, folder)}")


def _mount_concepts() -> None:
    from sfumato.cli.train_concepts import embedding, lora

    train_app.command("embedding")(embedding)
    train_app.command("lora")(lora)


_mount_concepts()

if __name__ == "__main__":
    train_app()
