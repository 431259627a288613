"""``Analytics``: line crossings, zone presence and occupancy of one stream's tracks.

Contract: call ``update(result)`` once per written ``FrameResult`` of a stream, in frame
order; it returns the events that frame causes (line crossings, then zone exits, entries and
occupancy changes). Decisions use each track's mask (``ground: mask``) or box
(``ground: box``), with hysteresis; a track fires only once it has been in
``min_track_frames`` results, counts each direction of each line once, and keeps that
memory while it is missing (a re-identified track keeps its id), until it has been missing
``forget_after_ms``. ``finish()`` once the stream has ended: every track still inside a
zone leaves it (``reason: end``), so each entry has its exit and dwell. Pure logic, no I/O;
``state_dict``/``load_state_dict`` for resuming.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from vis.analytics.config import AnalyticsConfig
from vis.analytics.events import Event, LineCross, ZoneEnter, ZoneExit, ZoneOccupancy
from vis.analytics.geometry import (
    box_ground_point,
    ground_point,
    overlap_fraction,
    point_in_polygon,
    rasterise,
    side_of_line,
)
from vis.types import FrameResult


@dataclasses.dataclass
class _Track:
    class_id: int
    label: str
    frames: int = 0
    last_ts: float = 0.0
    sides: dict[str, int] = dataclasses.field(default_factory=dict)  # line -> +1 / -1
    counted: set[tuple[str, str]] = dataclasses.field(default_factory=set)  # (line, direction)
    zones: dict[str, tuple[float, float]] = dataclasses.field(default_factory=dict)
    # zone -> (entry timestamp, last timestamp inside)


class Analytics:
    """Events of one stream (see the module docstring).

    Args:
        config: lines, zones and thresholds.
        stream_id: written in every event.
        forget_after_ms: a track missing this long is forgotten (set it at least to the
            tracker's re-identification time, so a re-identified track is never new here).
    """

    def __init__(
        self, config: AnalyticsConfig, *, stream_id: str, forget_after_ms: float = 10_000.0
    ) -> None:
        self.config = config
        self.stream_id = stream_id
        self.forget_after_ms = forget_after_ms
        self._tracks: dict[int, _Track] = {}
        self.line_counts: dict[str, dict[str, int]] = {
            s.name: {"in": 0, "out": 0} for s in config.lines
        }
        self.occupancy: dict[str, int] = {z.name: 0 for z in config.zones}
        self._rasters: dict[str, tuple[np.ndarray, tuple[int, int, int, int]]] = {}
        self._raster_size: tuple[int, int] | None = None
        self._last: tuple[int, float] | None = None  # the last updated frame and its time

    # -- per frame ---------------------------------------------------------------------------
    def update(self, result: FrameResult) -> list[Event]:
        """One written frame -> the events it causes, in the order listed above."""
        cfg = self.config
        ts = float(result.timestamp_ms)
        where = (self.stream_id, int(result.frame_index), ts)
        self._last = (int(result.frame_index), ts)
        crosses: list[Event] = []
        exits: list[Event] = []
        enters: list[Event] = []
        if cfg.zones and cfg.ground == "mask":
            self._ensure_rasters(result.height, result.width)
        d = result.detections
        seen: set[int] = set()
        for i in range(len(d)):
            tid = int(d.track_ids[i])
            if tid < 0 or tid in seen:
                continue
            seen.add(tid)
            cid = int(d.class_ids[i])
            label = result.labels[cid] if 0 <= cid < len(result.labels) else str(cid)
            tr = self._tracks.get(tid)
            if tr is None:
                tr = self._tracks[tid] = _Track(cid, label)
            tr.class_id, tr.label = cid, label
            tr.frames += 1
            tr.last_ts = ts
            ready = tr.frames >= cfg.min_track_frames
            box = d.xyxy[i]
            if cfg.lines:
                point = ground_point(d.masks[i]) if cfg.ground == "mask" else box_ground_point(box)
                if point is not None:
                    margin = max(cfg.line_margin_px, cfg.line_margin_height * (box[3] - box[1]))
                    crosses += self._lines(tid, tr, point, margin, ready, where)
            if ready:
                for zone in cfg.zones:
                    if zone.classes is not None and label not in zone.classes:
                        continue
                    inside = zone.name in tr.zones
                    if cfg.ground == "mask":
                        raster, zbox = self._rasters[zone.name]
                        frac = overlap_fraction(d.masks[i], raster, zbox)
                        now_in = frac >= (
                            cfg.zone_exit_overlap if inside else cfg.zone_enter_overlap
                        )
                    else:
                        now_in = point_in_polygon(zone.polygon, box_ground_point(box))
                    if now_in and not inside:
                        tr.zones[zone.name] = (ts, ts)
                        enters.append(ZoneEnter(*where, zone.name, tid, cid, label))
                    elif now_in:
                        tr.zones[zone.name] = (tr.zones[zone.name][0], ts)
                    elif inside:
                        exits.append(self._exit(tid, tr, zone.name, where, "left"))
        for tid, tr in list(self._tracks.items()):
            if tid in seen:
                continue
            missing = ts - tr.last_ts
            if tr.zones and missing >= cfg.absent_exit_s * 1000.0:
                for name in list(tr.zones):
                    exits.append(self._exit(tid, tr, name, where, "absent"))
            if missing > self.forget_after_ms and not tr.zones:
                del self._tracks[tid]
        return crosses + exits + enters + self._occupancy(where)

    def finish(self) -> list[Event]:
        """The stream ended: every track still inside a zone exits it (``reason: end``, at the
        last updated frame), then the occupancy changes to none. Nothing without a frame."""
        if self._last is None:
            return []
        where = (self.stream_id, *self._last)
        exits: list[Event] = [
            self._exit(tid, tr, name, where, "end")
            for tid, tr in sorted(self._tracks.items())
            for name in list(tr.zones)
        ]
        return exits + self._occupancy(where)

    def _lines(
        self,
        tid: int,
        tr: _Track,
        point: tuple[float, float],
        margin: float,
        ready: bool,
        where: tuple[str, int, float],
    ) -> list[Event]:
        out: list[Event] = []
        for line in self.config.lines:
            if line.classes is not None and tr.label not in line.classes:
                continue
            distance, along = side_of_line(line.points, point)
            side = 1 if distance > margin else -1 if distance < -margin else 0
            before = tr.sides.get(line.name, 0)
            if side == 0 or side == before:
                continue
            tr.sides[line.name] = side
            if before == 0 or not ready or not 0.0 <= along <= 1.0:
                continue  # first side known, a young track, or past the segment's ends
            direction = "in" if side > 0 else "out"
            if (line.name, direction) in tr.counted:
                continue
            tr.counted.add((line.name, direction))
            self.line_counts[line.name][direction] += 1
            count = self.line_counts[line.name][direction]
            out.append(LineCross(*where, line.name, direction, tid, tr.class_id, tr.label, count))
        return out

    def _exit(
        self, tid: int, tr: _Track, zone: str, where: tuple[str, int, float], reason: str
    ) -> ZoneExit:
        entered, last = tr.zones.pop(zone)
        return ZoneExit(*where, zone, tid, tr.class_id, tr.label, last - entered, reason)

    def _occupancy(self, where: tuple[str, int, float]) -> list[Event]:
        out: list[Event] = []
        for zone in self.config.zones:
            ids = tuple(sorted(t for t, tr in self._tracks.items() if zone.name in tr.zones))
            if len(ids) == self.occupancy[zone.name]:
                continue
            self.occupancy[zone.name] = len(ids)
            cap = zone.max_occupancy
            out.append(
                ZoneOccupancy(
                    *where, zone.name, len(ids), ids, cap, cap is not None and len(ids) > cap
                )
            )
        return out

    def _ensure_rasters(self, height: int, width: int) -> None:
        if self._raster_size == (height, width):
            return
        self._rasters = {}
        for zone in self.config.zones:
            raster = rasterise(zone.polygon, height, width)
            ys, xs = np.nonzero(raster.any(axis=1))[0], np.nonzero(raster.any(axis=0))[0]
            zbox = (
                (int(xs[0]), int(ys[0]), int(xs[-1]) + 1, int(ys[-1]) + 1)
                if ys.size
                else (0, 0, 0, 0)
            )
            self._rasters[zone.name] = (raster, zbox)
        self._raster_size = (height, width)

    # -- resuming ----------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """The state as JSON data (for a checkpoint taken after the last updated frame)."""
        return {
            "tracks": [
                {
                    "id": tid,
                    "class_id": tr.class_id,
                    "label": tr.label,
                    "frames": tr.frames,
                    "last_ts": tr.last_ts,
                    "sides": [[k, v] for k, v in tr.sides.items()],
                    "counted": sorted([list(c) for c in tr.counted]),
                    "zones": [[k, a, b] for k, (a, b) in tr.zones.items()],
                }
                for tid, tr in self._tracks.items()
            ],
            "line_counts": [[k, v["in"], v["out"]] for k, v in self.line_counts.items()],
            "occupancy": [[k, v] for k, v in self.occupancy.items()],
            "last": None if self._last is None else list(self._last),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Load a ``state_dict`` of the same configuration."""
        self._tracks = {}
        for t in state["tracks"]:
            self._tracks[int(t["id"])] = _Track(
                int(t["class_id"]),
                str(t["label"]),
                int(t["frames"]),
                float(t["last_ts"]),
                {str(k): int(v) for k, v in t["sides"]},
                {(str(a), str(b)) for a, b in t["counted"]},
                {str(k): (float(a), float(b)) for k, a, b in t["zones"]},
            )
        for name, n_in, n_out in state["line_counts"]:
            if name in self.line_counts:
                self.line_counts[name] = {"in": int(n_in), "out": int(n_out)}
        for name, n in state["occupancy"]:
            if name in self.occupancy:
                self.occupancy[name] = int(n)
        last = state.get("last")
        self._last = None if last is None else (int(last[0]), float(last[1]))
