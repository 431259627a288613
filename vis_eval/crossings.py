"""Crossings: where two people's ground-truth boxes overlap, and what a tracker did there.

Contract: ``crossing_events(gt)`` finds every stretch of frames in which two ground-truth
people's boxes overlap (box IoU > ``min_iou``) for at least ``min_frames`` frames: the moments
a tracker can swap or merge them. ``outcomes(gt, tracks, events)`` says, per event, how many
identity switches its two people suffered from ``pad`` frames before it to ``pad`` after, and
whether each person left it with the id they entered with. ``id_timeline`` gives each person's
covering track id per frame (the data of the ids-over-time plot), ``id_changes`` counts the
changes along one person's ids. Pure functions of the
ground truth and a tracker's output (``box_scoring.Tracks``).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from vis.ops.boxes import box_iou
from vis_eval.box_scoring import Tracks, frame_matches


@dataclasses.dataclass(frozen=True)
class Crossing:
    """Ground-truth people ``a`` and ``b`` overlap on frames ``start`` to ``stop`` (inclusive)."""

    a: int
    b: int
    start: int
    stop: int


def crossing_events(gt: Tracks, *, min_iou: float = 0.0, min_frames: int = 3) -> list[Crossing]:
    """Every overlap of two ground-truth people lasting ``min_frames``+ frames, in frame order
    (a gap of one frame does not end an event)."""
    open_: dict[tuple[int, int], list[int]] = {}
    events: list[Crossing] = []
    for f in sorted(gt):
        people = gt[f]
        now: set[tuple[int, int]] = set()
        if len(people) > 1:
            iou = box_iou(np.stack([b for _, b in people]), np.stack([b for _, b in people]))
            for i in range(len(people)):
                for j in range(i + 1, len(people)):
                    if iou[i, j] > min_iou:
                        now.add(tuple(sorted((people[i][0], people[j][0]))))
        for pair in now:
            span = open_.setdefault(pair, [f, f])
            span[1] = f
        for pair, (start, stop) in list(open_.items()):
            if pair not in now and f - stop > 1:
                if stop - start + 1 >= min_frames:
                    events.append(Crossing(pair[0], pair[1], start, stop))
                del open_[pair]
    for pair, (start, stop) in open_.items():
        if stop - start + 1 >= min_frames:
            events.append(Crossing(pair[0], pair[1], start, stop))
    return sorted(events, key=lambda e: (e.start, e.a, e.b))


def id_changes(ids: list[int]) -> int:
    """How often the covering id changes along ``ids`` (one person's ids in frame order)."""
    return sum(1 for x, y in zip(ids, ids[1:]) if x != y)


def id_timeline(gt: Tracks, tracks: Tracks, iou: float = 0.5) -> dict[int, dict[int, int]]:
    """{gt id: {frame: covering track id}} (frames where nothing covers the person are absent)."""
    out: dict[int, dict[int, int]] = {}
    for f, pairs in frame_matches(gt, tracks, iou).items():
        for g, t in pairs.items():
            out.setdefault(g, {})[f] = t
    return out


def outcomes(gt: Tracks, tracks: Tracks, events: list[Crossing], *, pad: int = 5) -> list[dict]:
    """Per event: ``switches`` (changes of covering id of either person within the event
    padded by ``pad`` frames) and ``kept`` (both people left with the id they entered with)."""
    timeline = id_timeline(gt, tracks)
    rows = []
    for e in events:
        switches, kept = 0, True
        for person in (e.a, e.b):
            ids = [
                t
                for f, t in sorted(timeline.get(person, {}).items())
                if e.start - pad <= f <= e.stop + pad
            ]
            switches += id_changes(ids)
            kept &= bool(ids) and ids[0] == ids[-1]
        rows.append({**dataclasses.asdict(e), "switches": switches, "kept": kept})
    return rows
