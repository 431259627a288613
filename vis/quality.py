"""How much a run's instances and tracks need a human's look: per-instance doubt signals and
one ``review_score`` in [0, 1] (1 = look first). Defined for users in docs/quality.md.

Contract: feed a stream's ``FrameResult`` s in frame order to ``QualityPass.observe`` twice:
the first pass (``collect=True``) learns what only the whole track tells (class votes,
length, suspected id switches), ``finish()`` turns that into ``TrackQuality``; the second
pass returns each frame's ``InstanceQuality`` list, whose ``review_score`` combines both.
Memory: the previous frame's masks and a few numbers per track; nothing per frame is kept.
Everything is computed from the records (no model): a run's JSONL is enough.
"""

from __future__ import annotations

import dataclasses
import math
from collections import Counter

import numpy as np

from vis.ops.masks import BoxMask, pair_iou
from vis.types import FrameResult

#: weights of the doubt terms in ``review_score`` (they sum to 1); see docs/quality.md
WEIGHTS = {
    "low_score": 0.2,
    "drift": 0.25,
    "shape_change": 0.1,
    "propagation_age": 0.05,
    "class_doubt": 0.1,
    "short_track": 0.1,
    "id_switch": 0.1,
    "mask_doubt": 0.1,
}
#: weight of test-time augmentation's ``uncertainty`` beside ``WEIGHTS``, where measured
UNCERTAINTY_WEIGHT = 1.0
_ALL_WEIGHTS = {**WEIGHTS, "uncertainty": UNCERTAINTY_WEIGHT}
AGE_SCALE = 10.0  # frames of propagation that make the age doubt 1 - 1/e
SHORT_TRACK = 10.0  # frames: a track this long has short-track doubt 1/e
SWITCH_WINDOW = 5  # frames around a suspected id switch that carry the doubt


@dataclasses.dataclass(frozen=True)
class TrackQuality:
    """What the whole track says.

    Attributes:
        frames: records the track is in.
        class_id: the class it was given most often.
        class_margin: (votes of that class - votes of the runner-up) / frames, in [0, 1].
        switch_frames: frames at which an id switch is suspected (see ``QualityPass``).
        review_score: the mean ``review_score`` of its instances (filled by ``finish_scores``).
    """

    frames: int
    class_id: int
    class_margin: float
    switch_frames: tuple[int, ...]
    review_score: float = 0.0


@dataclasses.dataclass(frozen=True)
class InstanceQuality:
    """One instance's signals (see docs/quality.md) and its ``review_score``."""

    track_id: int
    score: float
    mask_iou_prev: float | None  # None: first frame of the track or after a gap
    shape_iou_prev: float | None  # the same with the two masks' centroids aligned
    keyframe_iou_next: float | None  # the correction at the next keyframe (None: none)
    propagation_age: int  # frames since the track was last in a keyframe record
    mask_confidence: float | None  # None: not in the record (written before 2026-11)
    agreement: float | None  # offline: IoU of the forward and backward masks (None: not fused)
    class_margin: float
    track_frames: int
    id_switch_suspect: bool
    review_score: float
    # test-time augmentation's disagreement: the instance's own on a keyframe where it ran,
    # else its track's last such keyframe's (None: never measured for the track)
    uncertainty: float | None = None

    def to_json(self, track_score: float) -> dict:
        out = {
            "score": round(self.score, 4),
            "mask_iou_prev": _r(self.mask_iou_prev),
            "shape_iou_prev": _r(self.shape_iou_prev),
            "keyframe_iou_next": _r(self.keyframe_iou_next),
            "propagation_age": self.propagation_age,
            "mask_confidence": _r(self.mask_confidence),
            "agreement": _r(self.agreement),
            "class_margin": round(self.class_margin, 4),
            "track_frames": self.track_frames,
            "id_switch_suspect": self.id_switch_suspect,
            "review_score": round(self.review_score, 4),
            "track_review_score": round(track_score, 4),
        }
        if self.uncertainty is not None:
            out["uncertainty"] = round(self.uncertainty, 4)
        return out


def _r(v: float | None) -> float | None:
    return None if v is None else round(v, 4)


@dataclasses.dataclass
class _Track:
    first: int
    last: int
    frames: int = 0
    votes: Counter = dataclasses.field(default_factory=Counter)
    last_keyframe: int | None = None
    first_box: np.ndarray | None = None
    last_box: np.ndarray | None = None
    switches: list[int] = dataclasses.field(default_factory=list)
    # (keyframe, IoU of the propagated mask of the frame before with the keyframe's mask)
    corrections: list[tuple[int, float]] = dataclasses.field(default_factory=list)
    next_correction: int = 0  # second pass: index into corrections
    uncertainty: float | None = None  # second pass: the last keyframe's measured uncertainty


def _centre_jump(a: np.ndarray, b: np.ndarray) -> float:
    """Distance of the boxes' centres over the diagonal of ``a`` (boxes x1 y1 x2 y2)."""
    ca, cb = (a[:2] + a[2:]) / 2, (b[:2] + b[2:]) / 2
    diag = max(float(np.hypot(*(a[2:] - a[:2]))), 1.0)
    return float(np.hypot(*(ca - cb))) / diag


def shape_iou(a: BoxMask, b: BoxMask) -> float:
    """IoU of two masks after moving ``a``'s centroid onto ``b``'s: how much the shape
    changed, whatever the motion (pixels moved out of the image are lost)."""
    ya, xa = np.nonzero(a.bits)
    yb, xb = np.nonzero(b.bits)
    if len(ya) == 0 or len(yb) == 0:
        return 0.0
    dy = int(round(yb.mean() + b.y0 - ya.mean() - a.y0))
    dx = int(round(xb.mean() + b.x0 - xa.mean() - a.x0))
    moved = BoxMask.from_window(a.bits.astype(np.float32), a.x0 + dx, a.y0 + dy, a.image_size)
    return pair_iou(moved, b)


class QualityPass:
    """Two passes over one stream's results (see the module contract).

    Args:
        reid_gap: frames without a track after which its return counts as a
            re-identification; a new track starting within this many frames of another
            ending nearby counts as a possible fragment.
        jump: a re-identified track whose box centre moved more than this many box
            diagonals (or a new track that near to an ended one) is a suspected id switch.
    """

    def __init__(self, *, reid_gap: int = 2, jump: float = 1.0) -> None:
        self.reid_gap = reid_gap
        self.jump = jump
        self._tracks: dict[int, _Track] = {}
        self._quality: dict[int, TrackQuality] = {}
        self._prev: dict[int, tuple[int, np.ndarray]] = {}

    def observe(self, result: FrameResult, *, collect: bool) -> list[InstanceQuality]:
        """One frame, in order. ``collect=True``: first pass (returns []);
        ``collect=False``: second pass, after ``finish()``."""
        d, f = result.detections, result.frame_index
        out = []
        prev = {}
        for i in range(len(d)):
            tid, mask = int(d.track_ids[i]), d.masks[i]
            before = self._prev.get(tid)
            adjacent = before is not None and f - before[0] <= 1
            iou = pair_iou(before[1], mask) if adjacent else None
            prev[tid] = (f, mask)
            if collect:
                if adjacent and result.keyframe:
                    self._tracks[tid].corrections.append((f, iou))
                continue
            t = self._tracks[tid]
            shape = shape_iou(before[1], mask) if adjacent else None
            while (
                t.next_correction < len(t.corrections) and t.corrections[t.next_correction][0] <= f
            ):
                t.next_correction += 1
            nxt = (
                t.corrections[t.next_correction][1]
                if t.next_correction < len(t.corrections)
                else None
            )
            if result.keyframe:
                t.last_keyframe = f
            age = f - t.last_keyframe if t.last_keyframe is not None else f - t.first
            q = self._quality[tid]
            near_switch = any(abs(f - s) <= SWITCH_WINDOW for s in q.switch_frames)
            conf = None if d.mask_confidence is None else float(d.mask_confidence[i])
            agree = None if d.agreement is None else float(d.agreement[i])
            agree = None if agree is None or math.isnan(agree) else agree
            doubt = None if d.uncertainty is None else float(d.uncertainty[i])
            if doubt is not None and not math.isnan(doubt):
                t.uncertainty = doubt
            signals = Signals(float(d.scores[i]), iou, shape, nxt, age, conf, agree, t.uncertainty)
            out.append(
                InstanceQuality(
                    tid, float(d.scores[i]), iou, shape, nxt, age, conf, agree, q.class_margin,
                    q.frames, near_switch, review_score(signals, q, near_switch), t.uncertainty,
                )
            )  # fmt: skip
        if collect:
            self._collect(f, d.track_ids, d.class_ids, d.xyxy)
        self._prev = prev
        return out

    def _collect(self, f: int, tids: np.ndarray, cids: np.ndarray, boxes: np.ndarray) -> None:
        """First pass, one frame: spans, votes, and suspected switches (a track back far from
        where it was lost; a new track starting close to where another just ended)."""
        new = []
        for tid, cid, box in zip(tids.tolist(), cids.tolist(), boxes):
            t = self._tracks.get(tid)
            if t is None:
                t = self._tracks[tid] = _Track(first=f, last=f, first_box=box.copy())
                new.append(tid)
            elif f - t.last > self.reid_gap and _centre_jump(t.last_box, box) > self.jump:
                t.switches.append(f)
            t.last, t.last_box = f, box.copy()
            t.frames += 1
            t.votes[cid] += 1
        for tid in new:
            t = self._tracks[tid]
            for other in self._tracks.values():
                gap = f - other.last
                if 0 < gap <= self.reid_gap * 5 and _centre_jump(other.last_box, t.first_box) < 0.5:
                    t.switches.append(f)
                    other.switches.append(other.last)

    def finish(self) -> dict[int, TrackQuality]:
        """After the first pass: each track's ``TrackQuality``; resets for the second pass."""
        for tid, t in self._tracks.items():
            if tid not in self._quality:
                (top, n1), *rest = t.votes.most_common() + [(None, 0)]
                n2 = rest[0][1]
                self._quality[tid] = TrackQuality(
                    t.frames, int(top), (n1 - n2) / t.frames, tuple(sorted(set(t.switches)))
                )
            t.last_keyframe = None
            t.next_correction = 0
            t.uncertainty = None
        self._prev = {}
        return dict(self._quality)


@dataclasses.dataclass(frozen=True)
class Signals:
    """One instance's own signals (the track's come from ``TrackQuality``)."""

    score: float
    mask_iou_prev: float | None
    shape_iou_prev: float | None
    keyframe_iou_next: float | None
    propagation_age: int
    mask_confidence: float | None = None
    agreement: float | None = None
    uncertainty: float | None = None  # test-time augmentation's (None: not measured)


def doubts(s: Signals, track: TrackQuality, switch: bool) -> dict[str, float]:
    """The doubt terms, each in [0, 1] (1 = most doubt); docs/quality.md. ``mask_doubt`` is
    left out when the record has no ``mask_confidence``, ``uncertainty`` when test-time
    augmentation never measured it for the instance's track."""
    terms = {
        "low_score": 1.0 - min(max(s.score, 0.0), 1.0),
        "drift": _drift(s),
        "shape_change": 0.5 if s.shape_iou_prev is None else 1.0 - s.shape_iou_prev,
        "propagation_age": 1.0 - math.exp(-s.propagation_age / AGE_SCALE),
        "class_doubt": 1.0 - track.class_margin,
        "short_track": math.exp(-track.frames / SHORT_TRACK),
        "id_switch": 1.0 if switch else 0.0,
    }
    if s.mask_confidence is not None:
        terms["mask_doubt"] = 1.0 - min(max(s.mask_confidence, 0.0), 1.0)
    if s.uncertainty is not None:
        terms["uncertainty"] = min(max(s.uncertainty, 0.0), 1.0)
    return terms


def _drift(s: Signals) -> float:
    """Doubt that a propagated mask drifted off its object. Offline (fused from both
    keyframes): how much the forward and backward estimates disagreed. Otherwise: how far
    the next keyframe had to move it; a track no later keyframe confirms (lost before one,
    or the video ended) gets half doubt."""
    if s.propagation_age == 0:
        return 0.0
    if s.agreement is not None:
        return 1.0 - s.agreement
    return 0.5 if s.keyframe_iou_next is None else 1.0 - s.keyframe_iou_next


def review_score(s: Signals, track: TrackQuality, switch: bool) -> float:
    """The weighted mean of the doubt terms present (``WEIGHTS``, and ``UNCERTAINTY_WEIGHT``
    where the instance's track has one), in [0, 1]."""
    terms = doubts(s, track, switch)
    total = sum(_ALL_WEIGHTS[k] for k in terms)
    return sum(_ALL_WEIGHTS[k] * v for k, v in terms.items()) / total if total else 0.0
