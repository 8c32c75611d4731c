"""The detectors: Haar faces on a real photo, the demo world's objects, YOLO-style ONNX files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageFilter

from sfumato.core.errors import InvalidRequest
from sfumato.demo import world
from sfumato.postprocess.detect import Region, arrange, detect, eye_centres, smiley_confidence


def astronaut() -> Image.Image:
    from skimage import data

    return Image.fromarray(data.astronaut())


def test_haar_finds_the_astronauts_face_and_eyes() -> None:
    picture = astronaut()
    faces = detect(picture, "face", "haar")
    assert len(faces) == 1
    left, top, right, bottom = faces[0].box
    # Eileen Collins' face is at about x 180-270, y 70-160 in the 512x512 photo.
    assert 160 <= left <= 200 and 50 <= top <= 90 and 250 <= right <= 290 and 140 <= bottom <= 180
    eyes = eye_centres(picture, faces[0].box)
    assert eyes is not None
    (lx, ly), (rx, ry) = eyes
    assert lx < rx and abs(ly - ry) < 10 and 30 < rx - lx < 70


def test_a_picture_without_faces_gives_no_region() -> None:
    assert detect(Image.new("RGB", (256, 256), (90, 140, 200)), "face", "haar") == []


def test_the_face_detector_refuses_other_targets_clearly() -> None:
    with pytest.raises(InvalidRequest, match="detector file"):
        detect(astronaut(), "hand", "haar")


def _scene() -> tuple[Image.Image, world.SceneObject]:
    smiley = world.SceneObject("smiley", "yellow", "center", "small")
    star = world.SceneObject("star", "red", "top left", "large")
    return world.render(world.Scene((smiley, star), "blue")), smiley


def test_the_demo_detector_finds_faces_and_shapes_where_they_are() -> None:
    picture, smiley = _scene()
    faces = detect(picture, "face", "demo")
    assert [r.box for r in faces] == [world.object_box(smiley)]
    assert [r.label for r in detect(picture, "star", "demo")] == ["star"]
    assert len(detect(picture, "any", "demo")) == 2
    with pytest.raises(InvalidRequest, match="demo world has no 'hand'"):
        detect(picture, "hand", "demo")


def test_a_blurred_smiley_reads_as_less_of_a_smiley() -> None:
    picture, smiley = _scene()
    box = world.object_box(smiley)
    blurred = picture.filter(ImageFilter.GaussianBlur(1.5))
    sharp, soft = smiley_confidence(picture, box, "yellow"), smiley_confidence(blurred, box, "yellow")
    plain = world.render(world.Scene((world.SceneObject("circle", "yellow", "center", "small"),), "blue"))
    assert sharp > 0.6 and soft < 0.3 and smiley_confidence(plain, box, "yellow") < 0.05


def test_regions_come_in_the_asked_order_up_to_the_count() -> None:
    regions = [
        Region((50, 0, 60, 10), 0.9, "face"),
        Region((0, 40, 30, 70), 0.5, "face"),
        Region((20, 20, 40, 40), 0.7, "face"),
    ]
    assert [r.box[0] for r in arrange(regions, "largest", 0)] == [0, 20, 50]
    assert [r.box[0] for r in arrange(regions, "confidence", 2)] == [50, 20]
    assert [r.box[0] for r in arrange(regions, "left-to-right", 0)] == [0, 20, 50]
    assert [r.box[1] for r in arrange(regions, "top-to-bottom", 1)] == [0]


def _yolo_file(folder: Path, rows: np.ndarray, names: str | None) -> Path:
    """A YOLOv8-layout ONNX file whose output is ``rows`` ([4 + classes, anchors]) whatever the input."""
    pytest.importorskip("onnxruntime")
    onnx = pytest.importorskip("onnx")
    import torch

    fixed = torch.from_numpy(rows)

    class Fixed(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return fixed[None] + 0 * x.mean()

    path = folder / "faces.onnx"
    torch.onnx.export(Fixed(), (torch.zeros(1, 3, 640, 640),), str(path), dynamo=False)
    if names is not None:
        model = onnx.load(str(path))
        model.metadata_props.add(key="names", value=names)
        onnx.save(model, str(path))
    return path


def test_a_yolo_onnx_file_finds_its_classes_in_picture_coordinates(tmp_path: Path) -> None:
    rows = np.zeros((6, 64), dtype=np.float32)  # 2 classes, 64 anchors, all empty but three
    rows[:, 0] = [320, 320, 160, 160, 0.9, 0.05]  # a face in the middle
    rows[:, 1] = [322, 318, 150, 150, 0.85, 0.0]  # the same face again: NMS keeps one
    rows[:, 2] = [100, 250, 40, 40, 0.1, 0.8]  # a hand
    path = _yolo_file(tmp_path, rows, "{0: 'face', 1: 'hand'}")
    # 1280x640 letterboxed into 640x640: scale 0.5, 160 pixels of padding above and below.
    picture = Image.new("RGB", (1280, 640))
    faces = detect(picture, "face", str(path))
    assert [(r.label, r.box) for r in faces] == [("face", (480, 160, 800, 480))]
    assert faces[0].confidence == pytest.approx(0.9)
    hands = detect(picture, "hand", str(path))
    assert [(r.label, r.box) for r in hands] == [("hand", (160, 140, 240, 220))]
    assert len(detect(picture, "any", str(path))) == 2
    with pytest.raises(InvalidRequest, match=r"does not detect 'eye'.*face, hand"):
        detect(picture, "eye", str(path))


def test_a_yolov5_layout_multiplies_objectness_and_class_scores(tmp_path: Path) -> None:
    rows = np.zeros((64, 6), dtype=np.float32)  # v5: [anchors, 4 + objectness + 1 class]
    rows[0] = [320, 320, 64, 64, 0.9, 0.9]  # 0.81: kept
    rows[1] = [100, 100, 32, 32, 0.5, 0.5]  # 0.25: below the confidence asked for
    path = _yolo_file(tmp_path, rows, None)
    faces = detect(Image.new("RGB", (640, 640)), "face", str(path), min_confidence=0.3)
    assert [(r.label, r.box) for r in faces] == [("class 0", (288, 288, 352, 352))]
    assert faces[0].confidence == pytest.approx(0.81)


def test_a_detector_file_that_is_not_onnx_is_refused(tmp_path: Path) -> None:
    pytest.importorskip("onnxruntime")
    bad = tmp_path / "broken.onnx"
    bad.write_bytes(b"not a model")
    with pytest.raises(InvalidRequest, match="not an ONNX model"):
        detect(Image.new("RGB", (64, 64)), "face", str(bad))
    with pytest.raises(InvalidRequest, match="does not exist"):
        detect(Image.new("RGB", (64, 64)), "face", str(tmp_path / "missing.onnx"))
    with pytest.raises(InvalidRequest, match="Unknown detector"):
        detect(Image.new("RGB", (64, 64)), "face", "yolo.pt")
