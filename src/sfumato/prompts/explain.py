"""How a prompt is understood, as plain data: for `sfumato prompt explain` and the app's weight editor."""

from __future__ import annotations

from typing import Any

from sfumato.prompts.encoder import EmbeddingMatch, chunk_runs
from sfumato.prompts.networks import Resolver, candidate_words
from sfumato.prompts.parser import parse_prompt


def explain_prompt(prompt: str, *, steps: int, tokenizer: Any, resolve: Resolver) -> dict[str, Any]:
    """The schedule (texts, runs with weights, tokens per 75-token chunk), LoRAs and embeddings."""
    from sfumato.core.errors import SfumatoError
    from sfumato.models.embeddings import load_embedding

    parsed = parse_prompt(prompt, steps)
    notes = list(parsed.notes)
    texts = [part.text for entry in parsed.schedule for part in entry.parts]
    embeddings: list[dict[str, Any]] = []
    matches: dict[int, list[EmbeddingMatch]] = {}
    for word in candidate_words(texts):
        path = resolve("embedding", word)
        if path is None:
            if any(f"embedding:{word}" in text for text in texts):
                embeddings.append({"name": word, "found": False, "path": None})
                notes.append(
                    f"Embedding '{word}' is not in any model folder (A1111 writes embeddings by bare name)."
                )
            continue
        entry: dict[str, Any] = {"name": word, "found": True, "path": str(path)}
        try:
            embedding = load_embedding(path, word)
            entry |= {
                "tokens": embedding.tokens,
                "architecture": embedding.architecture,
                "hash": embedding.hash,
            }
            ids = tokenizer(word, add_special_tokens=False, verbose=False)["input_ids"]
            matches.setdefault(ids[0], []).append(
                EmbeddingMatch(tuple(ids), len(embeddings), embedding.tokens)
            )
        except SfumatoError as error:
            entry |= {"error": str(error)}
        embeddings.append(entry)
    loras = []
    for network in parsed.networks:
        if network.kind != "lora":
            continue
        path = resolve("lora", network.name)
        loras.append(
            {
                "name": network.name,
                "text_encoder_weight": network.text_encoder_weight,
                "unet_weight": network.unet_weight,
                "found": path is not None,
                "path": str(path) if path else None,
            }
        )
        if path is None:
            notes.append(f"LoRA '{network.name}' is not in any model folder.")
    schedule = []
    for step_range in parsed.schedule:
        parts = []
        for part in step_range.parts:
            chunks = chunk_runs(tokenizer, part.runs, matches)
            parts.append(
                {
                    "text": part.text,
                    "weight": part.weight,
                    "runs": [
                        {"break": True}
                        if run.is_break
                        else {"text": run.text, "weight": round(run.weight, 6)}
                        for run in part.runs
                    ],
                    "chunk_tokens": [len(chunk.ids) for chunk in chunks],
                }
            )
        schedule.append({"start": step_range.start, "end": step_range.end, "parts": parts})
    return {
        "prompt": prompt,
        "steps": parsed.steps,
        "schedule": schedule,
        "loras": loras,
        "embeddings": embeddings,
        "notes": notes,
    }
