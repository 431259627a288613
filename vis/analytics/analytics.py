"""``Analytics``: line crossings, zone presence and occupancy of one stream's tracks.

Contract: call ``update(result)`` once per written ``FrameResult`` of a stream, in frame
order; it returns the events that frame causes (line crossings, then zone exits, entries and
occupancy changes). Decisions use each track's mask (``ground: mask``) or box
(``ground: box``), with hysteresis; a track fires only once it has been in
``min_track_frames`` results, counts each direction of each line once, and keeps that
memory while it is missing (a re-identified track keeps its id), until it has been missing
``forget_after_ms``. ``finish()`` once the stream has ended: every track still inside a
zone leaves it (``reason: end``), so each entry has its exit and dwell. Pure logic, no I/O;
``state_dict``/``load_state_dict`` for resuming: a state read back from a checkpoint is
untrusted and ``check_state`` refuses (``ValueError``, one line) any this code could not have
written for the same configuration, before anything is built from it.
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
from vis.schema import MAX_CLASS_ID, MAX_INDEX, MAX_LABEL_CHARS, finite_number, shown
from vis.types import FrameResult

#: limits of a checkpointed state (docs/limits.md); per track, its sides, counted crossings
#: and zones are bounded by the configuration's lines and zones
MAX_STATE_TRACKS = 100_000


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
        """Load a ``state_dict`` of the same configuration.

        Raises:
            ValueError: ``analytics state: <what is wrong>`` (``check_state``); nothing is
                changed then.
        """
        check_state(state, self.config)
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


def check_state(state: object, config: AnalyticsConfig) -> None:
    """An analytics state read from a checkpoint (untrusted) is one ``state_dict`` writes for
    ``config``: at most ``MAX_STATE_TRACKS`` tracks of distinct ids in [0, 2^53], class ids in
    [0, 65535], labels of at most 200 characters, frame counts in [0, 2^53], finite times;
    sides (+1/-1), counted crossings (``in``/``out``) and zone stays (finite entry and last
    times) only of the configured lines and zones, each once; line counts and occupancies
    integers >= 0 of configured lines and zones; the last frame an index with a finite time,
    or none. Checked before anything is built from it.

    Raises:
        ValueError: ``analytics state: <what is wrong>`` (one line).
    """

    def refuse(why: str) -> ValueError:
        return ValueError(f"analytics state: {why}")

    def is_int(v: object, lo: int, hi: int) -> bool:
        return isinstance(v, (int, np.integer)) and not isinstance(v, bool) and lo <= v <= hi

    def is_time(v: object) -> bool:  # finite (an int past the float range is not)
        number = isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool)
        return number and finite_number(v)

    def entries(value: object, size: int, limit: int, what: str) -> list[list]:
        """``value``: a list of at most ``limit`` lists of ``size`` items, else refused."""
        if not isinstance(value, list) or len(value) > limit:
            raise refuse(f"{what} is not a list of at most {limit} entries")
        for entry in value:
            if not isinstance(entry, list) or len(entry) != size:
                raise refuse(f"{what} holds {shown(entry)}, not a list of {size} values")
        return value

    def names(rows: list[list], allowed: set[str], what: str) -> None:
        """The first item of each row: a distinct name of ``allowed``."""
        seen = [row[0] for row in rows]
        known = all(isinstance(n, str) and n in allowed for n in seen)
        if not known or len(set(seen)) != len(seen):
            raise refuse(f"{what} names {shown(seen)}, not distinct configured names")

    lines, zones = {s.name for s in config.lines}, {z.name for z in config.zones}
    if not isinstance(state, dict):
        raise refuse("not a mapping")
    tracks = state.get("tracks")
    if not isinstance(tracks, list) or len(tracks) > MAX_STATE_TRACKS:
        raise refuse(f"tracks is not a list of at most {MAX_STATE_TRACKS} tracks")
    ids: set[int] = set()
    for t in tracks:
        if not isinstance(t, dict) or not is_int(t.get("id"), 0, MAX_INDEX) or t["id"] in ids:
            raise refuse("tracks hold an entry without an id of its own")
        tid = int(t["id"])
        ids.add(tid)
        label = t.get("label")
        if not (
            is_int(t.get("class_id"), 0, MAX_CLASS_ID)
            and isinstance(label, str)
            and len(label) <= MAX_LABEL_CHARS
            and is_int(t.get("frames"), 0, MAX_INDEX)
            and is_time(t.get("last_ts"))
        ):
            raise refuse(f"track {tid} has no class id, label, frame count or finite time")
        sides = entries(t.get("sides"), 2, len(lines), f"track {tid} sides")
        names(sides, lines, f"track {tid} sides")
        if not all(is_int(side, -1, 1) and side != 0 for _, side in sides):
            raise refuse(f"track {tid} sides are not +1 or -1")
        counted = entries(t.get("counted"), 2, 2 * len(lines), f"track {tid} counted")
        if not all(
            isinstance(n, str) and n in lines and isinstance(d, str) and d in ("in", "out")
            for n, d in counted
        ):
            raise refuse(f"track {tid} counted holds a crossing of no configured line")
        stays = entries(t.get("zones"), 3, len(zones), f"track {tid} zones")
        names(stays, zones, f"track {tid} zones")
        if not all(is_time(a) and is_time(b) for _, a, b in stays):
            raise refuse(f"track {tid} zones hold a stay without its finite times")
    counts = entries(state.get("line_counts"), 3, len(lines), "line_counts")
    names(counts, lines, "line_counts")
    if not all(is_int(v, 0, MAX_INDEX) for _, *both in counts for v in both):
        raise refuse("line_counts are not integers >= 0")
    occupancy = entries(state.get("occupancy"), 2, len(zones), "occupancy")
    names(occupancy, zones, "occupancy")
    if not all(is_int(n, 0, MAX_STATE_TRACKS) for _, n in occupancy):
        raise refuse(f"occupancy is not an integer in [0, {MAX_STATE_TRACKS}]")
    last = state.get("last")
    if last is not None and not (
        isinstance(last, list)
        and len(last) == 2
        and is_int(last[0], 0, MAX_INDEX)
        and is_time(last[1])
    ):
        raise refuse(f"last is {shown(last)}, not a frame index and its time")
