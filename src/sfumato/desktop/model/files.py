"""The whole canvas to and from other editors: OpenRaster (.ora) and Photoshop (.psd).

OpenRaster is written by hand (a zip: ``mimetype`` first and uncompressed, ``stack.xml``,
``data/*.png``, ``mergedimage.png``, ``Thumbnails/thumbnail.png``), so Krita, GIMP and MyPaint open
it; Sfumato's own facts (layer kinds, the recipes of generated layers, where the canvas sat) ride
along in ``sfumato/document.json``, which other editors ignore. A PSD keeps pictures as pixel
layers; a mask layer is a layer whose alpha is the mask, named ``<name> [mask]``.
"""

from __future__ import annotations

import io
import json
import os
import tempfile
import xml.etree.ElementTree as ElementTree
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from sfumato.core.errors import SfumatoError
from sfumato.desktop.model.document import Document, Layer, LayerKind, Rect

ORA_MIMETYPE = b"image/openraster"
MASK_SUFFIX = " [mask]"
_MAX_LAYERS = 1000
_MAX_MEMBER_BYTES = 512 * 1024**2
_THUMBNAIL = 256


class CanvasFileError(SfumatoError):
    """A canvas file that cannot be read or written."""


def _canvas(document: Document) -> Rect:
    bounds = document.bounds()
    return bounds if not bounds.empty else Rect(0, 0, 1, 1)


def _png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def _mask_as_rgba(layer: Layer) -> Image.Image:
    """Masks travel as white with the mask as alpha, so other editors show them as a layer."""
    pixels = np.zeros((*layer.pixels.shape, 4), np.uint8)
    pixels[..., :3] = 255
    pixels[..., 3] = layer.pixels
    return Image.fromarray(pixels, "RGBA")


def _layer_picture(layer: Layer) -> Image.Image:
    return _mask_as_rgba(layer) if layer.is_mask else layer.image()


def _write_atomically(path: Path, data: bytes) -> None:
    path = Path(path)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix="." + path.name, suffix=".part")
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(data)
        Path(temporary).replace(path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


# OpenRaster ------------------------------------------------------------------------------------


def ora_bytes(document: Document) -> bytes:
    canvas = _canvas(document)
    root = ElementTree.Element("image", {"version": "0.0.3", "w": str(canvas.width), "h": str(canvas.height)})
    stack = ElementTree.SubElement(root, "stack")
    facts: dict[str, Any] = {"version": 1, "origin": [canvas.x, canvas.y], "layers": {}}
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(zipfile.ZipInfo("mimetype"), ORA_MIMETYPE, compress_type=zipfile.ZIP_STORED)
        for number, layer in enumerate(reversed(document.layers), start=1):  # stack.xml lists the top first
            src = f"data/layer{number:03d}.png"
            archive.writestr(src, _png(_layer_picture(layer)))
            attributes = {
                "name": layer.name,
                "src": src,
                "x": str(layer.x - canvas.x),
                "y": str(layer.y - canvas.y),
                "opacity": f"{layer.opacity:.4f}",
                "visibility": "visible" if layer.visible else "hidden",
                "composite-op": "svg:src-over",
            }
            ElementTree.SubElement(stack, "layer", attributes)
            facts["layers"][src] = {"kind": layer.kind.value, "recipe": layer.recipe}
        archive.writestr("stack.xml", ElementTree.tostring(root, encoding="UTF-8", xml_declaration=True))
        merged = Image.fromarray(document.composite(canvas), "RGBA")
        archive.writestr("mergedimage.png", _png(merged))
        thumbnail = merged.copy()
        thumbnail.thumbnail((_THUMBNAIL, _THUMBNAIL))
        archive.writestr("Thumbnails/thumbnail.png", _png(thumbnail))
        archive.writestr("sfumato/document.json", json.dumps(facts, indent=1))
    return buffer.getvalue()


def save_ora(document: Document, path: Path) -> None:
    _write_atomically(path, ora_bytes(document))


def _member(archive: zipfile.ZipFile, name: str) -> bytes:
    try:
        info = archive.getinfo(name)
    except KeyError:
        raise CanvasFileError(f"The file has no {name}.", "Is it an OpenRaster (.ora) file?") from None
    if info.file_size > _MAX_MEMBER_BYTES:
        raise CanvasFileError(f"{name} in the file is too large ({info.file_size} bytes).")
    return archive.read(name)


def _layers_of(stack: ElementTree.Element) -> list[ElementTree.Element]:
    """Every layer element, top first, nested stacks flattened."""
    found: list[ElementTree.Element] = []
    for child in stack:
        if child.tag == "layer":
            found.append(child)
        elif child.tag == "stack":
            found += _layers_of(child)
    return found


def _float(value: str | None, default: float) -> float:
    try:
        number = float(value) if value is not None else default
    except ValueError:
        return default
    return min(1.0, max(0.0, number)) if number == number else default


def _int(value: str | None) -> int:
    try:
        return int(float(value or 0))
    except ValueError:
        return 0


def load_ora(path: Path) -> Document:
    try:
        with zipfile.ZipFile(path) as archive:
            if _member(archive, "mimetype").strip() != ORA_MIMETYPE:
                raise CanvasFileError(f"{Path(path).name} is not an OpenRaster file (wrong mimetype).")
            root = ElementTree.fromstring(_member(archive, "stack.xml"))
            facts: dict[str, Any] = {}
            if "sfumato/document.json" in archive.namelist():
                facts = json.loads(_member(archive, "sfumato/document.json"))
            origin = facts.get("origin", [0, 0])
            stack = root.find("stack")
            elements = _layers_of(stack) if stack is not None else []
            if len(elements) > _MAX_LAYERS:
                raise CanvasFileError(f"The file has {len(elements)} layers; at most {_MAX_LAYERS} are read.")
            document = Document()
            for element in reversed(elements):
                src = element.get("src", "")
                with Image.open(io.BytesIO(_member(archive, src))) as picture:
                    picture.load()
                    rgba = picture.convert("RGBA")
                known = facts.get("layers", {}).get(src, {})
                kind = LayerKind(known.get("kind", "picture"))
                layer = Layer(
                    element.get("name", Path(src).stem),
                    kind,
                    np.array(rgba.getchannel("A") if kind is LayerKind.mask else rgba, np.uint8),
                    _int(element.get("x")) + int(origin[0]),
                    _int(element.get("y")) + int(origin[1]),
                    visible=element.get("visibility", "visible") != "hidden",
                    opacity=_float(element.get("opacity"), 1.0),
                    recipe=known.get("recipe"),
                )
                document.insert(layer)
            return document
    except CanvasFileError:
        raise
    except (
        OSError,
        zipfile.BadZipFile,
        ElementTree.ParseError,
        ValueError,
        TypeError,
        Image.DecompressionBombError,
    ) as error:
        raise CanvasFileError(
            f"{Path(path).name} cannot be read as OpenRaster: {error}.", "Is it a .ora file saved completely?"
        ) from None


# Photoshop -------------------------------------------------------------------------------------


def save_psd(document: Document, path: Path) -> None:
    from psd_tools import PSDImage
    from psd_tools.api.layers import PixelLayer

    canvas = _canvas(document)
    psd = PSDImage.new("RGBA", (canvas.width, canvas.height))
    for layer in document.layers:
        name = layer.name + MASK_SUFFIX if layer.is_mask else layer.name
        pixel_layer = PixelLayer.frompil(
            _layer_picture(layer), psd, name, layer.y - canvas.y, layer.x - canvas.x
        )
        pixel_layer.visible = layer.visible
        pixel_layer.opacity = round(layer.opacity * 255)
        psd.append(pixel_layer)
    buffer = io.BytesIO()
    psd.save(buffer)
    _write_atomically(path, buffer.getvalue())


def load_psd(path: Path) -> Document:
    from psd_tools import PSDImage

    try:
        psd = PSDImage.open(path)
        document = Document()
        for item in psd.descendants():
            if item.is_group():
                continue
            picture = item.topil()
            if picture is None:
                continue
            rgba = picture.convert("RGBA")
            is_mask = item.name.endswith(MASK_SUFFIX)
            layer = Layer(
                item.name.removesuffix(MASK_SUFFIX),
                LayerKind.mask if is_mask else LayerKind.picture,
                np.array(rgba.getchannel("A") if is_mask else rgba, np.uint8),
                int(item.left),
                int(item.top),
                visible=bool(item.visible),
                opacity=int(item.opacity) / 255,
            )
            document.insert(layer)
        return document
    except (OSError, ValueError, TypeError, AssertionError, Image.DecompressionBombError) as error:
        raise CanvasFileError(
            f"{Path(path).name} cannot be read as a Photoshop file: {error}.",
            "Is it a .psd saved completely?",
        ) from None
