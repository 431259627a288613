"""Result sinks: where ``FrameResult``s go.

Contract: a sink has ``write(result)``, ``flush()`` and ``close()``; ``close()`` flushes and is
idempotent. ``write`` may block (back-pressure) but never silently drops a result; a sink
that cannot deliver raises ``SinkError`` naming the destination.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Protocol, runtime_checkable

import cv2
import numpy as np

from vis.schema import dumps_record
from vis.types import FrameResult

log = logging.getLogger(__name__)


class SinkError(RuntimeError):
    """A sink could not deliver; the message names the destination."""


def safe_name(stream_id: str) -> str:
    """A stream id as a file name: anything but letters, digits, ``-_.`` becomes ``_``."""
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in stream_id)


@runtime_checkable
class Sink(Protocol):
    def write(self, result: FrameResult) -> None: ...

    def flush(self) -> None: ...

    def close(self) -> None: ...


class MemorySink:
    """Keeps every result in a list (tests, notebooks)."""

    def __init__(self) -> None:
        self.results: list[FrameResult] = []
        self.closed = False

    def write(self, result: FrameResult) -> None:
        self.results.append(result)

    def flush(self) -> None:
        pass

    def close(self) -> None:
        self.closed = True


class JsonlSink:
    """``<output>/<stream_id>.jsonl``: one ``vis.frame/1`` line per frame, flushed per line.

    A killed run keeps every frame whose line was written; a torn last line (power loss) is
    detected and removed when the file is opened again with ``resume=True``.
    """

    def __init__(self, output_dir: str | Path, *, fsync_every: int = 0, resume: bool = False) -> None:
        self.output_dir = Path(output_dir)
        self.output_dir.mkdir(parents=True, exist_ok=True)
        self.fsync_every = fsync_every
        self.resume = resume
        self._files: dict[str, object] = {}
        self._count = 0

    def path_for(self, stream_id: str) -> Path:
        return self.output_dir / f"{safe_name(stream_id)}.jsonl"

    def _file(self, stream_id: str):
        f = self._files.get(stream_id)
        if f is None:
            path = self.path_for(stream_id)
            try:
                f = open(path, "a" if self.resume else "w", encoding="utf-8")  # noqa: SIM115
            except OSError as exc:
                raise SinkError(f"cannot write {path}: {exc.strerror}") from exc
            self._files[stream_id] = f
        return f

    def write(self, result: FrameResult) -> None:
        f = self._file(result.stream_id)
        try:
            f.write(dumps_record(result) + "\n")
            f.flush()
            self._count += 1
            if self.fsync_every and self._count % self.fsync_every == 0:
                os.fsync(f.fileno())
        except OSError as exc:
            raise SinkError(f"cannot write {self.path_for(result.stream_id)}: {exc.strerror}") from exc

    def flush(self) -> None:
        for f in self._files.values():
            f.flush()

    def close_stream(self, stream_id: str) -> None:
        """Close one stream's file (a batch job finishing a video)."""
        f = self._files.pop(stream_id, None)
        if f is not None:
            f.close()

    def close(self) -> None:
        for f in self._files.values():
            f.flush()
            f.close()
        self._files.clear()


def track_colour(track_id: int) -> tuple[int, int, int]:
    """A stable, well-spread BGR colour for a track id."""
    hue = (track_id * 0.618033988749895) % 1.0
    hsv = np.uint8([[[int(hue * 179), 200, 255]]])
    b, g, r = cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR)[0, 0]
    return int(b), int(g), int(r)


def render_overlay(image: np.ndarray, result: FrameResult, alpha: float = 0.5) -> np.ndarray:
    """Draw masks (coloured by track id), boxes, ids and labels on a copy of ``image``."""
    out = image.copy()
    d = result.detections
    for i in range(len(d)):
        tid = int(d.track_ids[i])
        col = np.array(track_colour(tid), np.float32)
        m = d.masks[i]
        out[m] = (out[m] * (1 - alpha) + col * alpha).astype(np.uint8)
        x1, y1, x2, y2 = (int(round(v)) for v in d.xyxy[i])
        c = tuple(int(v) for v in col)
        cv2.rectangle(out, (x1, y1), (x2, y2), c, 1)
        cid = int(d.class_ids[i])
        label = result.labels[cid] if cid < len(result.labels) else str(cid)
        cv2.putText(out, f"{tid} {label}", (x1, max(10, y1 - 3)), cv2.FONT_HERSHEY_SIMPLEX,
                    0.4, c, 1, cv2.LINE_AA)
    tag = "K" if result.keyframe else "P"
    cv2.putText(out, f"{result.frame_index} {tag}", (4, 14), cv2.FONT_HERSHEY_SIMPLEX, 0.45,
                (255, 255, 255), 1, cv2.LINE_AA)
    return out


class OverlayVideoSink:
    """``<output>/<stream_id>.overlay.mp4``: the frames with masks and ids drawn.

    Needs the frame image, so it is written with ``write_frame(image, result)``; plain
    ``write(result)`` (no image) is ignored.
    """

    def __init__(self, output_dir: str | Path, *, fps: float = 25.0, fourcc: str = "mp4v") -> None:
        self.output_dir = Path(output_dir)
        self.output_dir.mkdir(parents=True, exist_ok=True)
        self.fps = fps
        self.fourcc = fourcc
        self._writers: dict[str, cv2.VideoWriter] = {}
        self._fps: dict[str, float] = {}

    def set_fps(self, stream_id: str, fps: float) -> None:
        """Frame rate of one stream's video (default: the sink's ``fps``)."""
        self._fps[stream_id] = fps

    def path_for(self, stream_id: str) -> Path:
        return self.output_dir / f"{safe_name(stream_id)}.overlay.mp4"

    def write(self, result: FrameResult) -> None:  # no image: nothing to draw on
        pass

    def write_frame(self, image: np.ndarray, result: FrameResult) -> None:
        w = self._writers.get(result.stream_id)
        if w is None:
            path = self.path_for(result.stream_id)
            w = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*self.fourcc),
                                self._fps.get(result.stream_id, self.fps),
                                (image.shape[1], image.shape[0]))
            if not w.isOpened():
                raise SinkError(f"cannot open video writer for {path} (codec {self.fourcc})")
            self._writers[result.stream_id] = w
        w.write(render_overlay(image, result))

    def flush(self) -> None:
        pass

    def close_stream(self, stream_id: str) -> None:
        w = self._writers.pop(stream_id, None)
        if w is not None:
            w.release()

    def close(self) -> None:
        for w in self._writers.values():
            w.release()
        self._writers.clear()
