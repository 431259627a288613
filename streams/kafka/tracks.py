"""Tracks rebuilt from ``vis.frame`` records: live started/ended events and timelines.

Contract: ``tracked_instances(record)`` is the one rule for which instances of a record
make up tracks (track id >= 0, the first instance of an id); ``TrackEvents`` turns each
stream's records, in order, into ``vis.track/1`` started/ended events (the producer side);
``TrackTimelines`` accumulates per-track timelines from records read back, in any order
(the consumer side). Pure logic, no I/O.
"""

from __future__ import annotations

import dataclasses
from typing import Any

TRACK_SCHEMA = "vis.track/1"


def tracked_instances(record: dict[str, Any]) -> dict[int, dict[str, Any]]:
    """Track id -> instance, for the instances of one record that belong to a track.

    Unassigned instances (track_id -1 or missing) are left out; an id that repeats within
    the record keeps its first instance. Order: as in the record.
    """
    out: dict[int, dict[str, Any]] = {}
    for inst in record["instances"]:
        tid = int(inst.get("track_id", -1))
        if tid >= 0 and tid not in out:
            out[tid] = inst
    return out


# -- live events (producer side) ----------------------------------------------------------------
@dataclasses.dataclass
class _TrackState:
    class_id: int
    label: str
    first_frame: int
    last_frame: int
    first_timestamp_ms: float
    last_timestamp_ms: float
    frame_count: int = 1
    missed: int = 0


class TrackEvents:
    """Derives ``vis.track/1`` started/ended events from each stream's sequence of records.

    A track starts on the first record that contains it and ends once it has been absent
    from ``end_after`` consecutive records of its stream, or when the stream ends.
    Unassigned instances (track_id -1) are ignored. Pure logic, no I/O.
    """

    def __init__(self, end_after: int) -> None:
        self.end_after = end_after
        self._streams: dict[str, dict[int, _TrackState]] = {}

    def update(self, record: dict[str, Any]) -> list[dict[str, Any]]:
        """One ``vis.frame`` dict -> the events it causes (started first, then ended)."""
        sid, fi, ts = record["stream_id"], record["frame_index"], record["timestamp_ms"]
        tracks = self._streams.setdefault(sid, {})
        events = []
        present = tracked_instances(record)
        for tid, inst in present.items():
            st = tracks.get(tid)
            if st is None:
                st = tracks[tid] = _TrackState(
                    class_id=int(inst["class_id"]),
                    label=str(inst["label"]),
                    first_frame=fi,
                    last_frame=fi,
                    first_timestamp_ms=ts,
                    last_timestamp_ms=ts,
                )
                events.append(self._event("started", sid, tid, st, None))
            else:
                st.last_frame, st.last_timestamp_ms = fi, ts
                st.frame_count += 1
                st.missed = 0
        for tid in [t for t in tracks if t not in present]:
            st = tracks[tid]
            st.missed += 1
            if st.missed >= self.end_after:
                events.append(self._event("ended", sid, tid, tracks.pop(tid), "absent"))
        return events

    def end_stream(self, stream_id: str, reason: str = "stream_end") -> list[dict[str, Any]]:
        """End every open track of ``stream_id``."""
        tracks = self._streams.pop(stream_id, {})
        return [self._event("ended", stream_id, tid, st, reason) for tid, st in tracks.items()]

    def end_all(self, reason: str = "closed") -> list[dict[str, Any]]:
        return [e for sid in list(self._streams) for e in self.end_stream(sid, reason)]

    @staticmethod
    def _event(
        kind: str, sid: str, tid: int, st: _TrackState, reason: str | None
    ) -> dict[str, Any]:
        ev = {
            "schema": TRACK_SCHEMA,
            "event": kind,
            "stream_id": sid,
            "track_id": tid,
            "class_id": st.class_id,
            "label": st.label,
            "first_frame": st.first_frame,
            "last_frame": st.last_frame,
            "frame_count": st.frame_count,
            "first_timestamp_ms": st.first_timestamp_ms,
            "last_timestamp_ms": st.last_timestamp_ms,
        }
        if reason is not None:
            ev["reason"] = reason
        return ev


# -- timelines (consumer side) -----------------------------------------------------------------
@dataclasses.dataclass
class Timeline:
    """One track's presence over a stream: frames (sorted), boxes and scores per frame."""

    stream_id: str
    track_id: int
    class_id: int
    label: str
    frames: list[int] = dataclasses.field(default_factory=list)
    boxes: list[list[float]] = dataclasses.field(default_factory=list)
    scores: list[float] = dataclasses.field(default_factory=list)

    @property
    def first_frame(self) -> int:
        return self.frames[0]

    @property
    def last_frame(self) -> int:
        return self.frames[-1]

    @property
    def frame_count(self) -> int:
        return len(self.frames)


class TrackTimelines:
    """Accumulates per-track timelines from frame records (any order, repeated frames count
    once)."""

    def __init__(self) -> None:
        self._tracks: dict[tuple[str, int], dict[int, tuple[list[float], float]]] = {}
        self._meta: dict[tuple[str, int], tuple[int, str]] = {}

    def add(self, record: dict[str, Any]) -> None:
        sid, fi = record["stream_id"], record["frame_index"]
        for tid, inst in tracked_instances(record).items():
            key = (sid, tid)
            self._meta.setdefault(
                key, (int(inst["class_id"]), str(inst.get("label", inst["class_id"])))
            )
            self._tracks.setdefault(key, {})[fi] = (list(inst["bbox"]), float(inst["score"]))

    def timelines(self, stream_id: str | None = None) -> list[Timeline]:
        """All timelines (of one stream), sorted by stream then first frame."""
        out = []
        for (sid, tid), by_frame in self._tracks.items():
            if stream_id is not None and sid != stream_id:
                continue
            cid, label = self._meta[(sid, tid)]
            t = Timeline(sid, tid, cid, label)
            for fi in sorted(by_frame):
                box, score = by_frame[fi]
                t.frames.append(fi)
                t.boxes.append(box)
                t.scores.append(score)
            out.append(t)
        return sorted(out, key=lambda t: (t.stream_id, t.first_frame, t.track_id))
