"""Finding regions to work on (faces, hands, shapes): boxes with a confidence, from three detectors.

- ``haar``: opencv's Haar cascades (frontal faces; eyes for alignment). Shipped by
  ``opencv-python-headless`` 4.x (5.0 dropped them), so it works offline on any install.
- ``demo``: the demo world's smiley faces and shapes, read by the judge (``sfumato.demo.judge``);
  a smiley's confidence is how clearly its eyes and mouth stand out from its face.
- a detector file: a YOLO-style ONNX model (Ultralytics v5/v8 export layouts), run by onnxruntime.

mediapipe's BlazeFace is not used: the only release that bundles its models (0.10.21) installs
only with ``--no-deps`` tricks (it pins numpy<2), which an install command cannot rely on.
"""

from __future__ import annotations

import ast
import math
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from PIL import Image

from sfumato.core.errors import InvalidRequest, SfumatoError

if TYPE_CHECKING:
    import numpy as np

Box = tuple[int, int, int, int]  # left, top, right, bottom (right/bottom exclusive), as PIL
Order = Literal["largest", "confidence", "left-to-right", "top-to-bottom"]
ORDERS: tuple[str, ...] = ("largest", "confidence", "left-to-right", "top-to-bottom")
BUILTIN_DETECTORS: tuple[str, ...] = ("auto", "haar", "demo")
ANY_CLASS = ("any", "object")  # targets that take every class a detector offers


class DetectorUnavailable(SfumatoError):
    """A detector cannot run here (a package or file is missing)."""


@dataclass(frozen=True)
class Region:
    box: Box
    confidence: float  # 0..1
    label: str

    @property
    def area(self) -> int:
        return (self.box[2] - self.box[0]) * (self.box[3] - self.box[1])


def arrange(regions: list[Region], order: str, max_count: int) -> list[Region]:
    """Regions in the asked order, the first ``max_count`` (0 = all)."""
    keys = {
        "largest": lambda r: (-r.area, r.box[0], r.box[1]),
        "confidence": lambda r: (-r.confidence, -r.area),
        "left-to-right": lambda r: (r.box[0], r.box[1]),
        "top-to-bottom": lambda r: (r.box[1], r.box[0]),
    }
    if order not in keys:
        raise InvalidRequest(f"Unknown region order {order!r}.", f"Choose one of: {', '.join(ORDERS)}.")
    ordered = sorted(regions, key=keys[order])
    return ordered[:max_count] if max_count else ordered


def detect(
    picture: Image.Image,
    target: str,
    detector: str = "auto",
    *,
    demo_world: bool = False,
    min_confidence: float = 0.3,
) -> list[Region]:
    """Regions of ``target`` in the picture, by ``detector`` ("auto", "haar", "demo" or an .onnx file).

    "auto" reads the demo world with the judge when the model is the demo model, and finds faces
    with the Haar cascade otherwise.
    """
    if detector == "auto":
        detector = "demo" if demo_world else "haar"
    if detector == "demo":
        found = detect_demo(picture, target)
    elif detector == "haar":
        if target != "face":
            raise InvalidRequest(
                f"The built-in face detector finds faces, not {target!r}.",
                "Give a detector file that knows it (a YOLO model exported to ONNX) with --detector.",
            )
        found = detect_faces(picture)
    elif detector.lower().endswith(".onnx"):
        found = detect_onnx(picture, Path(detector), target, min_confidence)
    else:
        raise InvalidRequest(
            f"Unknown detector {detector!r}.",
            f"Use one of {', '.join(BUILTIN_DETECTORS)}, or the path of a YOLO detector in ONNX format.",
        )
    return [r for r in found if r.confidence >= min_confidence]


# -- Haar cascades (faces) ------------------------------------------------------------------------


def _cascade(name: str) -> Any:
    import cv2

    data = getattr(cv2, "data", None)
    if data is None or not hasattr(cv2, "CascadeClassifier"):
        raise DetectorUnavailable(
            "This opencv has no Haar cascades (opencv 5 removed them).",
            "Install opencv-python-headless 4.x: pip install 'opencv-python-headless<5'.",
        )
    path = Path(data.haarcascades) / name
    classifier = cv2.CascadeClassifier(str(path))
    if classifier.empty():
        raise DetectorUnavailable(f"opencv's cascade {name} is missing or unreadable ({path}).")
    return classifier


def _grey(picture: Image.Image) -> np.ndarray:
    import cv2
    import numpy as np

    return cv2.equalizeHist(np.asarray(picture.convert("L")))


def detect_faces(picture: Image.Image) -> list[Region]:
    """Frontal faces by opencv's Haar cascade. Confidence grows with the cascade's neighbour count
    (n / (n + 5)): a heuristic, not a probability."""
    grey = _grey(picture)
    side = min(grey.shape)
    smallest = max(24, side // 20)
    boxes, neighbours = _cascade("haarcascade_frontalface_default.xml").detectMultiScale2(
        grey, scaleFactor=1.1, minNeighbors=4, minSize=(smallest, smallest)
    )
    return [
        Region((int(x), int(y), int(x + w), int(y + h)), float(n) / (float(n) + 5.0), "face")
        for (x, y, w, h), n in zip(boxes, neighbours, strict=True)
    ]


def eye_centres(picture: Image.Image, box: Box) -> tuple[tuple[float, float], tuple[float, float]] | None:
    """The two eyes' centres (the picture's left one first) inside a face box, or None when the
    eye cascade does not find exactly one in each upper half of the box."""
    left, top, right, bottom = box
    grey = _grey(picture.crop((left, top, right, top + (bottom - top) * 6 // 10)))
    width = right - left
    smallest = max(8, width // 8)
    eyes = _cascade("haarcascade_eye.xml").detectMultiScale(
        grey, scaleFactor=1.1, minNeighbors=3, minSize=(smallest, smallest), maxSize=(width // 2, width // 2)
    )
    centres = [(left + x + w / 2, top + y + h / 2) for x, y, w, h in eyes]
    on_left = [c for c in centres if c[0] < left + width / 2]
    on_right = [c for c in centres if c[0] >= left + width / 2]
    if not on_left or not on_right:
        return None
    # The largest of several candidates on a side is most often the eye (eyebrows, nostrils are smaller).
    pick = {tuple(c): w * h for (x, y, w, h), c in zip(eyes, centres, strict=True)}
    first = max(on_left, key=lambda c: pick[tuple(c)])
    second = max(on_right, key=lambda c: pick[tuple(c)])
    return first, second


# -- the demo world -------------------------------------------------------------------------------

ROUND = ("circle", "smiley")


def detect_demo(picture: Image.Image, target: str) -> list[Region]:
    """Objects of the demo world, as the judge reads them. "face" (or "smiley") finds round objects
    (circles and smileys: a blurred smiley reads as a circle); a shape name finds that shape;
    "any"/"object" finds every object. The judge separates objects reliably, so each has
    confidence 1; :func:`smiley_confidence` says how clearly one reads as a smiley face."""
    from sfumato.demo import judge, world

    target = target.lower()
    if target not in ("face", "smiley", *ANY_CLASS, *world.ALL_SHAPES):
        raise InvalidRequest(
            f"The demo world has no {target!r}.",
            f"Ask for face, any, or a shape: {', '.join(world.ALL_SHAPES)}.",
        )
    regions = []
    for obj in judge.judge(picture).objects:
        if target in ("face", "smiley"):
            if obj.shape in ROUND:
                regions.append(Region(obj.box, 1.0, "face"))
        elif target in ANY_CLASS or obj.shape == target:
            regions.append(Region(obj.box, 1.0, obj.shape))
    return regions


@cache
def _smiley_features(colour: str, width: int, height: int) -> np.ndarray:
    """A crisp smiley's "featureness" (0 = face colour, 1 = eye/mouth colour) drawn into a box of
    ``width`` x ``height`` pixels, as the world draws it at that scale."""
    from sfumato.demo import world

    obj = world.SceneObject("smiley", colour, "center", "large")
    size = max(32, round(max(width, height) / (2 * world.SIZES["large"])))
    drawn = world.render(world.Scene((obj,), "gray"), size).crop(world.object_box(obj, size))
    return _featureness(drawn.resize((width, height), Image.Resampling.BOX), colour)


def _featureness(picture: Image.Image, colour: str) -> np.ndarray:
    import numpy as np

    from sfumato.demo import world

    face = np.array(world.ALL_COLOURS[colour], dtype=np.float32)
    axis = np.array(_feature_colour(colour), dtype=np.float32) - face
    pixels = np.asarray(picture.convert("RGB"), dtype=np.float32)
    return (pixels - face) @ axis / float(axis @ axis)


def _feature_colour(colour: str) -> tuple[int, int, int]:
    from sfumato.demo import world

    return world.COLOURS["white"] if colour == "black" else world.COLOURS["black"]


def smiley_confidence(picture: Image.Image, box: Box, colour: str) -> float:
    """How clearly the round object in ``box`` shows a smiley's eyes and mouth (0..1): inside its
    disc, how much of a crisp smiley's eye/mouth contrast its pixels follow (the regression slope of
    the picture's featureness on the crisp smiley's). A plain disc gives 0, a blurred smiley less
    than a sharp one."""
    import numpy as np

    from sfumato.demo import world

    width, height = box[2] - box[0], box[3] - box[1]
    if colour not in world.ALL_COLOURS or min(width, height) < 4:
        return 0.0
    expected = _smiley_features(colour, width, height)
    seen = _featureness(picture.crop(box), colour)
    ys, xs = np.mgrid[0:height, 0:width]
    inside = np.hypot((xs + 0.5) / width - 0.5, (ys + 0.5) / height - 0.5) < 0.4
    e, s = expected[inside] - expected[inside].mean(), seen[inside] - seen[inside].mean()
    variance = float(e @ e)
    if variance <= 0:
        return 0.0
    return float(np.clip(float(e @ s) / variance, 0.0, 1.0))


# -- a detector file (YOLO in ONNX) ---------------------------------------------------------------


def detect_onnx(picture: Image.Image, path: Path, target: str, min_confidence: float) -> list[Region]:
    """Boxes from a YOLO-style ONNX detector: input [1, 3, H, W] RGB in 0..1 (letterboxed), output
    [1, 4 + classes, N] (v8 and later) or [1, N, 5 + classes] (v5: with an objectness column).
    Class names come from the file's ``names`` metadata (as Ultralytics writes it)."""
    import cv2
    import numpy as np

    session = onnx_session(path)
    shape = session.get_inputs()[0].shape
    height = shape[2] if isinstance(shape[2], int) else 640
    width = shape[3] if isinstance(shape[3], int) else 640
    scale = min(width / picture.width, height / picture.height)
    new_w, new_h = max(1, round(picture.width * scale)), max(1, round(picture.height * scale))
    pad_x, pad_y = (width - new_w) // 2, (height - new_h) // 2
    canvas = Image.new("RGB", (width, height), (114, 114, 114))
    canvas.paste(picture.convert("RGB").resize((new_w, new_h), Image.Resampling.BILINEAR), (pad_x, pad_y))
    tensor = (np.asarray(canvas, dtype=np.float32) / 255.0).transpose(2, 0, 1)[None]
    output = np.asarray(session.run(None, {session.get_inputs()[0].name: tensor})[0])
    if output.ndim != 3 or max(output.shape[1:]) < 5:
        raise InvalidRequest(
            f"{path.name} gives detections of shape {list(output.shape)}, not a YOLO layout.",
            "Use a YOLO v5/v8-style detector exported to ONNX (ultralytics: model.export(format='onnx')).",
        )
    rows = output[0]
    if rows.shape[0] < rows.shape[1]:  # v8: [4 + classes, N]
        rows = rows.T
        class_scores = rows[:, 4:]
    else:  # v5: [N, 5 + classes], objectness times class score
        class_scores = rows[:, 5:] * rows[:, 4:5] if rows.shape[1] > 5 else rows[:, 4:5]
    names = _class_names(session, class_scores.shape[1])
    wanted = _wanted_classes(names, target, path)
    classes = class_scores.argmax(1)
    scores = class_scores.max(1)
    keep = np.isin(classes, wanted) & (scores >= min_confidence)
    boxes_xywh, kept_scores, kept_classes = [], [], []
    for (cx, cy, w, h), score, cls in zip(rows[keep, :4], scores[keep], classes[keep], strict=True):
        left = (cx - w / 2 - pad_x) / scale
        top = (cy - h / 2 - pad_y) / scale
        boxes_xywh.append([float(left), float(top), float(w / scale), float(h / scale)])
        kept_scores.append(float(score))
        kept_classes.append(int(cls))
    chosen = cv2.dnn.NMSBoxes(boxes_xywh, kept_scores, min_confidence, 0.45) if boxes_xywh else []
    regions = []
    for index in np.asarray(chosen, dtype=int).reshape(-1):
        left, top, w, h = boxes_xywh[index]
        box = (
            max(0, math.floor(left)),
            max(0, math.floor(top)),
            min(picture.width, math.ceil(left + w)),
            min(picture.height, math.ceil(top + h)),
        )
        if box[2] > box[0] and box[3] > box[1]:
            regions.append(Region(box, kept_scores[index], names[kept_classes[index]]))
    return regions


def onnx_session(path: Path) -> Any:
    try:
        import onnxruntime
    except ImportError:
        raise DetectorUnavailable(
            "Detector files need onnxruntime, which is not installed.",
            "Install it: pip install 'sfumato[detectors]' (or pip install onnxruntime).",
        ) from None
    if not path.is_file():
        raise InvalidRequest(f"The detector file {path} does not exist.", "Check the path and try again.")
    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3
    try:
        return onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as error:  # onnxruntime raises its own untyped errors for any malformed file
        raise InvalidRequest(
            f"{path.name} is not an ONNX model onnxruntime can run ({type(error).__name__}).",
            "Export the detector to ONNX again, or use another file.",
        ) from None


def _class_names(session: object, count: int) -> list[str]:
    meta = getattr(session, "get_modelmeta")().custom_metadata_map  # noqa: B009 - lazily typed session
    names = [f"class {i}" for i in range(count)]
    try:
        parsed = ast.literal_eval(meta.get("names", "{}"))
    except (ValueError, SyntaxError):
        parsed = {}
    if isinstance(parsed, dict):
        for key, value in parsed.items():
            if isinstance(key, int) and 0 <= key < count:
                names[key] = str(value)
    elif isinstance(parsed, list):
        for key, value in enumerate(parsed[:count]):
            names[key] = str(value)
    return names


def _wanted_classes(names: list[str], target: str, path: Path) -> list[int]:
    if target.lower() in ANY_CLASS or len(names) == 1:
        return list(range(len(names)))
    wanted = [i for i, name in enumerate(names) if name.lower() == target.lower()]
    if not wanted:
        raise InvalidRequest(
            f"{path.name} does not detect {target!r}.", f"It knows: {', '.join(names)} (or ask for any)."
        )
    return wanted
