"""The canvas to and from other editors: OpenRaster and PSD round trips, the external editor,
the clipboard."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from sfumato.desktop.model.document import Document, Layer, LayerKind, Rect
from sfumato.desktop.model.files import CanvasFileError, load_ora, load_psd, save_ora, save_psd


def _document() -> Document:
    rng = np.random.default_rng(3)
    document = Document()
    photo = Layer("Photo", LayerKind.picture, rng.integers(0, 256, (40, 60, 4), dtype=np.uint8), -10, -5)
    photo.pixels[..., 3] = 255
    document.insert(photo)
    result = Layer("Result 1", LayerKind.result, rng.integers(0, 256, (32, 32, 4), dtype=np.uint8), 30, 20)
    result.recipe = {"prompt": "a red circle", "seed": 7, "steps": 12}
    result.opacity = 0.5
    document.insert(result)
    mask = Layer.empty_mask("Mask 1", Rect(0, 0, 48, 24))
    mask.pixels[4:20, 8:40] = 255
    mask.pixels[10, 10] = 77
    mask.visible = False
    document.insert(mask)
    return document


def _facts(document: Document) -> list[tuple[Any, ...]]:
    origin = document.bounds()
    return [
        (
            layer.name,
            layer.kind,
            layer.x - origin.x,
            layer.y - origin.y,
            layer.visible,
            round(layer.opacity, 3),
        )
        for layer in document.layers
    ]


def _same_pixels(a: Layer, b: Layer) -> bool:
    if a.is_mask:
        return np.array_equal(a.pixels, b.pixels)
    # fully transparent pixels carry no colour in other editors' files
    visible = a.pixels[..., 3] > 0
    return np.array_equal(a.pixels[visible], b.pixels[visible]) and np.array_equal(
        a.pixels[..., 3], b.pixels[..., 3]
    )


def test_openraster_round_trip_keeps_layers_names_order_pixels_and_recipes(tmp_path: Path) -> None:
    document = _document()
    path = tmp_path / "canvas.ora"
    save_ora(document, path)
    loaded = load_ora(path)
    assert _facts(loaded) == _facts(document)
    assert [(layer.x, layer.y) for layer in loaded.layers] == [
        (layer.x, layer.y) for layer in document.layers
    ]
    assert all(_same_pixels(a, b) for a, b in zip(document.layers, loaded.layers, strict=True))
    assert loaded.layers[1].recipe == {"prompt": "a red circle", "seed": 7, "steps": 12}


def test_the_openraster_file_is_what_other_editors_expect(tmp_path: Path) -> None:
    import xml.etree.ElementTree as ElementTree

    path = tmp_path / "canvas.ora"
    save_ora(_document(), path)
    with zipfile.ZipFile(path) as archive:
        first = archive.infolist()[0]
        assert (first.filename, first.compress_type) == ("mimetype", zipfile.ZIP_STORED)
        assert archive.read("mimetype") == b"image/openraster"
        names = set(archive.namelist())
        assert {"stack.xml", "mergedimage.png", "Thumbnails/thumbnail.png"} <= names
        stack = ElementTree.fromstring(archive.read("stack.xml"))
        assert (stack.get("w"), stack.get("h")) == ("72", "57")  # x -10..62, y -5..52
        layers = stack.findall("./stack/layer")
        assert [layer.get("name") for layer in layers] == ["Mask 1", "Result 1", "Photo"]  # top first
        assert layers[0].get("visibility") == "hidden" and layers[1].get("opacity") == "0.5000"
        for layer in layers:
            with Image.open(archive.open(layer.get("src", ""))) as picture:
                assert picture.mode == "RGBA"
        with Image.open(archive.open("mergedimage.png")) as merged:
            assert merged.size == (72, 57)
        assert json.loads(archive.read("sfumato/document.json"))["origin"] == [-10, -5]


def test_an_openraster_file_from_elsewhere_opens_without_sfumatos_facts(tmp_path: Path) -> None:
    path = tmp_path / "krita.ora"
    picture = Image.new("RGBA", (20, 10), (1, 2, 3, 255))
    import io

    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(zipfile.ZipInfo("mimetype"), b"image/openraster")
        archive.writestr(
            "stack.xml",
            '<image w="40" h="30"><stack><stack name="group">'
            '<layer name="inner" src="data/a.png" x="5" y="6"/></stack></stack></image>',
        )
        archive.writestr("data/a.png", buffer.getvalue())
    loaded = load_ora(path)
    assert [(layer.name, layer.kind, layer.x, layer.y, layer.width) for layer in loaded.layers] == [
        ("inner", LayerKind.picture, 5, 6, 20)
    ]


@pytest.mark.parametrize("content", [b"not a zip", b""])
def test_a_broken_openraster_file_gets_one_clear_error(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "broken.ora"
    path.write_bytes(content)
    with pytest.raises(CanvasFileError, match=r"broken\.ora cannot be read as OpenRaster"):
        load_ora(path)


def test_psd_round_trip_keeps_layers_names_order_and_pixels(tmp_path: Path) -> None:
    document = _document()
    path = tmp_path / "canvas.psd"
    save_psd(document, path)
    loaded = load_psd(path)
    # a PSD has no place for recipes: a generated layer comes back as a picture
    kinds = {LayerKind.result: LayerKind.picture}
    assert [f[:5] for f in _facts(loaded)] == [
        (f[0], kinds.get(f[1], f[1]), *f[2:5]) for f in _facts(document)
    ]
    assert [round(layer.opacity, 2) for layer in loaded.layers] == [1.0, 0.5, 1.0]
    assert all(_same_pixels(a, b) for a, b in zip(document.layers, loaded.layers, strict=True))
    # an independent reader sees the same layers, bottom first
    from psd_tools import PSDImage

    assert [layer.name for layer in PSDImage.open(path)] == ["Photo", "Result 1", "Mask 1 [mask]"]


def test_saving_and_opening_from_the_window(window: Any, tmp_path: Path) -> None:
    from sfumato.desktop.ui.commands import AddLayer

    for layer in _document().layers:
        window.undo.push(AddLayer(window.studio.document, layer))
    window.studio.path = tmp_path / "mine.ora"
    window.save()
    window.new_canvas()
    assert window.studio.document.layers == []
    window.open_path(tmp_path / "mine.ora")
    assert [layer.name for layer in window.studio.document.layers] == ["Photo", "Result 1", "Mask 1"]
    assert window.layers.list.count() == 3 and window.layers.list.item(0).text() == "Mask 1"


def test_a_layer_edited_in_an_external_editor_comes_back_when_saved(
    window: Any, qtbot: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from PySide6.QtGui import QDesktopServices

    from sfumato.desktop.ui.commands import AddLayer

    opened: list[str] = []
    monkeypatch.setattr(QDesktopServices, "openUrl", lambda url: opened.append(url.toLocalFile()) or True)
    layer = Layer.from_image("Photo", Image.new("RGBA", (16, 16), (10, 10, 10, 255)))
    window.undo.push(AddLayer(window.studio.document, layer))
    window.studio.set_active(layer.id)
    path = window.edit_outside()
    assert path is not None and opened == [str(path)]
    with Image.open(path) as written:
        assert written.getpixel((0, 0)) == (10, 10, 10, 255)
    Image.new("RGBA", (16, 16), (200, 100, 0, 255)).save(path)  # the user saves in the other editor
    qtbot.waitUntil(
        lambda: tuple(window.studio.document.layer(layer.id).pixels[0, 0]) == (200, 100, 0, 255), timeout=5000
    )
    window.undo.undo()
    assert tuple(window.studio.document.layer(layer.id).pixels[0, 0]) == (10, 10, 10, 255)


def test_copy_and_paste_go_through_the_system_clipboard(window: Any) -> None:
    from PySide6.QtGui import QGuiApplication

    from sfumato.desktop.ui.commands import AddLayer
    from sfumato.desktop.ui.images import pil_from_qimage

    layer = Layer.from_image("Photo", Image.new("RGBA", (12, 8), (30, 60, 90, 255)))
    window.undo.push(AddLayer(window.studio.document, layer))
    window.studio.set_active(layer.id)
    window.copy()
    copied = pil_from_qimage(QGuiApplication.clipboard().image())
    assert copied.size == (12, 8) and copied.getpixel((3, 3)) == (30, 60, 90, 255)
    window.studio.move_frame(50, 40)
    pasted = window.paste()
    assert pasted is not None and (pasted.x, pasted.y, pasted.width) == (50, 40, 12)
    assert tuple(pasted.pixels[3, 3]) == (30, 60, 90, 255)
