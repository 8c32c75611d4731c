"""Reading the images a request refers to (a path or a data: URI), with clear errors."""

from __future__ import annotations

import base64
import binascii
import io
import warnings
from pathlib import Path
from typing import Literal

from PIL import Image, UnidentifiedImageError

from sfumato.core.errors import ImageReadError

ImageFormat = Literal["png", "jpeg", "webp"]

# A guard against decompression bombs: 64 megapixels is 8192², far above any side we accept.
MAX_PIXELS = 64 * 1024 * 1024


def _open_bytes(data: bytes, what: str, name: str = "") -> Image.Image:
    what = f"{what} {name}" if name else what
    try:
        with warnings.catch_warnings():
            # Our own limit below is stricter than the size at which Pillow only warns.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
        with image:
            # Checked from the header, before any pixel is decoded.
            if image.width * image.height > MAX_PIXELS:
                raise ImageReadError(
                    f"The {what} is too large to open ({image.width}x{image.height}, over "
                    f"{MAX_PIXELS // 1_000_000} megapixels).",
                    "Resize it and try again.",
                )
            image.load()
            return image.copy()
    except Image.DecompressionBombError:
        raise ImageReadError(f"The {what} is too large to open.", "Resize it and try again.") from None
    except (OSError, SyntaxError, ValueError) as error:  # UnidentifiedImageError is an OSError
        raise unreadable(what, error) from None


def unreadable(
    what: str, error: Exception, hint: str = "Check that it is a complete PNG, JPEG or WebP file."
) -> ImageReadError:
    """The error for a picture Pillow could not read, in words that name no Python object."""
    if isinstance(error, UnidentifiedImageError):
        return ImageReadError(f"The {what} could not be read: it is not a PNG, JPEG or WebP picture.", hint)
    return ImageReadError(f"The {what} could not be read: {error}.", hint)


def decode_data_uri(ref: str, what: str = "image") -> bytes:
    payload = ref.split(",", 1)[1] if ref.startswith("data:") else ref
    try:
        return base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        raise ImageReadError(
            f"The {what} is not valid base64.", "Send the image bytes base64-encoded."
        ) from None


def load_image(ref: str, what: str = "image") -> Image.Image:
    """Open an image reference: a ``data:`` URI or a file path."""
    if ref.startswith("data:"):
        return _open_bytes(decode_data_uri(ref, what), what)
    path = Path(ref).expanduser()
    try:
        data = path.read_bytes()
    except OSError as error:
        raise ImageReadError(
            f"The {what} {str(path)!r} could not be opened: {error.strerror}.", "Check the path."
        ) from None
    return _open_bytes(data, what, path.name)


def to_data_uri(image: Image.Image, format: str = "PNG") -> str:
    buffer = io.BytesIO()
    image.save(buffer, format=format)
    return f"data:image/{format.lower()};base64," + base64.b64encode(buffer.getvalue()).decode()
