"""Which frames of a clip become keyframes, and how steady the stylised keyframes are.

Frame numbers are 1-based, as EbSynth's project folders and video editors count them.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sfumato.core.errors import InvalidRequest

if TYPE_CHECKING:
    import numpy as np
    from PIL import Image

SCENE_THUMBNAIL = 64  # side of the grey thumbnail two frames are compared at
DEFAULT_SCENE_THRESHOLD = 0.12  # mean absolute grey change (0-1) between frames that starts a new scene


@dataclass(frozen=True)
class KeyframeChoice:
    """One of: every ``every`` frames, the listed ``frames``, or a keyframe at each scene change."""

    every: int | None = None
    frames: tuple[int, ...] = ()
    scene_changes: bool = False
    scene_threshold: float = DEFAULT_SCENE_THRESHOLD

    def __post_init__(self) -> None:
        given = sum((self.every is not None, bool(self.frames), self.scene_changes))
        if given != 1:
            raise InvalidRequest(
                "Choose the keyframes one way: every N frames, a list of frames, or scene changes.",
                "Give exactly one of --every N, --keyframes 1,25,50 or --scene-changes.",
            )
        if self.every is not None and self.every < 1:
            raise InvalidRequest(
                f"--every {self.every} picks no frames.", "Give a keyframe interval of 1 or more frames."
            )
        if any(number < 1 for number in self.frames):
            raise InvalidRequest(
                "Keyframe numbers start at 1.", "List frame numbers from 1, e.g. --keyframes 1,25,50."
            )
        if not 0 < self.scene_threshold < 1:
            raise InvalidRequest(
                f"The scene-change threshold {self.scene_threshold} is outside 0-1.",
                f"Use a share of the grey range, e.g. {DEFAULT_SCENE_THRESHOLD}.",
            )

    def is_keyframe(self, number: int, change: float | None) -> bool:
        """Whether frame ``number`` is a keyframe; ``change`` is its scene change from the frame before
        (None for the first frame)."""
        if self.every is not None:
            return (number - 1) % self.every == 0
        if self.frames:
            return number in self.frames
        return change is None or change >= self.scene_threshold

    def check_found(self, frame_count: int) -> None:
        """Listed keyframes past the end of the clip are a mistake, not something to drop silently."""
        missing = [number for number in self.frames if number > frame_count]
        if missing:
            raise InvalidRequest(
                f"The clip has {frame_count} frames, so keyframe(s) {', '.join(map(str, missing))} do not exist.",
                f"List frame numbers from 1 to {frame_count}.",
            )


def parse_frame_list(text: str) -> tuple[int, ...]:
    """'1, 25,50' -> (1, 25, 50)."""
    try:
        numbers = tuple(sorted({int(part) for part in text.split(",") if part.strip()}))
    except ValueError:
        raise InvalidRequest(
            f"The keyframe list {text!r} is not frame numbers.", "Write it as 1,25,50."
        ) from None
    if not numbers:
        raise InvalidRequest("The keyframe list is empty.", "Write it as 1,25,50.")
    return numbers


def thumbnail(frame: Image.Image) -> np.ndarray:
    """A small grey copy of a frame, 0-1, for comparing frames cheaply."""
    import numpy as np
    from PIL import Image

    grey = frame.convert("L").resize((SCENE_THUMBNAIL, SCENE_THUMBNAIL), Image.Resampling.BILINEAR)
    return np.asarray(grey, dtype=np.float32) / 255


def scene_change(before: np.ndarray, after: np.ndarray) -> float:
    """Mean absolute grey change between two thumbnails (0 = the same, 1 = black to white)."""
    import numpy as np

    return float(np.abs(after - before).mean())


def mean_change(pictures: list[Image.Image]) -> float:
    """Mean absolute per-pixel RGB change (0-1) from each picture to the next, over the sequence."""
    import numpy as np

    arrays = [np.asarray(p.convert("RGB"), dtype=np.float32) / 255 for p in pictures]
    steps = [float(np.abs(b - a).mean()) for a, b in itertools.pairwise(arrays)]
    return sum(steps) / len(steps)


def consistency_ratio(sources: list[Image.Image], stylised: list[Image.Image]) -> float | None:
    """How much the stylised keyframes change from one to the next, relative to how much the source
    keyframes do: near 1 = the style follows the motion only; above = flicker added. None when it
    cannot be told (fewer than two keyframes, or source keyframes that do not change at all)."""
    if len(sources) != len(stylised):
        raise ValueError("one stylised keyframe per source keyframe")
    if len(sources) < 2:
        return None
    source = mean_change(sources)
    if source <= 1e-6:
        return None
    return mean_change(stylised) / source
