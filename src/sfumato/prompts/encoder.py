"""Prompt text -> conditioning for SD1, SD2 and SDXL, the way A1111 reads prompts.

Tokens are cut into chunks of 75 (``BREAK`` starts a new one; a chunk that fills up moves the
words after its last comma, if that comma is near the end, to the next chunk), each chunk is
wrapped in BOS/EOS, padded to 77, encoded separately, weighted, and the chunks are concatenated,
so prompts have no length limit. SD2 needs nothing special: diffusers' SD2 text encoder already
ends at the penultimate layer. SDXL's refiner has only SDXL's second (OpenCLIP) encoder.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from sfumato.core.numerics import check_finite
from sfumato.prompts.conditioning import Conditioning, ScheduledParts, TextEmbedding, WeightedPart
from sfumato.prompts.parser import Run, parse_prompt

if TYPE_CHECKING:
    import torch

    from sfumato.models.components import Components
    from sfumato.models.embeddings import Embedding
    from sfumato.prompts.networks import Resolver

CHUNK_TOKENS = 75
COMMA_BACKTRACK = 20  # A1111's default "comma padding backtrack"
Emphasis = Literal["a1111", "comfy", "none"]


@dataclass
class Chunk:
    """Up to 75 tokens with weights; ``slots`` are embedding vectors placed at token offsets."""

    ids: list[int] = field(default_factory=list)
    weights: list[float] = field(default_factory=list)
    slots: list[tuple[int, int]] = field(default_factory=list)  # (offset, embedding index)


@dataclass(frozen=True)
class EmbeddingMatch:
    """Token ids that spell an embedding's name, and where its vectors are."""

    ids: tuple[int, ...]
    index: int
    tokens: int


def _tokenize(tokenizer: Any, text: str) -> list[int]:
    # verbose=False: prompts longer than 77 tokens are expected here, they are chunked.
    return list(tokenizer(text, add_special_tokens=False, truncation=False, verbose=False)["input_ids"])


def chunk_runs(
    tokenizer: Any,
    runs: Sequence[Run | tuple[str, float]],
    matches: Mapping[int, list[EmbeddingMatch]] | None = None,
) -> list[Chunk]:
    """Tokenise weighted runs of text into 75-token chunks, A1111's way."""
    comma = tokenizer.convert_tokens_to_ids(",</w>")
    chunks: list[Chunk] = []
    current = Chunk()
    last_comma = -1

    def close() -> None:
        nonlocal current, last_comma
        chunks.append(current)
        current = Chunk()
        last_comma = -1

    for run in runs:
        run = run if isinstance(run, Run) else Run(run[0], run[1])
        if run.is_break:
            close()
            continue
        ids = _tokenize(tokenizer, run.text)
        pos = 0
        while pos < len(ids):
            match = _match_at(ids, pos, matches or {})
            if match is not None:
                if len(current.ids) + match.tokens > CHUNK_TOKENS:
                    close()
                current.slots.append((len(current.ids), match.index))
                current.ids += [ids[pos]] * match.tokens
                current.weights += [run.weight] * match.tokens
                pos += len(match.ids)
                continue
            token = ids[pos]
            if len(current.ids) == CHUNK_TOKENS:
                near = last_comma >= 0 and CHUNK_TOKENS - last_comma <= COMMA_BACKTRACK
                if near and token != comma:
                    moved = _split_after(current, last_comma + 1)
                    close()
                    current = moved
                else:
                    close()
            if token == comma:
                last_comma = len(current.ids)
            current.ids.append(token)
            current.weights.append(run.weight)
            pos += 1
    if current.ids or not chunks:
        close()
    return chunks


def _split_after(chunk: Chunk, at: int) -> Chunk:
    moved = Chunk(chunk.ids[at:], chunk.weights[at:], [(o - at, i) for o, i in chunk.slots if o >= at])
    del chunk.ids[at:], chunk.weights[at:]
    chunk.slots[:] = [(o, i) for o, i in chunk.slots if o < at]
    return moved


def _match_at(ids: list[int], pos: int, matches: Mapping[int, list[EmbeddingMatch]]) -> EmbeddingMatch | None:
    for match in matches.get(ids[pos], ()):
        if tuple(ids[pos : pos + len(match.ids)]) == match.ids:
            return match
    return None


def _text_model(encoder: Any) -> Any:
    # CLIPTextModelWithProjection wraps the transformer in .text_model; CLIPTextModel (transformers 5) is flat.
    return getattr(encoder, "text_model", encoder)


@contextmanager
def _injected(encoder: Any, slots: list[tuple[int, torch.Tensor]]) -> Iterator[None]:
    """Put embedding vectors in place of token embeddings while the encoder runs (a forward hook)."""
    if not slots:
        yield
        return
    table = _text_model(encoder).embeddings.token_embedding

    def replace(module: Any, args: Any, output: torch.Tensor) -> torch.Tensor:
        output = output.clone()
        for offset, vectors in slots:
            output[0, offset : offset + vectors.shape[0]] = vectors.to(output)
        return output

    handle = table.register_forward_hook(replace)
    try:
        yield
    finally:
        handle.remove()


@dataclass
class _Encoder:
    """One CLIP text encoder and how to read it."""

    model: Any
    tokenizer: Any
    layer: int
    final_norm: bool
    vectors: list[torch.Tensor | None]  # embedding vectors for this encoder, by embedding index
    emphasis: Emphasis
    empty: torch.Tensor | None = None
    notes: list[str] = field(default_factory=list)  # what the user should know about this encoding

    def row(self, chunk: Chunk) -> tuple[list[int], list[float]]:
        bos, eos = self.tokenizer.bos_token_id, self.tokenizer.eos_token_id
        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else eos
        missing = CHUNK_TOKENS - len(chunk.ids)
        return [bos, *chunk.ids, eos] + [pad] * missing, [1.0, *chunk.weights, 1.0] + [1.0] * missing

    def run(self, chunk: Chunk) -> tuple[torch.Tensor, torch.Tensor | None]:
        import torch

        ids, _ = self.row(chunk)
        slots = [(offset + 1, v) for offset, index in chunk.slots if (v := self.vectors[index]) is not None]
        neutral = [(offset + 1, index) for offset, index in chunk.slots if self.vectors[index] is None]
        if neutral:
            mean = _text_model(self.model).embeddings.token_embedding.weight.mean(0, keepdim=True)
            slots += [(offset, mean) for offset, _ in neutral]
        with _injected(self.model, slots):
            out = self.model(
                input_ids=torch.tensor([ids], device=self.model.device), output_hidden_states=True
            )
        hidden = out.hidden_states[self.layer]
        if self.final_norm:
            hidden = _text_model(self.model).final_layer_norm(hidden)
        return hidden, getattr(out, "text_embeds", None)

    def encode(self, chunks: Sequence[Chunk]) -> tuple[torch.Tensor, torch.Tensor | None]:
        import torch

        outputs: list[torch.Tensor] = []
        pooled: torch.Tensor | None = None
        for index, chunk in enumerate(chunks):
            hidden, chunk_pooled = self.run(chunk)
            weights = torch.tensor(self.row(chunk)[1], device=hidden.device, dtype=hidden.dtype)
            outputs.append(self.weigh(hidden, weights))
            if index == 0:
                pooled = chunk_pooled
        return torch.cat(outputs, dim=1), pooled

    def weigh(self, hidden: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        if bool((weights == 1.0).all()):
            return hidden
        if self.emphasis == "comfy":
            if self.empty is None:
                self.empty = self.run(Chunk())[0]
            return comfy_weights(hidden, weights, self.empty)
        if self.emphasis == "none":
            return hidden * weights.reshape(1, -1, 1)
        weighted, restored = apply_weights(hidden, weights)
        if not restored and MEAN_NOT_RESTORED_NOTE not in self.notes:
            self.notes.append(MEAN_NOT_RESTORED_NOTE)
        return weighted


# Below this size relative to the chunk's mean magnitude, a chunk's mean is rounding noise: dividing
# by it gives NaN (0/0) or amplifies the conditioning wildly, depending on how a CPU sums.
MEAN_RESTORE_TOLERANCE = 1e-3
MEAN_NOT_RESTORED_NOTE = (
    "Emphasis: the text encoder's output averages to (almost) zero, so A1111's mean restoration was "
    "skipped; the weights were applied as plain multipliers."
)


def apply_weights(hidden: torch.Tensor, weights: torch.Tensor) -> tuple[torch.Tensor, bool]:
    """A1111's emphasis: scale each token's hidden state, then restore the chunk's original mean.

    Where either mean is too close to zero for the ratio to mean anything, the restoration is
    skipped (the weights stay plain multipliers) and the second value is False.
    """
    import torch

    original_mean = hidden.mean()
    scaled = hidden * weights.reshape(1, -1, 1)
    new_mean = scaled.mean()
    floor = MEAN_RESTORE_TOLERANCE * float(hidden.abs().mean())
    factor = original_mean / new_mean
    if min(abs(float(original_mean)), abs(float(new_mean))) <= floor or not bool(torch.isfinite(factor)):
        return scaled, False
    return scaled * factor, True


def comfy_weights(hidden: torch.Tensor, weights: torch.Tensor, empty: torch.Tensor) -> torch.Tensor:
    """ComfyUI's emphasis: move each token away from (or towards) the empty prompt's encoding."""
    return empty + (hidden - empty) * weights.reshape(1, -1, 1)


def _encoders(
    components: Components,
    clip_skip: int,
    vectors: Sequence[Sequence[torch.Tensor | None]],
    emphasis: Emphasis,
) -> list[_Encoder]:
    per_encoder = [[v[i] if i < len(v) else None for v in vectors] for i in range(2)]
    if components.is_refiner:
        # SDXL's refiner reads its one (OpenCLIP) encoder as SDXL reads its second one.
        return [_Encoder(components.text_encoder, components.tokenizer, -2, False, per_encoder[0], emphasis)]
    if components.text_encoder_2 is None:
        return [
            _Encoder(
                components.text_encoder,
                components.tokenizer,
                -max(clip_skip, 1),
                True,
                per_encoder[0],
                emphasis,
            )
        ]
    # SDXL reads both encoders' penultimate layer without the final norm (A1111 ignores clip skip here).
    tokenizer_2 = components.tokenizer_2 or components.tokenizer
    return [
        _Encoder(components.text_encoder, components.tokenizer, -2, False, per_encoder[0], emphasis),
        _Encoder(components.text_encoder_2, tokenizer_2, -2, False, per_encoder[1], emphasis),
    ]


def encode_runs(
    components: Components,
    runs: Sequence[Run | tuple[str, float]],
    *,
    clip_skip: int = 1,
    emphasis: Emphasis = "a1111",
    embeddings: Sequence[tuple[Sequence[int], Sequence[torch.Tensor | None]]] = (),
) -> TextEmbedding:
    """One text, as weighted runs, encoded for the model's text encoder(s).

    ``embeddings``: (token ids of the name, vectors per encoder) for each embedding to use.
    """
    import torch

    matches: dict[int, list[EmbeddingMatch]] = {}
    for index, (ids, vectors) in enumerate(embeddings):
        tokens = next(v for v in vectors if v is not None).shape[0]
        matches.setdefault(ids[0], []).append(EmbeddingMatch(tuple(ids), index, tokens))
    for found in matches.values():
        found.sort(key=lambda match: -len(match.ids))
    encoders = _encoders(components, clip_skip, [v for _, v in embeddings], emphasis)
    with torch.no_grad():
        chunks = chunk_runs(components.tokenizer, runs, matches)
        outputs = [encoder.encode(chunks) for encoder in encoders]
    notes = tuple(dict.fromkeys(note for encoder in encoders for note in encoder.notes))
    if len(outputs) == 1:
        hidden, pooled = outputs[0][0], outputs[0][1] if components.is_refiner else None
    else:
        hidden, pooled = torch.cat([outputs[0][0], outputs[1][0]], dim=-1), outputs[1][1]
    check_finite(hidden, "the text encoder", components.info.name)
    return TextEmbedding(hidden=hidden, pooled=pooled, notes=notes)


def encode_text(
    components: Components, runs: Sequence[tuple[str, float]], *, clip_skip: int = 1
) -> TextEmbedding:
    return encode_runs(components, runs, clip_skip=clip_skip)


def _load_embeddings(
    components: Components,
    texts: list[str],
    resolve: Resolver,
    sd1_on_sdxl: bool,
    given: Mapping[str, Embedding] | None,
) -> tuple[list[tuple[list[int], list[torch.Tensor | None]]], list[str], list[Embedding]]:
    from sfumato.core.errors import SfumatoError
    from sfumato.models.embeddings import load_embedding, vectors_for
    from sfumato.prompts.networks import candidate_words

    found: list[tuple[list[int], list[torch.Tensor | None]]] = []
    notes: list[str] = []
    used: list[Embedding] = []
    for word in candidate_words(texts):
        embedding = (given or {}).get(word)
        if embedding is None:
            path = resolve("embedding", word)
            if path is None:
                continue
            try:
                embedding = load_embedding(path, word)
            except SfumatoError as error:
                notes.append(f"Embedding '{word}' could not be used: {error}")
                continue
        vectors, why = vectors_for(embedding, components, sd1_on_sdxl=sd1_on_sdxl)
        if vectors is None:
            notes.append(why or f"Embedding '{word}' was skipped.")
            continue
        ids = _tokenize(components.tokenizer, word)
        if ids:
            found.append((ids, vectors))
            used.append(embedding)
    return found, notes, used


def encode_prompt(
    components: Components,
    prompt: str,
    *,
    steps: int,
    clip_skip: int = 1,
    emphasis: Emphasis = "a1111",
    resolve: Resolver | None = None,
    embeddings: Mapping[str, Embedding] | None = None,
    sd1_embeddings_on_sdxl: bool = False,
) -> Conditioning:
    """Encode ``prompt`` for a run of ``steps`` steps: a schedule of AND-parts, same texts encoded once.

    ``embeddings`` (name -> Embedding) are used by name; other names are looked up with
    ``resolve`` (default: the configured model folders). Anything skipped is in ``notes``.
    """
    from sfumato.prompts.networks import default_resolver

    parsed = parse_prompt(prompt, steps)
    texts = [part.text for entry in parsed.schedule for part in entry.parts]
    found, embedding_notes, used = _load_embeddings(
        components, texts, resolve or default_resolver(), sd1_embeddings_on_sdxl, embeddings
    )
    notes = [note for note in parsed.notes if "networks are not supported" not in note] + embedding_notes
    if components.is_sdxl and clip_skip > 1:
        notes.append("Clip skip has no effect on SDXL models (as in A1111).")
    cache: dict[tuple[Run, ...], TextEmbedding] = {}
    schedule: list[ScheduledParts] = []
    for entry in parsed.schedule:
        parts: list[WeightedPart] = []
        for part in entry.parts:
            if part.runs not in cache:
                cache[part.runs] = encode_runs(
                    components, part.runs, clip_skip=clip_skip, emphasis=emphasis, embeddings=found
                )
            parts.append(WeightedPart(cache[part.runs], part.weight))
        schedule.append(ScheduledParts(entry.start, entry.end, tuple(parts)))
    notes += [note for encoded in cache.values() for note in encoded.notes if note not in notes]
    empty = encode_runs(components, [], clip_skip=clip_skip)
    hashes = tuple((embedding.name, embedding.hash) for embedding in used if embedding.hash)
    return Conditioning(schedule=tuple(schedule), notes=tuple(notes), padding=empty, embedding_hashes=hashes)
