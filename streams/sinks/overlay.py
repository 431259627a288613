"""``OverlayVideoSink``: ``<output>/<stream_id>.overlay.mp4``, the frames with masks and ids drawn.

Contract: ``write(result, image)`` draws ``result`` on a copy of ``image`` and appends it to
the stream's video (a result without an image is not drawn); with ``analytics``, its lines
and zones are drawn too, with the running counts taken from the events (``write_events``);
``end_stream`` finishes one stream's file, ``close`` all of them. A video that cannot be
written (its writer does not open, a frame is refused, or the closed file does not hold every
frame drawn: a full disk, a file size limit) does not stop the run: that stream's video is
given up and its one-line ``SinkError`` kept in ``failures``, for the run to report.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from streams.sinks.base import Sink, SinkError
from streams.sinks.paths import overlay_path
from vis.analytics import AnalyticsConfig, Event, LineCross, ZoneOccupancy
from vis.types import FrameResult

LINE_COLOUR = (0, 215, 255)  # BGR amber
ZONE_COLOUR = (255, 160, 0)  # BGR sky blue
ALERT_COLOUR = (40, 40, 230)  # BGR red: an overcrowded zone


@dataclasses.dataclass
class AnalyticsCounts:
    """Running counts of one stream, as the events report them."""

    lines: dict[str, dict[str, int]] = dataclasses.field(default_factory=dict)
    zones: dict[str, tuple[int, bool]] = dataclasses.field(default_factory=dict)

    def add(self, event: Event) -> None:
        if isinstance(event, LineCross):
            self.lines.setdefault(event.line, {"in": 0, "out": 0})[event.direction] = event.count
        elif isinstance(event, ZoneOccupancy):
            self.zones[event.zone] = (event.count, event.overcrowded)


def _label(out: np.ndarray, text: str, org: tuple[int, int], colour: tuple[int, int, int]) -> None:
    """``colour`` text on a black box (``org`` = the text's bottom-left), readable on any
    background and over the boxes' own labels; kept inside the image."""
    (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, 0.5, 1)
    h, w = out.shape[:2]
    x = min(max(org[0], 3), max(w - tw - 3, 3))
    y = min(max(org[1], th + 3), h - base - 3)
    cv2.rectangle(out, (x - 3, y - th - 3), (x + tw + 3, y + base + 2), (0, 0, 0), -1)
    cv2.putText(out, text, (x, y), cv2.FONT_HERSHEY_SIMPLEX, 0.5, colour, 1, cv2.LINE_AA)


def draw_analytics(out: np.ndarray, config: AnalyticsConfig, counts: AnalyticsCounts) -> None:
    """Draw zones (outline, light fill, name and occupancy) and lines (with an arrow on the
    ``in`` side and their in/out counts) on ``out`` in place.

    Args:
        out: (H, W, 3) uint8 BGR.
        config: the lines and zones.
        counts: the running counts.
    """
    for zone in config.zones:
        pts = np.round(np.asarray(zone.polygon, np.float64)).astype(np.int32)
        n, alert = counts.zones.get(zone.name, (0, False))
        col = ALERT_COLOUR if alert else ZONE_COLOUR
        x0, y0 = pts.min(axis=0)
        x1, y1 = pts.max(axis=0) + 1
        view = out[y0:y1, x0:x1]
        fill = view.copy()
        cv2.fillPoly(fill, [pts - [x0, y0]], col)
        cv2.addWeighted(fill, 0.18, view, 0.82, 0, dst=view)
        cv2.polylines(out, [pts], True, col, 2, cv2.LINE_AA)
        cap = "" if zone.max_occupancy is None else f"/{zone.max_occupancy}"
        top = pts[np.argmin(pts[:, 1])]  # above the zone's highest corner
        _label(out, f"{zone.name}: {n}{cap}", (int(top[0]) + 4, int(top[1]) - 8), col)
    for line in config.lines:
        (ax, ay), (bx, by) = line.points
        a, b = (int(round(ax)), int(round(ay))), (int(round(bx)), int(round(by)))
        cv2.line(out, a, b, LINE_COLOUR, 2, cv2.LINE_AA)
        length = max(np.hypot(bx - ax, by - ay), 1.0)
        mx, my = (ax + bx) / 2, (ay + by) / 2
        nx, ny = -(by - ay) / length, (bx - ax) / length  # the right-hand side: "in"
        tip = (int(round(mx + 18 * nx)), int(round(my + 18 * ny)))
        cv2.arrowedLine(
            out, (int(round(mx)), int(round(my))), tip, LINE_COLOUR, 2, cv2.LINE_AA, 0, 0.4
        )
        c = counts.lines.get(line.name, {"in": 0, "out": 0})
        text = f"{line.name} in {c['in']} out {c['out']}"
        _label(out, text, (a[0] + 4, a[1] + 20), LINE_COLOUR)


def track_colour(track_id: int) -> tuple[int, int, int]:
    """A stable, well-spread BGR colour for a track id."""
    hue = (track_id * 0.618033988749895) % 1.0
    hsv = np.uint8([[[int(hue * 179), 200, 255]]])
    b, g, r = cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR)[0, 0]
    return int(b), int(g), int(r)


def render_overlay(
    image: np.ndarray,
    result: FrameResult,
    alpha: float = 0.5,
    *,
    analytics: AnalyticsConfig | None = None,
    counts: AnalyticsCounts | None = None,
) -> np.ndarray:
    """Draw masks (coloured by track id), boxes, ids and labels on a copy of ``image``, and
    the analytics lines and zones with their counts when ``analytics`` is given.

    Args:
        image: (H, W, 3) uint8 BGR.
        result: the frame's tracked instances.
        alpha: mask opacity.
        analytics: the lines and zones to draw (None: none).
        counts: their running counts (None: zeros).

    Returns:
        (H, W, 3) uint8 BGR.
    """
    out = image.copy()
    if analytics is not None:
        draw_analytics(out, analytics, counts or AnalyticsCounts())
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
        analytics: lines and zones to draw with their running counts (None: none).
    """

    def __init__(
        self,
        output_dir: str | Path,
        *,
        fps: float = 25.0,
        fourcc: str = "mp4v",
        analytics: AnalyticsConfig | None = None,
    ) -> None:
        self.analytics = analytics
        self._counts: dict[str, AnalyticsCounts] = {}
        self.output_dir = Path(output_dir)
        self.output_dir.mkdir(parents=True, exist_ok=True)
        self.fps = fps
        self.fourcc = fourcc
        self._writers: dict[str, cv2.VideoWriter] = {}
        self._fps: dict[str, float] = {}
        self._drawn: dict[str, int] = {}  # frames handed to each open writer
        #: stream id -> why its video could not be written (the video is given up)
        self.failures: dict[str, SinkError] = {}

    def set_fps(self, stream_id: str, fps: float) -> None:
        """Frame rate of one stream's video (default: the sink's ``fps``)."""
        self._fps[stream_id] = fps

    def path_for(self, stream_id: str) -> Path:
        return overlay_path(self.output_dir, stream_id)

    def write(self, result: FrameResult, image: np.ndarray | None = None) -> None:
        if image is None or result.stream_id in self.failures:  # nothing to draw, given up
            return
        stream_id = result.stream_id
        w = self._writers.get(stream_id)
        if w is None:
            path = self.path_for(stream_id)
            w = cv2.VideoWriter(
                str(path),
                cv2.VideoWriter_fourcc(*self.fourcc),
                self._fps.get(stream_id, self.fps),
                (image.shape[1], image.shape[0]),
            )
            if not w.isOpened():
                self._fail(stream_id, *self._open_failure(path))
                return
            self._writers[stream_id] = w
            self._drawn[stream_id] = 0
        frame = render_overlay(
            image, result, analytics=self.analytics, counts=self._counts.get(stream_id)
        )
        try:
            w.write(frame)
        except cv2.error as exc:  # e.g. a frame of another size than the video's
            self._finish(stream_id)
            msg = str(exc).strip().splitlines()[-1]
            self._fail(
                stream_id,
                f"OpenCV refused frame {result.frame_index} ({msg})",
                "set sinks.overlay=false to run without it",
            )
            return
        self._drawn[stream_id] += 1

    def _open_failure(self, path: Path) -> tuple[str, str]:
        """Why the writer of ``path`` did not open, and the fix."""
        again = "and run again with --restart"
        if path.is_dir():
            return "a folder is in the way", f"remove it (or choose another --output) {again}"
        if not os.access(path.parent, os.W_OK):
            return "its folder is not writable", f"make it writable {again}"
        return (
            f"OpenCV could not open a {self.fourcc} video writer",
            f"use an OpenCV whose FFmpeg has that encoder {again}, or set sinks.overlay=false",
        )

    def _fail(self, stream_id: str, why: str, fix: str) -> None:
        self.failures[stream_id] = SinkError(
            f"cannot write the overlay video {self.path_for(stream_id)}: {why}; {fix}"
        )

    def _finish(self, stream_id: str) -> None:
        """Close one stream's video and check that it holds every frame drawn (OpenCV does
        not report a failed write: the file is read back)."""
        w = self._writers.pop(stream_id, None)
        drawn = self._drawn.pop(stream_id, 0)
        if w is None:
            return
        w.release()
        cap = cv2.VideoCapture(str(self.path_for(stream_id)))
        readable = max(int(cap.get(cv2.CAP_PROP_FRAME_COUNT)), 0) if cap.isOpened() else 0
        cap.release()
        if readable < drawn:
            self._fail(
                stream_id,
                f"it holds {readable} of the {drawn} frames drawn (a full disk, a file size "
                "limit?)",
                "make room and run again with --restart",
            )

    def write_events(self, events: Sequence[Event]) -> None:
        for event in events:
            self._counts.setdefault(event.stream_id, AnalyticsCounts()).add(event)

    def end_stream(self, stream_id: str) -> None:
        self._counts.pop(stream_id, None)
        self._finish(stream_id)

    def close(self) -> None:
        for stream_id in list(self._writers):
            self._finish(stream_id)
