"""`sfumato train embedding|lora`: teach a model a concept from a folder of pictures.

The result is written in A1111's format into the library's embeddings or Lora folder, so the next
`sfumato generate "a <name> circle"` or `<lora:name:1>` uses it. Ctrl-C stops at the next step with
a checkpoint; the same command run again resumes there.
"""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Annotated, Any

import typer

from sfumato.cli.console import console, fail, print_json

Images = Annotated[Path, typer.Option("--images", help="Folder of pictures (.txt captions beside them).")]
Name = Annotated[str, typer.Option("--name", help="File name and prompt word of the result.")]
Model = Annotated[str | None, typer.Option("--model", help="Model to train on (default: the settings').")]
Steps = Annotated[int, typer.Option("--steps", help="Training steps.")]
LearningRate = Annotated[float | None, typer.Option("--lr", help="Learning rate (default per kind).")]
Batch = Annotated[int, typer.Option("--batch", help="Pictures per step.")]
Seed = Annotated[int, typer.Option("--seed", help="Seed for batches, noise and samples.")]
Size = Annotated[int | None, typer.Option("--size", help="Training side in pixels (default: native).")]
Flip = Annotated[bool, typer.Option("--flip", help="Add a mirrored copy of each picture.")]
SampleEvery = Annotated[int, typer.Option("--sample-every", help="Steps between sample pictures; 0 = none.")]
SamplePrompt = Annotated[str | None, typer.Option("--sample-prompt", help="Prompt for the samples.")]
CheckpointEvery = Annotated[int, typer.Option("--checkpoint-every", help="Steps between checkpoints.")]
Overwrite = Annotated[bool, typer.Option("--overwrite", help="Replace an existing file of this name.")]
Checkpointing = Annotated[
    bool, typer.Option("--gradient-checkpointing", help="Less memory, slower: recompute activations.")
]
Precision = Annotated[str, typer.Option("--mixed-precision", help="no, bf16 or fp16 for the frozen model.")]
CacheLatents = Annotated[
    bool, typer.Option("--cache-latents/--no-cache-latents", help="Encode the pictures once (less work).")
]
MemoryLimit = Annotated[
    int | None, typer.Option("--memory-limit-mb", help="Refuse when the estimate exceeds this many MiB.")
]
DryRun = Annotated[
    bool, typer.Option("--dry-run", help="Prepare and show the pictures, captions and memory; train nothing.")
]
Json = Annotated[bool, typer.Option("--json", help="Print the result as JSON.")]


def embedding(
    images: Images,
    name: Name,
    init_text: Annotated[str, typer.Option("--init-text", help="Words the new word starts from.")] = "*",
    vectors: Annotated[int, typer.Option("--vectors", help="Vectors per token.")] = 1,
    model: Model = None,
    steps: Steps = 500,
    lr: LearningRate = None,
    batch: Batch = 4,
    seed: Seed = 0,
    size: Size = None,
    flip: Flip = False,
    sample_every: SampleEvery = 0,
    sample_prompt: SamplePrompt = None,
    checkpoint_every: CheckpointEvery = 50,
    overwrite: Overwrite = False,
    gradient_checkpointing: Checkpointing = False,
    mixed_precision: Precision = "no",
    cache_latents: CacheLatents = True,
    memory_limit_mb: MemoryLimit = None,
    dry_run: DryRun = False,
    as_json: Json = False,
) -> None:
    """Textual inversion: learn a new word NAME from the pictures; prompts then say "a NAME circle"."""
    fields = dict(locals())
    _train("embedding", fields)


def lora(
    images: Images,
    name: Name,
    trigger: Annotated[
        str | None, typer.Option("--trigger", help="A word put into every caption (kohya's trigger word).")
    ] = None,
    rank: Annotated[int, typer.Option("--rank", help="Adapter rank.")] = 4,
    alpha: Annotated[float | None, typer.Option("--alpha", help="Alpha (default: the rank).")] = None,
    model: Model = None,
    steps: Steps = 500,
    lr: LearningRate = None,
    batch: Batch = 4,
    seed: Seed = 0,
    size: Size = None,
    flip: Flip = False,
    sample_every: SampleEvery = 0,
    sample_prompt: SamplePrompt = None,
    checkpoint_every: CheckpointEvery = 50,
    overwrite: Overwrite = False,
    gradient_checkpointing: Checkpointing = False,
    mixed_precision: Precision = "no",
    cache_latents: CacheLatents = True,
    memory_limit_mb: MemoryLimit = None,
    dry_run: DryRun = False,
    as_json: Json = False,
) -> None:
    """LoRA: learn adapters from the pictures; prompts then add <lora:NAME:1>."""
    fields = dict(locals())
    _train("lora", fields)


def _train(kind: str, fields: dict[str, Any]) -> None:
    from sfumato.core.errors import Cancelled
    from sfumato.core.events import CancelToken
    from sfumato.core.settings import Settings
    from sfumato.core.training_request import parse_training_request
    from sfumato.jobs.training import run_training

    dry_run, as_json = fields.pop("dry_run"), fields.pop("as_json")
    fields["images"] = str(fields["images"])
    fields["learning_rate"] = fields.pop("lr")
    request = parse_training_request({"kind": kind, **fields})
    settings = Settings()
    say = (lambda _: None) if as_json else (lambda text: console.print(text, soft_wrap=True))
    if dry_run:
        _dry_run(settings, request, as_json)
        return
    cancel = CancelToken()

    def stop(*_: object) -> None:
        if cancel.cancelled:
            raise KeyboardInterrupt
        cancel.cancel()
        say("Stopping after this step (a checkpoint is kept; run the same command again to resume)…")

    previous = signal.signal(signal.SIGINT, stop)
    try:
        outcome = run_training(settings, request, cancel=cancel, echo=say)
    except Cancelled:
        fail("Stopped; nothing was written to the library. Run the same command again to resume.", 130)
    finally:
        signal.signal(signal.SIGINT, previous)
    if as_json:
        print_json(
            {
                "path": str(outcome.path),
                "steps": outcome.steps,
                "loss": outcome.last_loss,
                "resumed_from": outcome.resumed_from,
                "samples": [str(p) for p in outcome.samples],
                "notes": list(outcome.notes),
            }
        )
        return
    use = f"a {request.name} …" if kind == "embedding" else f"<lora:{request.name}:1>"
    typer.echo(f"Wrote {outcome.path} (step {outcome.steps}, loss {outcome.last_loss:.4f}). Use it: {use}")
    if outcome.samples:
        typer.echo(f"Samples: {outcome.samples[0].parent}")


def _dry_run(settings: Any, request: Any, as_json: bool) -> None:
    from sfumato.jobs.training import memory_estimate, prepare, run_folder, trainable_parameters
    from sfumato.models.loading import load_model
    from sfumato.training.dataset import write_preview

    components = load_model(settings, request.model)
    prepared = prepare(settings, request, components)
    out = run_folder(settings, request) / "prepared"
    written = write_preview(prepared, out)
    estimate = memory_estimate(request, components, trainable_parameters(request, components))
    if as_json:
        print_json(
            {
                "prepared": str(out),
                "pictures": [
                    {
                        "file": str(f),
                        "source": str(p.source),
                        "caption": p.example.caption,
                        "from": p.caption_from,
                    }
                    for f, p in zip(written, prepared.pictures, strict=True)
                ],
                "memory_bytes": estimate.total,
                "notes": prepared.notes,
            }
        )
        return
    for item in prepared.pictures:
        flipped = " (mirrored)" if item.flipped else ""
        typer.echo(f"{item.source.name}{flipped}: {item.example.caption}  [{item.caption_from}]")
    for note in prepared.notes:
        console.print(f"[yellow]note:[/] {note}")
    typer.echo(estimate.describe())
    typer.echo(f"Prepared pictures and captions: {out}")
