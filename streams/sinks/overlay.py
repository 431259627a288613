"""``OverlayVideoSink``: ``<output>/<stream_id>.overlay.mp4``, the frames with masks and ids drawn.

Contract: ``write(result, image)`` draws ``result`` on a copy of ``image`` and appends it to
the stream's video (a result without an image is not drawn); ``end_stream`` finishes one
stream's file, ``close`` all of them.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from streams.sinks.base import Sink, SinkError
from streams.sinks.paths import overlay_path
from vis.types import FrameResult


def track_colour(track_id: int) -> tuple[int, int, int]:
    """A stable, well-spread BGR colour for a track id."""
    hue = (track_id * 0.618033988749895) % 1.0
    hsv = np.uint8([[[int(hue * 179), 200, 255]]])
    b, g, r = cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR)[0, 0]
    return int(b), int(g), int(r)


def render_overlay(image: np.ndarray, result: FrameResult, alpha: float = 0.5) -> np.ndarray:
    """Draw masks (coloured by track id), boxes, ids and labels on a copy of ``image``.

    Args:
        image: (H, W, 3) uint8 BGR.
        result: the frame's tracked instances.
        alpha: mask opacity.

    Returns:
        (H, W, 3) uint8 BGR.
    """
    out = image.copy()
    d = result.detections
    for i in range(len(d)):
        tid = int(d.track_ids[i])
        col = np.array(track_colour(tid), np.float32)
        bm = d.masks[i]
        view = out[bm.y0 : bm.y1, bm.x0 : bm.x1]  # only the mask's box is touched
        m = bm.bits
        view[m] = (view[m] * (1 - alpha) + col * alpha).astype(np.uint8)
        x1, y1, x2, y2 = (int(round(v)) for v in d.xyxy[i])
        c = tuple(int(v) for v in col)
        cv2.rectangle(out, (x1, y1), (x2, y2), c, 1)
        cid = int(d.class_ids[i])
        label = result.labels[cid] if cid < len(result.labels) else str(cid)
        cv2.putText(
            out,
            f"{tid} {label}",
            (x1, max(10, y1 - 3)),
            cv2.FONT_HERSHEY_SIMPLEX,
            0.4,
            c,
            1,
            cv2.LINE_AA,
        )
    tag = "K" if result.keyframe else "P"
    cv2.putText(
        out,
        f"{result.frame_index} {tag}",
        (4, 14),
        cv2.FONT_HERSHEY_SIMPLEX,
        0.45,
        (255, 255, 255),
        1,
        cv2.LINE_AA,
    )
    return out


class OverlayVideoSink(Sink):
    """One overlay video per stream, drawn on the image passed to ``write``.

    Args:
        output_dir: folder of the videos (created).
        fps: frame rate of a stream's video unless ``set_fps`` gave one.
        fourcc: OpenCV codec code.
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
        return overlay_path(self.output_dir, stream_id)

    def write(self, result: FrameResult, image: np.ndarray | None = None) -> None:
        if image is None:  # nothing to draw on
            return
        w = self._writers.get(result.stream_id)
        if w is None:
            path = self.path_for(result.stream_id)
            w = cv2.VideoWriter(
                str(path),
                cv2.VideoWriter_fourcc(*self.fourcc),
                self._fps.get(result.stream_id, self.fps),
                (image.shape[1], image.shape[0]),
            )
            if not w.isOpened():
                raise SinkError(f"cannot open video writer for {path} (codec {self.fourcc})")
            self._writers[result.stream_id] = w
        w.write(render_overlay(image, result))

    def end_stream(self, stream_id: str) -> None:
        w = self._writers.pop(stream_id, None)
        if w is not None:
            w.release()

    def close(self) -> None:
        for w in self._writers.values():
            w.release()
        self._writers.clear()
