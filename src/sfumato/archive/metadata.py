"""Reading the recipe inside a picture: Sfumato's own, or A1111's, ComfyUI's, InvokeAI's (2 and later),
NovelAI's, Fooocus's or SwarmUI's."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from PIL import ExifTags, Image, UnidentifiedImageError
from pydantic import ValidationError

from sfumato.archive import comfyui, foreign, invokeai
from sfumato.archive.files import MAKER_NOTE, SFUMATO_CHUNK, SFUMATO_PREFIX, USER_COMMENT
from sfumato.archive.infotext import format_infotext, format_number, parse_infotext, request_fields
from sfumato.core.errors import ImageReadError, InvalidRequest
from sfumato.core.images import MAX_PIXELS
from sfumato.core.request import GenerationRequest, describe_validation_error
from sfumato.core.result import ModelInfo
from sfumato.core.untrusted import UntrustedData, parse_json

if TYPE_CHECKING:
    from sfumato.prompts.networks import Resolver

Source = Literal["sfumato", "a1111", "comfyui", "invokeai", "novelai", "fooocus", "swarmui"]

# ComfyUI's animated WebP keeps its graphs in these IFD0 text tags, as "prompt:{...}".
_COMFYUI_EXIF_TAGS = (0x010F, 0x0110, 0x010E)
_KNOWN_CHUNKS = frozenset(
    {
        SFUMATO_CHUNK,
        "parameters",
        "prompt",
        "workflow",
        "invokeai_metadata",
        "sd-metadata",
        "Dream",
        "Comment",
    }
)


class NoRecipeInImage(InvalidRequest):
    """The picture carries no generation settings that Sfumato can read."""

    def __init__(self, path: Path) -> None:
        super().__init__(
            f"{path.name} holds no generation settings (no Sfumato, A1111, ComfyUI, InvokeAI, NovelAI, "
            "Fooocus or SwarmUI metadata).",
            "Pick a picture made by Sfumato or another Stable Diffusion tool, or give the settings as options.",
        )
        self.path = path


@dataclass(frozen=True)
class ImageMetadata:
    """What a picture says about how it was made. ``source`` is None when it says nothing."""

    source: Source | None
    width: int
    height: int
    prompt: str = ""
    negative_prompt: str = ""
    seed: int | None = None
    steps: int | None = None
    cfg_scale: float | None = None
    sampler: str | None = None  # as the tool wrote it
    model: str | None = None
    model_hash: str | None = None
    parameters: str = ""  # A1111 infotext: the picture's own, or a summary built from other formats
    params: dict[str, str] = field(default_factory=dict)  # the parsed parameters line
    request: GenerationRequest | None = None  # Sfumato's full recipe, when the picture has a valid one
    model_info: ModelInfo | None = None
    fields: dict[str, Any] = field(default_factory=dict)  # request fields found, not yet validated
    chunks: dict[str, str] = field(default_factory=dict)  # the raw metadata texts, by chunk name

    @property
    def has_recipe(self) -> bool:
        return self.source is not None


def decode_user_comment(value: bytes | str) -> str:
    """EXIF UserComment: an 8-byte charset prefix, then the text."""
    if isinstance(value, str):
        return value
    prefix, body = value[:8], value[8:]
    if prefix == b"UNICODE\0":
        # piexif (A1111) writes big-endian; writers that follow the file's byte order may not.
        big_endian = body[0::2].count(0) >= body[1::2].count(0)
        return body.decode("utf_16_be" if big_endian else "utf_16_le", errors="replace")
    if prefix == b"ASCII\0\0\0":
        return body.decode("ascii", errors="replace")
    return body.decode("utf-8", errors="replace").rstrip("\0")


def _exif_chunks(image: Image.Image) -> dict[str, str]:
    chunks: dict[str, str] = {}
    exif = image.getexif()
    ifd = exif.get_ifd(ExifTags.IFD.Exif)
    # Fooocus puts its UserComment in the main IFD rather than the Exif one.
    comment = ifd.get(USER_COMMENT, exif.get(USER_COMMENT))
    if isinstance(comment, (bytes, str)) and (text := decode_user_comment(comment).strip("\0")):
        chunks["parameters"] = text
    note = ifd.get(MAKER_NOTE)
    if isinstance(note, bytes) and note.startswith(SFUMATO_PREFIX):
        chunks[SFUMATO_CHUNK] = note[len(SFUMATO_PREFIX) :].decode("utf-8", errors="replace")
    for tag in _COMFYUI_EXIF_TAGS:
        value = exif.get(tag)
        if isinstance(value, str):
            key, _, data = value.partition(":")
            if key in ("prompt", "workflow") and data.startswith("{"):
                chunks.setdefault(key, data)
    return chunks


def read_chunks(image: Image.Image) -> dict[str, str]:
    """The metadata texts of an open picture: PNG text chunks, or what EXIF holds for JPEG/WebP."""
    if image.format == "PNG":
        # Text chunks before the pixels are in `info` without decoding; `text` decodes the whole
        # picture to find chunks written after them, so it is only asked when needed.
        chunks = {
            key: value for key, value in image.info.items() if isinstance(key, str) and isinstance(value, str)
        }
        if not _KNOWN_CHUNKS & chunks.keys():
            text: Mapping[str, Any] = getattr(image, "text", {})
            chunks.update({key: value for key, value in text.items() if isinstance(value, str)})
        return chunks
    return _exif_chunks(image)


def _from_sfumato(chunk: str) -> tuple[dict[str, Any], GenerationRequest | None, ModelInfo | None]:
    try:
        data = parse_json(chunk)
    except UntrustedData:
        return {}, None, None
    fields = data.get("request") if isinstance(data, dict) else None
    if not isinstance(fields, dict):
        return {}, None, None
    try:
        request: GenerationRequest | None = GenerationRequest.model_validate(fields)
    except ValidationError:
        request = None  # a newer Sfumato's recipe, say: recall falls back on the A1111 text
    model = data.get("model")
    names = {item.name for item in dataclasses.fields(ModelInfo)}
    info = ModelInfo(**{k: v for k, v in model.items() if k in names}) if isinstance(model, dict) else None
    return fields, request, info


def _summary(found: Mapping[str, Any], fields: Mapping[str, Any], size: tuple[int, int]) -> str:
    """An A1111-style text for pictures from tools that write another format, to show and search;
    sampler and schedule type by their A1111 names, as A1111 and its clients read them."""
    params = {
        "Steps": found.get("steps"),
        "Sampler": fields.get("sampler"),
        "Schedule type": fields.get("schedule_type") if fields.get("schedule_type") != "Automatic" else None,
        "CFG scale": format_number(found["cfg_scale"])
        if isinstance(found.get("cfg_scale"), (int, float))
        else None,
        "Seed": found.get("seed"),
        "Size": f"{found.get('width', size[0])}x{found.get('height', size[1])}",
        "Model hash": found.get("model_hash"),
        "Model": found.get("model"),
    }
    line = {key: str(value) for key, value in params.items() if value is not None}
    return format_infotext(str(found.get("prompt", "")), str(found.get("negative_prompt", "")), line)


def _int(value: Any) -> int | None:
    """A whole number a picture claims, or None when it is not one the index (SQLite, 64 bits) can hold."""
    try:
        number = int(value)
    except (TypeError, ValueError, OverflowError):
        return None
    return number if -(2**63) <= number < 2**63 else None


def _seed(value: Any) -> int | None:
    """A seed a picture claims: a whole number from 0 to 2**64 - 1 (ComfyUI's range), else None."""
    try:
        number = int(value)
    except (TypeError, ValueError, OverflowError):
        return None
    return number if 0 <= number < 2**64 else None


def _float(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


_Reader = tuple[
    Source, Callable[[dict[str, str]], dict[str, Any]], Callable[[dict[str, Any]], dict[str, Any]]
]

# Tools that write something else than infotext, each with its reader and mapping to request
# fields, in the order they are tried (a JSON `parameters` text is Fooocus's or SwarmUI's, never
# infotext; ComfyUI last, as other tools embed ComfyUI graphs beside their own settings).
_READERS: tuple[_Reader, ...] = (
    ("swarmui", lambda chunks: foreign.read_swarmui(chunks.get("parameters", "")), foreign.request_fields),
    ("fooocus", lambda chunks: foreign.read_fooocus(chunks.get("parameters", "")), foreign.request_fields),
    (
        "invokeai",
        lambda chunks: (
            invokeai.read_invokeai(chunks["invokeai_metadata"]) if "invokeai_metadata" in chunks else {}
        ),
        invokeai.request_fields,
    ),
    ("invokeai", foreign.read_invokeai2, foreign.request_fields),
    ("novelai", foreign.read_novelai, foreign.request_fields),
    ("comfyui", comfyui.read_comfyui, foreign.request_fields),
)


def _is_json_object(text: str) -> bool:
    """Fooocus and SwarmUI write JSON where A1111 writes its text; such a text is never infotext."""
    if not text.lstrip().startswith("{"):
        return False
    try:
        return isinstance(parse_json(text), dict)
    except UntrustedData:
        return False


def _foreign(
    chunks: dict[str, str],
) -> tuple[Source | None, dict[str, Any], Callable[[dict[str, Any]], dict[str, Any]]]:
    for source, read, to_fields in _READERS:
        if found := read(chunks):
            return source, found, to_fields
    return None, {}, foreign.request_fields


def metadata_from_chunks(chunks: dict[str, str], size: tuple[int, int]) -> ImageMetadata:
    width, height = size
    if SFUMATO_CHUNK in chunks:
        fields, request, info = _from_sfumato(chunks[SFUMATO_CHUNK])
        if fields:
            text = chunks.get("parameters", "")
            return ImageMetadata(
                "sfumato",
                width,
                height,
                prompt=str(fields.get("prompt", "")),
                negative_prompt=str(fields.get("negative_prompt", "")),
                seed=_seed(fields.get("seed")),
                steps=_int(fields.get("steps")),
                cfg_scale=_float(fields.get("cfg_scale")),
                sampler=fields.get("sampler"),
                model=info.name if info else fields.get("model"),
                model_hash=info.hash if info else None,
                parameters=text,
                params=parse_infotext(text) if text else {},
                request=request,
                model_info=info,
                fields=fields,
                chunks=chunks,
            )
    if "parameters" in chunks and not _is_json_object(chunks["parameters"]):
        params = parse_infotext(chunks["parameters"])
        return ImageMetadata(
            "a1111",
            width,
            height,
            prompt=params["Prompt"],
            negative_prompt=params["Negative prompt"],
            seed=_seed(params.get("Seed")),
            steps=_int(params.get("Steps")),
            cfg_scale=_float(params.get("CFG scale")),
            sampler=params.get("Sampler"),
            model=params.get("Model"),
            model_hash=params.get("Model hash"),
            parameters=chunks["parameters"],
            params=params,
            fields=request_fields(params),
            chunks=chunks,
        )
    source, found, to_fields = _foreign(chunks)
    if not found:
        return ImageMetadata(None, width, height, chunks=chunks)
    fields = to_fields(found)
    return ImageMetadata(
        source,
        width,
        height,
        prompt=str(found.get("prompt", "")),
        negative_prompt=str(found.get("negative_prompt", "")),
        seed=_seed(found.get("seed")),
        steps=_int(found.get("steps")),
        cfg_scale=_float(found.get("cfg_scale")),
        sampler=found.get("sampler"),
        model=found.get("model"),
        model_hash=found.get("model_hash"),
        parameters=_summary(found, fields, size),
        fields=fields,
        chunks=chunks,
    )


def read_metadata(path: Path | str) -> ImageMetadata:
    """What a PNG, JPEG or WebP file (or a ``data:`` URI of one) says about how it was made (never its pixels)."""
    if isinstance(path, str) and path.startswith("data:"):
        import io

        from sfumato.core.images import decode_data_uri

        with Image.open(io.BytesIO(decode_data_uri(path, "picture"))) as image:
            return metadata_from_chunks(read_chunks(image), image.size)
    path = Path(path)
    try:
        with Image.open(path) as image:
            return metadata_from_chunks(read_chunks(image), image.size)
    except FileNotFoundError:
        raise ImageReadError(f"{path} does not exist.", "Check the path.") from None
    except Image.DecompressionBombError:
        raise ImageReadError(
            f"{path.name} is too large to be a picture (its header claims over {MAX_PIXELS // 1_000_000} megapixels).",
            "Check that it is a picture made by Stable Diffusion, not a damaged or hostile file.",
        ) from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as error:
        raise ImageReadError(
            f"{path.name} could not be read as an image: {error}.",
            "Check that it is a complete PNG, JPEG or WebP file.",
        ) from None


def request_from_image(path: Path | str, overrides: Mapping[str, Any] | None = None) -> GenerationRequest:
    """The recipe a picture carries ("recall"), with ``overrides`` (request fields) applied on top.

    Sfumato's own JSON is preferred; otherwise the A1111 text, then ComfyUI's or InvokeAI's settings.
    """
    path = Path(path)
    metadata = read_metadata(path)
    if not metadata.has_recipe:
        raise NoRecipeInImage(path)
    if metadata.request is not None and not overrides:
        return metadata.request
    fields = dict(metadata.fields)
    if metadata.source == "sfumato" and metadata.request is None and metadata.parameters:
        fields = request_fields(metadata.params)
    try:
        return GenerationRequest.model_validate({**fields, **(overrides or {})})
    except ValidationError as error:
        raise InvalidRequest(
            f"The settings in {path.name} cannot be used: {describe_validation_error(error)}.",
            "Override them with options (for example --sampler Euler).",
        ) from None


def recall(
    path: Path | str, overrides: Mapping[str, Any] | None = None, resolve: Resolver | None = None
) -> tuple[GenerationRequest, list[str]]:
    """:func:`request_from_image`, with each ``<lora:…>`` the library lacks under the picture's name
    found by the hash the picture recorded (A1111's ``Lora hashes``), as A1111 does when pasting
    infotext. Returns the request and a note per renamed LoRA.
    """
    from sfumato.prompts.networks import default_resolver, rename_loras_by_hash

    request = request_from_image(path, overrides)
    hashes = read_metadata(path).params.get("Lora hashes", "")
    if not hashes or "<l" not in request.prompt + request.negative_prompt:
        return request, []
    resolve = resolve or default_resolver()
    prompt, notes = rename_loras_by_hash(request.prompt, hashes, resolve)
    negative, negative_notes = rename_loras_by_hash(request.negative_prompt, hashes, resolve)
    recalled = request.model_copy(update={"prompt": prompt, "negative_prompt": negative})
    return recalled, [*notes, *negative_notes]
