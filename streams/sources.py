"""Frame sources: video files (anything OpenCV/FFmpeg reads) and folders of images.

Contract: ``open_source(uri)`` validates the input at once and raises ``SourceError`` with a
one-line message naming the path and the fix; iterating the source yields ``Frame``s in
order. Frames that fail to decode mid-stream are skipped and counted in ``stats``
(``corrupt``); the frame index keeps counting, so a gap marks a skipped frame. A stream
that ends well before its declared length is reported in ``stats['truncated']``.

Frame sizes are checked against ``max_pixels`` (``frame.max_pixels``) before a frame is
decoded: a video's from its stream header (over it: ``SourceError``, the whole input), an
image's from its file header (over it: skipped, counted in ``stats['oversized']`` and, like
every skipped frame, in ``stats['corrupt']``). A
folder's frame size is the size most of its images declare (the first such image decides
ties), so one odd image, first or not, is the one skipped; images of another size are
skipped and counted in ``stats['corrupt']``.
"""

from __future__ import annotations

import logging
import os
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import cv2

from streams.image_header import header_size
from vis.types import Frame

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm"}
VIDEO_HINT = "pass a video file OpenCV/FFmpeg can decode or a folder of images"
#: default of ``frame.max_pixels``: an 8K frame (7680 x 4320)
DEFAULT_MAX_PIXELS = 7680 * 4320


class SourceError(RuntimeError):
    """The source cannot be opened or read; the message names it and the fix."""


def stream_id_for(uri: str) -> str:
    p = Path(uri)
    return p.stem if p.suffix else p.name or "stream"


class VideoFileSource:
    """Frames of a video file.

    Args:
        path: the file.
        stream_id: id for the results (default: file stem).
        max_consecutive_failures: decode failures in a row, before the declared end,
            that end the stream as truncated.
        max_pixels: the largest frame (width x height) the video may declare.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        stream_id: str | None = None,
        max_consecutive_failures: int = 25,
        max_pixels: int = DEFAULT_MAX_PIXELS,
    ) -> None:
        self.path = Path(path)
        self.uri = str(path)
        self.stream_id = stream_id or stream_id_for(str(path))
        self.max_consecutive_failures = max_consecutive_failures
        self.stats = {"frames": 0, "corrupt": 0, "truncated": False}
        if not self.path.exists():
            raise SourceError(f"video {self.path} not found: check the path ({VIDEO_HINT})")
        if self.path.is_file() and self.path.stat().st_size == 0:
            raise SourceError(f"video {self.path} is empty (0 bytes): re-export or re-copy it")
        cap = self._open()
        declared = (int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)))
        if declared[0] * declared[1] > max_pixels:
            cap.release()
            raise SourceError(
                f"video {self.path} is {declared[0]}x{declared[1]}, over frame.max_pixels="
                f"{max_pixels}: scale it down (ffmpeg -vf scale=...) or raise frame.max_pixels"
            )
        ok, first = cap.read()
        self.fps = cap.get(cv2.CAP_PROP_FPS) or 0.0
        self.declared_frames = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        cap.release()
        if not ok or first is None:
            raise SourceError(f"video {self.path} has no decodable frame: {VIDEO_HINT}")
        if not (0 < self.fps < 1000):
            self.fps = 25.0
        self.width, self.height = int(first.shape[1]), int(first.shape[0])
        if self.width * self.height > max_pixels:  # a header that understated the size
            raise SourceError(
                f"video {self.path} is {self.width}x{self.height}, over frame.max_pixels="
                f"{max_pixels}: scale it down (ffmpeg -vf scale=...) or raise frame.max_pixels"
            )

    def _open(self) -> cv2.VideoCapture:
        cap = cv2.VideoCapture(str(self.path), cv2.CAP_FFMPEG)
        if not cap.isOpened():
            cap.release()
            raise SourceError(
                f"video {self.path} cannot be opened (not a video or unsupported "
                f"codec): {VIDEO_HINT}"
            )
        return cap

    def __iter__(self) -> Iterator[Frame]:
        cap = self._open()
        index = 0
        failures = 0
        try:
            while True:
                if not cap.grab():
                    if (
                        self.declared_frames
                        and index < self.declared_frames - 1
                        and failures < self.max_consecutive_failures
                    ):
                        failures += 1
                        self.stats["corrupt"] += 1
                        index += 1
                        continue
                    break
                ok, img = cap.retrieve()
                if not ok or img is None or img.ndim != 3:
                    self.stats["corrupt"] += 1
                    index += 1
                    continue
                if img.shape[:2] != (self.height, self.width):
                    self.stats["corrupt"] += 1
                    log.warning(
                        "%s frame %d has size %s, expected %dx%d: skipped",
                        self.path,
                        index,
                        img.shape[1::-1],
                        self.width,
                        self.height,
                    )
                    index += 1
                    continue
                failures = 0
                self.stats["frames"] += 1
                yield Frame(self.stream_id, index, index * 1000.0 / self.fps, img)
                index += 1
        finally:
            cap.release()
        # trailing failures were not corrupt frames: the stream ended there
        self.stats["corrupt"] -= failures
        decoded_until = index - failures
        if self.declared_frames and decoded_until < 0.9 * self.declared_frames - 1:
            self.stats["truncated"] = True
            log.warning(
                "video %s ended after %d of %d declared frames (truncated?)",
                self.path,
                decoded_until,
                self.declared_frames,
            )


class ImageFolderSource:
    """Images of a folder, sorted by name (natural order for numbered names).

    Args:
        path: the folder.
        fps: frame rate used for timestamps.
        stream_id: id for the results (default: folder name).
        max_pixels: the largest image (width x height) decoded; larger ones are skipped.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        fps: float = 25.0,
        stream_id: str | None = None,
        max_pixels: int = DEFAULT_MAX_PIXELS,
    ) -> None:
        self.path = Path(path)
        self.uri = str(path)
        self.stream_id = stream_id or stream_id_for(str(path))
        self.fps = fps
        self.max_pixels = max_pixels
        self.stats = {"frames": 0, "corrupt": 0, "oversized": 0, "truncated": False}
        self.files = image_files(self.path)
        if not self.files:
            raise SourceError(
                f"folder {self.path} has no images ({', '.join(sorted(IMAGE_SUFFIXES))}): "
                "point --source at a folder of frames or a video file"
            )
        sizes = [header_size(f) for f in self.files]
        fitting = [s for s in sizes if s is not None and s[0] * s[1] <= max_pixels]
        if not fitting and any(s is not None for s in sizes):
            w, h = next(s for s in sizes if s is not None)
            raise SourceError(
                f"folder {self.path}: every image is over frame.max_pixels={max_pixels} "
                f"(the first is {w}x{h}): scale the images down or raise frame.max_pixels"
            )
        # the size most images declare (ties: the earliest) is the stream's
        votes = Counter(fitting)
        size = max(votes, key=lambda s: (votes[s], -fitting.index(s)), default=None)
        first = None
        for f, s in zip(self.files, sizes):
            if s == size:
                first = cv2.imread(str(f), cv2.IMREAD_COLOR)
                if first is not None:
                    break
        if first is None:
            raise SourceError(f"folder {self.path}: no image could be decoded: check the files")
        self.height, self.width = first.shape[:2]
        self.declared_frames = len(self.files)

    def __iter__(self) -> Iterator[Frame]:
        for index, f in enumerate(self.files):
            size = header_size(f)
            if size is not None and size[0] * size[1] > self.max_pixels:
                self.stats["oversized"] += 1
                self.stats["corrupt"] += 1  # every skipped frame is counted there too
                log.warning(
                    "%s: %dx%d is over frame.max_pixels=%d: skipped (not decoded)",
                    f,
                    *size,
                    self.max_pixels,
                )
                continue
            if size is None or size[0] * size[1] != self.width * self.height:
                img = None  # an unreadable header, or another frame size: not decoded
            else:
                img = cv2.imread(str(f), cv2.IMREAD_COLOR)
            if img is None or img.shape[:2] != (self.height, self.width):
                self.stats["corrupt"] += 1
                log.warning(
                    "%s: unreadable or not %dx%d like the folder's frames: skipped",
                    f,
                    self.width,
                    self.height,
                )
                continue
            self.stats["frames"] += 1
            yield Frame(self.stream_id, index, index * 1000.0 / self.fps, img)


def image_files(folder: Path) -> list[Path]:
    """A folder's images in the order a folder source reads them (natural name order)."""
    return sorted(
        (p for p in Path(folder).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES), key=_natural_key
    )


def _natural_key(p: Path) -> list:
    import re

    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", p.name)]


def open_source(
    uri: str,
    *,
    stream_id: str | None = None,
    fps: float = 25.0,
    max_pixels: int = DEFAULT_MAX_PIXELS,
):
    """Open a video file or an image folder; raise ``SourceError`` if it is unusable
    (a video over ``max_pixels`` included)."""
    p = Path(os.path.expanduser(uri))
    if p.is_dir():
        return ImageFolderSource(p, fps=fps, stream_id=stream_id, max_pixels=max_pixels)
    return VideoFileSource(p, stream_id=stream_id, max_pixels=max_pixels)
