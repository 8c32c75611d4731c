"""Video in and out: the frames of a video file (PyAV, which bundles FFmpeg) or a folder of pictures,
and an MP4 written from pictures."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from sfumato.core.errors import InvalidRequest, OutputError

if TYPE_CHECKING:
    from PIL import Image

FRAME_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff"})
DEFAULT_FPS = 24.0
_NOT_CLIPS = frozenset({"tty", "image2", "lavfi"})


@dataclass(frozen=True)
class Clip:
    """A source of frames: a video file or a folder of pictures (taken in name order)."""

    path: Path
    fps: float
    frame_files: tuple[Path, ...] = ()  # a folder's pictures; empty for a video file

    def frames(self) -> Iterator[Image.Image]:
        """Every frame in order, as RGB pictures."""
        if self.frame_files:
            yield from _folder_frames(self.frame_files)
        else:
            yield from _video_frames(self.path)


def open_clip(path: Path, fps: float | None = None) -> Clip:
    """Check that ``path`` is a readable video or a folder with pictures, before anything is written."""
    if path.is_dir():
        files = tuple(sorted(p for p in path.iterdir() if p.suffix.lower() in FRAME_SUFFIXES and p.is_file()))
        if not files:
            raise InvalidRequest(
                f"The folder {str(path)!r} holds no frames.",
                f"Put the frames in it as pictures ({', '.join(sorted(FRAME_SUFFIXES))}), named in order.",
            )
        return Clip(path, fps or DEFAULT_FPS, files)
    if not path.is_file():
        raise InvalidRequest(f"{str(path)!r} does not exist.", "Give a video file or a folder of frames.")
    return Clip(path, fps or _video_fps(path))


def _not_a_video(path: Path) -> InvalidRequest:
    return InvalidRequest(
        f"{str(path)!r} is not a video Sfumato can read.",
        "Give a video file (MP4, MOV, WebM, AVI…) or a folder of frames.",
    )


def _video_fps(path: Path) -> float:
    import av

    try:
        with av.open(str(path)) as container:
            # FFmpeg also "plays" text files (as ANSI art) and single pictures: neither is a clip.
            if (
                not container.streams.video
                or container.format.name in _NOT_CLIPS
                or (container.format.name.endswith("_pipe"))
            ):
                raise _not_a_video(path)
            rate = container.streams.video[0].average_rate
    except (av.FFmpegError, UnicodeDecodeError):
        raise _not_a_video(path) from None
    return float(rate) if rate else DEFAULT_FPS


def _video_frames(path: Path) -> Iterator[Image.Image]:
    import av

    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            for frame in container.decode(stream):
                yield frame.to_image().convert("RGB")
    except av.FFmpegError as error:
        raise InvalidRequest(
            f"The video {str(path)!r} could not be read to the end: {error}.",
            "Re-encode it (e.g. to H.264 MP4) and try again.",
        ) from None


def _folder_frames(files: Iterable[Path]) -> Iterator[Image.Image]:
    from sfumato.core.images import load_image

    for file in files:
        yield load_image(str(file), f"frame {file.name}").convert("RGB")


def write_mp4(path: Path, pictures: Iterable[Image.Image], fps: float) -> None:
    """H.264 (yuv420p, so any player shows it); sides are cropped to even numbers as the codec needs."""
    from fractions import Fraction

    import av

    rate = Fraction(fps).limit_denominator(1001)
    try:
        with av.open(str(path), mode="w") as container:
            stream = None
            for picture in pictures:
                if stream is None:
                    stream = container.add_stream("libx264", rate=rate)
                    stream.width = picture.width - picture.width % 2
                    stream.height = picture.height - picture.height % 2
                    stream.pix_fmt = "yuv420p"
                frame = av.VideoFrame.from_image(picture.crop((0, 0, stream.width, stream.height)))
                container.mux(stream.encode(frame))
            if stream is not None:
                container.mux(stream.encode(None))
    except (av.FFmpegError, OSError) as error:
        path.unlink(missing_ok=True)
        raise OutputError(f"The video {str(path)!r} could not be written: {error}.") from None
