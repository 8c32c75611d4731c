"""`sfumato prompt …`: see how a prompt is understood."""

from __future__ import annotations

from typing import Annotated, Any

import typer

prompt_app = typer.Typer(help="Prompts: see how Sfumato (and A1111) read them.", no_args_is_help=True)


@prompt_app.callback()
def prompt_group() -> None:
    """Prompts: see how Sfumato (and A1111) read them."""


@prompt_app.command("explain")
def explain_command(
    prompt: Annotated[str, typer.Argument(help="A prompt in A1111 syntax.")],
    steps: Annotated[
        int, typer.Option("--steps", "-s", min=1, help="Steps of the run (for schedules).")
    ] = 20,
    as_json: Annotated[bool, typer.Option("--json", help="Print the explanation as JSON.")] = False,
) -> None:
    """Show the texts per step range, each run's weight, tokens per 75-token chunk, LoRAs and embeddings."""
    from sfumato.models.tokenizer import load_clip_tokenizer
    from sfumato.prompts.explain import explain_prompt
    from sfumato.prompts.networks import default_resolver

    report = explain_prompt(prompt, steps=steps, tokenizer=load_clip_tokenizer(), resolve=default_resolver())
    if as_json:
        from sfumato.cli.console import print_json

        print_json(report)
        return
    _show(report)


def _weight_style(weight: float) -> str:
    if weight < 0:
        return "bold magenta"
    if weight > 1:
        return "bold"
    return "dim" if weight < 1 else ""


def _show(report: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    out = Console(highlight=False)
    table = Table(title=f"{report['steps']} steps", show_lines=True)
    table.add_column("steps", no_wrap=True)
    table.add_column("AND", justify="right")
    table.add_column("text (weights)")
    table.add_column("tokens per chunk", no_wrap=True)
    for entry in report["schedule"]:
        span = (
            f"{entry['start'] + 1}–{entry['end']}" if entry["end"] - entry["start"] > 1 else f"{entry['end']}"
        )
        for index, part in enumerate(entry["parts"]):
            text = Text()
            for run in part["runs"]:
                if run.get("break"):
                    text.append(" BREAK ", style="reverse")
                elif run["weight"] == 1:
                    text.append(run["text"])
                else:
                    text.append(run["text"], style=_weight_style(run["weight"]))
                    text.append(f"×{run['weight']:.4g}", style="cyan")
            chunks = " | ".join(f"{count}/75" for count in part["chunk_tokens"])
            table.add_row(span if index == 0 else "", f"{part['weight']:g}", text, chunks)
    out.print(table)
    for lora in report["loras"]:
        mark = "[green]found[/]" if lora["found"] else "[red]not found[/]"
        out.print(
            f"LoRA {lora['name']}  text encoder ×{lora['text_encoder_weight']:g}  "
            f"UNet ×{lora['unet_weight']:g}  {mark}"
        )
    for embedding in report["embeddings"]:
        mark = "[green]found[/]" if embedding["found"] else "[red]not found[/]"
        out.print(f"Embedding {embedding['name']}  {mark}  {embedding.get('path') or ''}")
    for note in report["notes"]:
        out.print(f"[yellow]note:[/] {note}")
