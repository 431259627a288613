"""Frame sources: video files (anything OpenCV/FFmpeg reads) and folders of images.

Contract: ``open_source(uri)`` validates the input at once and raises ``SourceError`` with a
one-line message naming the path and the fix; iterating the source yields ``Frame``s in
order. Frames that fail to decode mid-stream are skipped and counted in ``stats``
(``corrupt``); the frame index keeps counting, so a gap marks a skipped frame. A stream
that ends well before its declared length is reported in ``stats['truncated']``.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from pathlib import Path

import cv2

from vis.types import Frame

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm"}
VIDEO_HINT = "pass a video file OpenCV/FFmpeg can decode or a folder of images"


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
    """

    def __init__(
        self, path: str | Path, *, stream_id: str | None = None, max_consecutive_failures: int = 25
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
        ok, first = cap.read()
        self.fps = cap.get(cv2.CAP_PROP_FPS) or 0.0
        self.declared_frames = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        cap.release()
        if not ok or first is None:
            raise SourceError(f"video {self.path} has no decodable frame: {VIDEO_HINT}")
        if not (0 < self.fps < 1000):
            self.fps = 25.0
        self.width, self.height = int(first.shape[1]), int(first.shape[0])

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
    """

    def __init__(
        self, path: str | Path, *, fps: float = 25.0, stream_id: str | None = None
    ) -> None:
        self.path = Path(path)
        self.uri = str(path)
        self.stream_id = stream_id or stream_id_for(str(path))
        self.fps = fps
        self.stats = {"frames": 0, "corrupt": 0, "truncated": False}
        self.files = image_files(self.path)
        if not self.files:
            raise SourceError(
                f"folder {self.path} has no images ({', '.join(sorted(IMAGE_SUFFIXES))}): "
                "point --source at a folder of frames or a video file"
            )
        first = None
        for f in self.files:
            first = cv2.imread(str(f), cv2.IMREAD_COLOR)
            if first is not None:
                break
        if first is None:
            raise SourceError(f"folder {self.path}: no image could be decoded: check the files")
        self.height, self.width = first.shape[:2]
        self.declared_frames = len(self.files)

    def __iter__(self) -> Iterator[Frame]:
        for index, f in enumerate(self.files):
            img = cv2.imread(str(f), cv2.IMREAD_COLOR) if f.stat().st_size else None
            if img is None or img.shape[:2] != (self.height, self.width):
                self.stats["corrupt"] += 1
                log.warning("%s: unreadable or wrongly sized image skipped", f)
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


def open_source(uri: str, *, stream_id: str | None = None, fps: float = 25.0):
    """Open a video file or an image folder; raise ``SourceError`` if it is unusable."""
    p = Path(os.path.expanduser(uri))
    if p.is_dir():
        return ImageFolderSource(p, fps=fps, stream_id=stream_id)
    return VideoFileSource(p, stream_id=stream_id)
