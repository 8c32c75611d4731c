"""Writing a picture with its recipe, atomically, under a name that never overwrites another.

Where the recipe goes:

- PNG: a text chunk ``parameters`` (A1111's infotext, what every tool reads) and a compressed
  text chunk ``sfumato`` holding JSON ``{"version", "request", "model", "extra"}``.
- JPEG and WebP: EXIF ``UserComment`` holds the infotext as A1111 writes it (``b"UNICODE\\0"``
  then UTF-16 big-endian, like ``piexif.helper.UserComment.dump(text, encoding="unicode")``), and
  EXIF ``MakerNote`` holds ``b"sfumato\\0"`` then the same JSON in UTF-8. JPEG keeps EXIF under
  64 KiB, so when the JSON would not fit there, the init image and mask (``data:`` URIs) are left
  out of it and listed under ``"omitted"``.

A file appears under its final name only complete: it is written to a hidden temp file in the
same folder, flushed to disk, then linked (or renamed) into place; on any error the temp file is
removed and OutputError says what to do.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import io
import json
import os
import re
import secrets
import unicodedata
from pathlib import Path
from typing import IO, Any

import piexif
from PIL import Image
from PIL.PngImagePlugin import PngInfo

from sfumato import __version__
from sfumato.archive.infotext import infotext
from sfumato.core.errors import OutputError
from sfumato.core.images import ImageFormat
from sfumato.core.result import GeneratedImage

EXTENSIONS: dict[str, str] = {"png": ".png", "jpeg": ".jpg", "webp": ".webp"}
IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".webp"})

SFUMATO_CHUNK = "sfumato"
XYZ_CHUNK = "sfumato-xyz"
USER_COMMENT = 0x9286
MAKER_NOTE = 0x927C
UNICODE_PREFIX = b"UNICODE\0"
SFUMATO_PREFIX = b"sfumato\0"
TEMP_PREFIX = ".sfumato-"
TEMP_SUFFIX = ".tmp"
QUALITY = 95
_NUMBERED = re.compile(r"^(\d+)-")
_OUTPUT_DIR_HINT = "Choose another output folder (SFUMATO_OUTPUT_DIR or output_dir in the config file)"


def recipe_json(item: GeneratedImage, *, omit_images: bool = False) -> str:
    request = item.recipe.model_dump(mode="json")
    payload: dict[str, Any] = {
        "version": __version__,
        "request": request,
        "model": dataclasses.asdict(item.model),
        "extra": dict(item.extra),
    }
    if omit_images:
        omitted = [key for key in ("init_image", "mask") if request.get(key)]
        for key in omitted:
            request[key] = None
        payload["omitted"] = omitted
    return json.dumps(payload, ensure_ascii=True, separators=(",", ":"))


def image_infotext(item: GeneratedImage) -> str:
    return infotext(item.recipe, item.model, item.extra, size=item.image.size)


def user_comment(text: str) -> bytes:
    return UNICODE_PREFIX + text.encode("utf_16_be")


def _exif(text: str, recipe: str) -> bytes:
    # piexif, as A1111 writes: UserComment and MakerNote are of EXIF type UNDEFINED. Pillow would
    # write these unknown tags as BYTE, which A1111's reader (piexif) returns as a tuple and fails on.
    return piexif.dump(
        {"Exif": {USER_COMMENT: user_comment(text), MAKER_NOTE: SFUMATO_PREFIX + recipe.encode()}}
    )


def encode(item: GeneratedImage, format: ImageFormat = "png") -> bytes:
    """The file's bytes, recipe included. Raises OutputError when the recipe cannot be stored."""
    text = image_infotext(item)
    buffer = io.BytesIO()
    image = item.image
    if format == "png":
        info = PngInfo()
        info.add_text("parameters", text)
        info.add_text(SFUMATO_CHUNK, recipe_json(item), zip=True)
        image.save(buffer, format="PNG", pnginfo=info)
        return buffer.getvalue()
    if format not in EXTENSIONS:
        raise OutputError(f"Unknown image format {format!r}.", "Use png, jpeg or webp.")
    if format == "jpeg" and image.mode not in ("RGB", "L"):
        image = image.convert("RGB")
    pillow_format = "JPEG" if format == "jpeg" else "WEBP"
    for omit_images in (False, True):
        try:
            image.save(
                buffer,
                format=pillow_format,
                quality=QUALITY,
                exif=_exif(text, recipe_json(item, omit_images=omit_images)),
            )
            return buffer.getvalue()
        except ValueError:  # Pillow: "EXIF data is too long" (JPEG's 64 KiB segment)
            buffer = io.BytesIO()
    raise OutputError(
        "The picture's recipe is too long to fit in a JPEG's metadata (64 KiB).",
        "Save it as PNG or WebP instead.",
    )


def prompt_slug(prompt: str, max_length: int = 48) -> str:
    """'A (red:1.2) circle, <lora:x:1>' -> 'a-red-circle': for file names, ASCII only."""
    text = re.sub(r"<[^>]*>", " ", prompt)
    text = re.sub(r":\s*-?\d+(?:\.\d+)?", " ", text)
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower()
    slug = ""
    for word in re.findall(r"[a-z0-9]+", text):
        candidate = f"{slug}-{word}" if slug else word
        if len(candidate) > max_length:
            return slug or word[:max_length]
        slug = candidate
    return slug


def next_number(folder: Path) -> int:
    numbers = (int(match[1]) for entry in os.scandir(folder) if (match := _NUMBERED.match(entry.name)))
    return max(numbers, default=0) + 1


def file_name(number: int, seed: int, prompt: str, suffix: str) -> str:
    slug = prompt_slug(prompt)
    return f"{number:05d}-{seed}" + (f"-{slug}" if slug else "") + suffix


def _write_bytes(handle: IO[bytes], data: bytes) -> None:
    handle.write(data)


def _open_temp(folder: Path) -> tuple[Path, IO[bytes]]:
    path = folder / f"{TEMP_PREFIX}{secrets.token_hex(8)}{TEMP_SUFFIX}"
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
    return path, os.fdopen(descriptor, "wb")


def _publish(temp: Path, folder: Path, seed: int, prompt: str, suffix: str) -> Path:
    """Give the complete temp file its final name; a name taken meanwhile (another process) is skipped."""
    for _ in range(10_000):
        target = folder / file_name(next_number(folder), seed, prompt, suffix)
        try:
            os.link(temp, target)
        except FileExistsError:
            continue
        except OSError:  # no hard links here (FAT, some network shares): rename, checking first
            if target.exists():
                continue
            temp.replace(target)
            return target
        with contextlib.suppress(OSError):
            temp.unlink()
        return target
    raise OutputError(f"No free file name in {folder}.", _OUTPUT_DIR_HINT + ".")


def _sync_folder(folder: Path) -> None:
    """Make the new name itself survive a power cut (POSIX; Windows has no folder fsync)."""
    with contextlib.suppress(OSError, AttributeError):
        descriptor = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)


def output_error(error: OSError, folder: Path) -> OutputError:
    if error.errno in (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)):
        return OutputError(
            f"The disk is full: the picture could not be saved in {folder}.",
            f"Free some space, or {_OUTPUT_DIR_HINT[0].lower()}{_OUTPUT_DIR_HINT[1:]}.",
        )
    if error.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return OutputError(
            f"The output folder {folder} is not writable.",
            f"Make it writable, or {_OUTPUT_DIR_HINT[0].lower()}{_OUTPUT_DIR_HINT[1:]}.",
        )
    if error.errno in (errno.ENOTDIR, errno.EEXIST):
        return OutputError(f"The output folder {folder} is not a folder.", _OUTPUT_DIR_HINT + ".")
    return OutputError(
        f"The picture could not be saved in {folder}: {error.strerror or error}.",
        _OUTPUT_DIR_HINT + ", or check the disk.",
    )


def save_image(item: GeneratedImage, folder: Path, *, format: ImageFormat = "png") -> Path:
    """Write one picture with its recipe into ``folder`` (created if missing) and return its path.

    Either the complete file exists under a new name, or nothing is left behind and OutputError
    is raised.
    """
    return save_bytes(encode(item, format), folder, item.recipe.seed, item.recipe.prompt, EXTENSIONS[format])


def save_grid(grid: Image.Image, folder: Path, plot: str, seed: int, prompt: str) -> Path:
    """A plot's grid picture, with the plot (JSON) in a ``sfumato-xyz`` text chunk; its cells carry
    the recipes."""
    info = PngInfo()
    info.add_text(XYZ_CHUNK, plot, zip=True)
    buffer = io.BytesIO()
    grid.save(buffer, format="PNG", pnginfo=info)
    return save_bytes(buffer.getvalue(), folder, seed, "xyz-" + prompt, ".png")


def save_bytes(data: bytes, folder: Path, seed: int, prompt: str, suffix: str) -> Path:
    """Write a file into ``folder`` under a new numbered name, atomically (see the module's docstring)."""
    folder = Path(folder)
    temp: Path | None = None
    try:
        folder.mkdir(parents=True, exist_ok=True)
        temp, handle = _open_temp(folder)
        with handle:
            _write_bytes(handle, data)
            handle.flush()
            os.fsync(handle.fileno())
        path = _publish(temp, folder, seed, prompt, suffix)
        temp = None
        _sync_folder(folder)
        return path
    except OSError as error:
        raise output_error(error, folder) from None
    finally:
        if temp is not None:
            with contextlib.suppress(OSError):
                temp.unlink()
