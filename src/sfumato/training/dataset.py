"""A folder of pictures made into a training set: square crops at the model's size, one caption each.

Crops keep the subject: a ``find_subject`` function (a face or object detector) gives a box to
centre on, else the picture's centre is kept. Captions come from a ``.txt`` file beside the
picture, else from the file name when it reads as words, else from a ``describe`` function (the
interrogator); the trigger word is put in front when a caption lacks it, and ``[name]`` in a
caption is replaced by it.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image

from sfumato.core.errors import InvalidRequest
from sfumato.training.diffusion import Example

PICTURE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".webp", ".bmp"})
Box = tuple[int, int, int, int]  # left, top, right, bottom, as PIL
FindSubject = Callable[[Image.Image], "Box | None"]
Describe = Callable[[Image.Image], str]

# File names cameras and phones give, which say nothing about the picture.
_CAMERA_NAMES = re.compile(r"^(img|dsc|dscn|dscf|pxl|image|photo|picture|screenshot|scan|frame|mvimg)$", re.I)


@dataclass(frozen=True)
class PreparedPicture:
    source: Path
    example: Example
    caption_from: str  # "sidecar", "file name", "interrogator", "trigger only"
    crop: Box  # in the resized source picture
    flipped: bool = False


@dataclass
class PreparedSet:
    pictures: list[PreparedPicture] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def examples(self) -> list[Example]:
        return [p.example for p in self.pictures]


def picture_files(folder: Path) -> list[Path]:
    if not folder.is_dir():
        raise InvalidRequest(
            f"{folder} is not a folder.", "Give --images the folder that holds the training pictures."
        )
    found = sorted(p for p in folder.iterdir() if p.suffix.lower() in PICTURE_SUFFIXES and p.is_file())
    if not found:
        raise InvalidRequest(
            f"{folder} holds no pictures (.png, .jpg, .jpeg, .webp, .bmp).",
            "Put 5 to 30 pictures of the concept in the folder.",
        )
    return found


def read_picture(path: Path) -> Image.Image:
    try:
        with Image.open(path) as opened:
            opened.load()
            return opened.convert("RGB")
    except (OSError, ValueError, Image.DecompressionBombError) as error:
        raise InvalidRequest(
            f"{path.name} cannot be read as a picture ({type(error).__name__}).",
            "Remove it from the folder or save it again as PNG or JPEG.",
        ) from None


def crop_box(width: int, height: int, size: int, subject: Box | None) -> Box:
    """The ``size`` square of a ``width`` x ``height`` picture (shortest side already ``size``)
    centred on the subject's centre as far as the picture allows, else on the picture's centre."""
    if subject is None:
        cx, cy = width / 2, height / 2
    else:
        cx, cy = (subject[0] + subject[2]) / 2, (subject[1] + subject[3]) / 2
    left = round(min(max(cx - size / 2, 0), width - size))
    top = round(min(max(cy - size / 2, 0), height - size))
    return left, top, left + size, top + size


def square(picture: Image.Image, size: int, find_subject: FindSubject | None) -> tuple[Image.Image, Box]:
    scale = size / min(picture.size)
    resized = picture.resize(
        (max(size, round(picture.width * scale)), max(size, round(picture.height * scale))),
        Image.Resampling.LANCZOS,
    )
    subject = find_subject(resized) if find_subject is not None else None
    box = crop_box(resized.width, resized.height, size, subject)
    return resized.crop(box), box


def name_caption(path: Path) -> str | None:
    """The file name as words ("pink_circle-03.png" → "pink circle"), or None when it says nothing."""
    words = [w for w in re.split(r"[\s_\-.()\[\]]+", path.stem) if w and not any(c.isdigit() for c in w)]
    words = [w for w in words if not _CAMERA_NAMES.match(w)]
    return " ".join(words) if any(len(w) >= 3 for w in words) else None


def with_word(caption: str, word: str | None) -> str:
    if word is None:
        return caption.replace("[name]", "").strip()
    caption = caption.replace("[name]", word)
    if re.search(rf"(?<![\w-]){re.escape(word)}(?![\w-])", caption):
        return caption
    return f"{word}, {caption}" if caption else word


def caption_for(
    path: Path, picture: Image.Image, word: str | None, describe: Describe | None
) -> tuple[str, str]:
    sidecar = path.with_suffix(".txt")
    if sidecar.is_file():
        text = " ".join(sidecar.read_text("utf-8", errors="replace").split())
        if text:
            return with_word(text, word), "sidecar"
    named = name_caption(path)
    if named is not None:
        return with_word(named, word), "file name"
    if describe is not None:
        return with_word(describe(picture), word), "interrogator"
    return with_word("", word), "trigger only"


def prepare_dataset(
    folder: Path,
    size: int,
    word: str | None,
    *,
    flip: bool = False,
    find_subject: FindSubject | None = None,
    describe: Describe | None = None,
) -> PreparedSet:
    """Every picture of ``folder`` cropped to ``size`` and captioned; refuses pictures smaller than
    ``size`` and unreadable ones, naming the file."""
    prepared = PreparedSet()
    for path in picture_files(folder):
        picture = read_picture(path)
        if min(picture.size) < size:
            raise InvalidRequest(
                f"{path.name} is {picture.width}x{picture.height}, smaller than the model's "
                f"{size}x{size} training size.",
                f"Use pictures at least {size} pixels on their shortest side, or remove it.",
            )
        cropped, box = square(picture, size, find_subject)
        caption, source = caption_for(path, picture, word, describe)
        prepared.pictures.append(PreparedPicture(path, Example(cropped, caption), source, box))
        if flip:
            mirrored = cropped.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
            prepared.pictures.append(PreparedPicture(path, Example(mirrored, caption), source, box, True))
    sources = {p.caption_from for p in prepared.pictures}
    guessed = {p.source for p in prepared.pictures if p.caption_from == "interrogator"}
    if guessed:
        prepared.notes.append(
            f"{len(guessed)} picture{'s' if len(guessed) > 1 else ''} had no caption (no .txt beside it, no "
            "words in the file name): the interrogator wrote one; a dry run shows them."
        )
    if "trigger only" in sources:
        prepared.notes.append(
            "Some pictures have no caption (no .txt beside them, no words in the file name, no "
            "interrogator): they are captioned with the trigger word alone."
        )
    return prepared


def write_preview(prepared: PreparedSet, out: Path) -> list[Path]:
    """The prepared set as files (what a dry run shows): NNN.png and NNN.txt per picture."""
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for index, item in enumerate(prepared.pictures):
        stem = out / f"{index:03d}-{item.source.stem}{'-flipped' if item.flipped else ''}"
        item.example.image.save(stem.with_suffix(".png"))
        stem.with_suffix(".txt").write_text(item.example.caption + "\n", "utf-8")
        written.append(stem.with_suffix(".png"))
    return written
