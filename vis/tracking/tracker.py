"""Multi-object tracker over instance masks: a function of its state and the detections.

Contract: once per frame, call ``predict(frame_index, warp)`` (moves every live track to the
frame: Kalman prediction, and the mask warped by ``warp`` when given), then
``update(detections, frame_index)`` on keyframes or ``update(None, frame_index)`` between
them. ``update`` returns the confirmed instances of the frame with ``track_ids`` set. No I/O.

Lifecycle (``TrackState``; transitions all in ``_transition``): a new detection starts a
TENTATIVE track; it becomes CONFIRMED after ``confirm_hits`` keyframe matches (or at once with
score >= ``confirm_score``); an unmatched or collapsed track becomes LOST; a LOST track
matched again is CONFIRMED with its old id; LOST longer than ``max_age`` frames, or TENTATIVE
and unmatched, it is REMOVED. Ids count up from 1 per tracker (per stream) and are never
reused.

A confirmed track missed on a keyframe *coasts*: for ``coast_keyframes`` keyframes it stays
LOST (not output) with its mask still carried forward, and competes with the live tracks for
the next keyframe's detections by mask IoU and appearance. A track lost longer, or whose mask
collapsed, can only be re-identified by appearance near its Kalman-predicted position.
A track's class is the score-weighted vote of its matched detections; with
``class_penalty`` set, a detection of another class can continue a track at that extra cost.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Callable

import numpy as np

from vis.config import require
from vis.ops.boxes import box_iou
from vis.ops.masks import BoxMask, mask_iou, suppress_duplicates
from vis.propagation import smooth_mask
from vis.tracking import kalman
from vis.tracking.association import (
    GATED,
    class_cost,
    combined_cost,
    cosine_distance,
    linear_assignment,
)
from vis.types import Detections


class TrackState(enum.Enum):
    TENTATIVE = "tentative"
    CONFIRMED = "confirmed"
    LOST = "lost"
    REMOVED = "removed"


_ALLOWED = {
    TrackState.TENTATIVE: {TrackState.CONFIRMED, TrackState.REMOVED},
    TrackState.CONFIRMED: {TrackState.LOST},
    TrackState.LOST: {TrackState.CONFIRMED, TrackState.REMOVED},
    TrackState.REMOVED: set(),
}


@dataclasses.dataclass(frozen=True)
class TrackerConfig:
    """Association and lifecycle settings (see module docstring).

    Attributes:
        iou_weight: weight of (1 - mask IoU) in the cost; embeddings get 1 - iou_weight.
        min_iou: gate: a pair needs this mask IoU (or Kalman box IoU) to match.
        max_embedding_distance: gate on cosine distance for active tracks.
        max_cost: pairs costing more are not matched.
        confirm_hits: keyframe matches that confirm a tentative track.
        confirm_score: a detection at least this confident confirms its track at once.
        new_track_score: minimum score to start a track.
        max_age: frames a LOST track is kept for re-identification.
        reid_max_distance: cosine-distance gate for re-identifying LOST tracks.
        reid_gate: a LOST track is re-identified only within this many box diagonals
            of its Kalman-predicted position (plus its speed times frames lost).
        embedding_momentum: EMA momentum of a track's embedding.
        use_kalman: predict boxes with the Kalman filter (off: last box).
        coast_keyframes: keyframes a missed confirmed track keeps its propagated mask for
            matching (0 = drop it at once).
        class_penalty: cost added to a pair whose classes differ; negative forbids such pairs.
        duplicate_iou: a keyframe detection whose mask overlaps a higher-scoring one (of any
            class) by more than this IoU is the same object and is dropped (1 = keep all).
    """

    iou_weight: float = 0.6
    min_iou: float = 0.1
    max_embedding_distance: float = 0.5
    max_cost: float = 0.8
    confirm_hits: int = 2
    confirm_score: float = 0.85
    new_track_score: float = 0.5
    max_age: int = 60
    reid_max_distance: float = 0.3
    reid_gate: float = 3.0
    embedding_momentum: float = 0.8
    use_kalman: bool = True
    coast_keyframes: int = 1
    class_penalty: float = 0.2
    duplicate_iou: float = 0.5

    def __post_init__(self) -> None:
        require(0.0 <= self.iou_weight <= 1.0, "tracker.iou_weight", self.iou_weight, "must be in [0, 1]")
        require(0.0 <= self.min_iou < 1.0, "tracker.min_iou", self.min_iou, "must be in [0, 1)")
        require(self.confirm_hits >= 1, "tracker.confirm_hits", self.confirm_hits, "must be >= 1")
        require(self.max_age >= 0, "tracker.max_age", self.max_age, "must be >= 0")
        require(0.0 <= self.embedding_momentum < 1.0, "tracker.embedding_momentum",
                self.embedding_momentum, "must be in [0, 1)")
        require(self.max_cost > 0, "tracker.max_cost", self.max_cost, "must be > 0")
        require(0.0 < self.duplicate_iou <= 1.0, "tracker.duplicate_iou", self.duplicate_iou,
                "must be in (0, 1]")
        require(self.coast_keyframes >= 0, "tracker.coast_keyframes", self.coast_keyframes,
                "must be >= 0")

    @property
    def class_penalty_or_gate(self) -> float | None:
        return None if self.class_penalty < 0 else self.class_penalty


@dataclasses.dataclass
class Track:
    """One tracked object. ``mask`` is its soft mask in the current frame (None when LOST)."""

    track_id: int
    class_id: int
    state: TrackState
    kf: object
    mask: BoxMask | None
    embedding: np.ndarray
    score: float
    hits: int
    first_frame: int
    last_seen: int  # last frame with a keyframe match or a live propagated mask
    last_box: np.ndarray
    class_votes: dict[int, float] = dataclasses.field(default_factory=dict)
    misses: int = 0  # losses since the last match (unmatched keyframes, collapsed masks)

    def vote(self, class_id: int, score: float) -> None:
        self.class_votes[class_id] = self.class_votes.get(class_id, 0.0) + score
        self.class_id = max(self.class_votes, key=self.class_votes.get)

    def predicted_box(self) -> np.ndarray:
        return kalman.state_box(self.kf)


def _transition(track: Track, new: TrackState) -> None:
    if new is track.state:
        return
    if new not in _ALLOWED[track.state]:
        raise RuntimeError(f"track {track.track_id}: {track.state.value} -> {new.value} not allowed")
    track.state = new


class Tracker:
    """Tracks instances of one stream.

    Args:
        config: association and lifecycle settings.
        min_mask_area: a propagated mask smaller than this has collapsed (track LOST).
        smoothing: detection weight when blending masks on keyframes (1 = none).
    """

    def __init__(self, config: TrackerConfig | None = None, *, min_mask_area: int = 20,
                 smoothing: float = 1.0) -> None:
        self.config = config or TrackerConfig()
        self.min_mask_area = min_mask_area
        self.smoothing = smoothing
        self.tracks: list[Track] = []
        self._next_id = 1
        self._frame = -1
        self._size = (0, 0)
        self.total_started = 0

    # -- per frame ---------------------------------------------------------------
    def predict(self, frame_index: int, *, image_size: tuple[int, int],
                warp: Callable[[BoxMask], BoxMask | None] | None = None) -> None:
        """Advance all tracks to ``frame_index`` of an (H, W) image; warp live masks with ``warp``."""
        dt = 1 if self._frame < 0 else frame_index - self._frame
        self._frame = frame_index
        self._size = image_size
        for t in self.tracks:
            if self.config.use_kalman:
                kalman.predict(t.kf, dt)
            if t.mask is not None and warp is not None:
                t.mask = warp(t.mask)
                if t.mask is not None and t.mask.area < self.min_mask_area:
                    t.mask = None

    def update(self, detections: Detections | None, frame_index: int) -> Detections:
        """Associate keyframe ``detections`` (or, with None, keep the propagated masks).

        Returns:
            The frame's confirmed instances, ``track_ids`` set, in track-id order.
        """
        if detections is None:
            self._update_propagated(frame_index)
        else:
            self._update_keyframe(detections, frame_index)
        self._expire(frame_index)
        return self._output(frame_index, detections)

    # -- internals -----------------------------------------------------------------
    def _update_propagated(self, frame_index: int) -> None:
        for t in self.tracks:
            if t.state in (TrackState.TENTATIVE, TrackState.CONFIRMED):
                if t.mask is None:
                    self._lose(t)
                    continue
                box = t.mask.tight_box()
                t.last_box = box
                t.last_seen = frame_index
                if self.config.use_kalman:
                    kalman.update(t.kf, box)

    def _lose(self, t: Track, *, coast: bool = False) -> None:
        """Unmatched or collapsed: TENTATIVE ends, CONFIRMED becomes LOST; with ``coast`` a
        missed track keeps its mask for ``coast_keyframes`` keyframes."""
        t.misses += 1
        if not (coast and t.state is not TrackState.TENTATIVE
                and t.misses <= self.config.coast_keyframes):
            t.mask = None
        _transition(t, TrackState.REMOVED if t.state is TrackState.TENTATIVE else TrackState.LOST)

    def _geometry_box(self, t: Track) -> np.ndarray:
        return t.predicted_box() if self.config.use_kalman else t.last_box

    def _update_keyframe(self, dets: Detections, frame_index: int) -> None:
        cfg = self.config
        h, w = dets.image_size
        det_masks = [BoxMask.from_full(m) or BoxMask(0, 0, np.zeros((0, 0), np.float32), (h, w))
                     for m in dets.masks]
        keep = suppress_duplicates(det_masks, dets.scores, cfg.duplicate_iou)
        if len(keep) < len(dets):
            dets, det_masks = dets[keep], [det_masks[i] for i in keep]
        # live tracks and coasting ones (LOST, mask still carried)
        active = [t for t in self.tracks if t.state in (TrackState.TENTATIVE, TrackState.CONFIRMED)
                  or (t.state is TrackState.LOST and t.mask is not None)]
        unmatched_dets = np.arange(len(dets))
        matched_tracks: set[int] = set()

        # Stage 1: live and coasting tracks, mask IoU (predicted = warped mask) + appearance.
        if active and len(dets):
            t_masks = [t.mask or BoxMask(0, 0, np.zeros((0, 0), np.float32), (h, w)) for t in active]
            iou = mask_iou(t_masks, det_masks)
            emb = cosine_distance(np.stack([t.embedding for t in active]), dets.embeddings)
            same = np.array([t.class_id for t in active])[:, None] == dets.class_ids[None, :]
            kf_iou = box_iou(np.stack([self._geometry_box(t) for t in active]), dets.xyxy)
            cost = combined_cost(iou, emb, same, iou_weight=cfg.iou_weight, min_iou=cfg.min_iou,
                                 max_emb_dist=cfg.max_embedding_distance,
                                 geometry_ok=kf_iou >= max(cfg.min_iou, 0.3),
                                 class_penalty=cfg.class_penalty_or_gate)
            m = linear_assignment(cost, cfg.max_cost)
            for r, c in m.pairs:
                self._match(active[r], dets, int(c), frame_index)
                matched_tracks.add(id(active[r]))
            unmatched_dets = m.unmatched_cols
        for t in active:
            if id(t) not in matched_tracks:
                self._lose(t, coast=True)

        # Stage 2: re-identify LOST tracks by appearance near their predicted position.
        lost = [t for t in self.tracks if t.state is TrackState.LOST]
        if lost and len(unmatched_dets) and dets.embeddings.shape[1]:
            sub = dets[unmatched_dets]
            dist = cosine_distance(np.stack([t.embedding for t in lost]), sub.embeddings)
            same = np.array([t.class_id for t in lost])[:, None] == sub.class_ids[None, :]
            near = np.zeros_like(same)
            for i, t in enumerate(lost):
                pb = self._geometry_box(t)
                diag = float(np.hypot(pb[2] - pb[0], pb[3] - pb[1])) + 1.0
                centre = (pb[:2] + pb[2:]) / 2
                reach = cfg.reid_gate * diag + (kalman.speed(t.kf) if cfg.use_kalman else 0.0) * (frame_index - t.last_seen)
                dc = np.hypot(*(((sub.xyxy[:, :2] + sub.xyxy[:, 2:]) / 2) - centre).T)
                near[i] = dc <= reach
            dist = dist + class_cost(same, cfg.class_penalty_or_gate)
            cost = np.where(near & (dist <= cfg.reid_max_distance), dist, GATED)
            m = linear_assignment(cost, cfg.reid_max_distance)
            for r, c in m.pairs:
                self._match(lost[r], dets, int(unmatched_dets[c]), frame_index, reid=True)
            unmatched_dets = unmatched_dets[m.unmatched_cols]

        # New tentative tracks.
        for c in unmatched_dets:
            if dets.scores[c] >= cfg.new_track_score:
                self._start(dets, int(c), frame_index)

    def _match(self, t: Track, dets: Detections, c: int, frame_index: int, reid: bool = False) -> None:
        cfg = self.config
        box = dets.xyxy[c]
        probs = dets.mask_probs[c] if dets.mask_probs is not None else dets.masks[c].astype(np.float32)
        new_mask = smooth_mask(probs, box, None if reid else t.mask, weight=self.smoothing,
                               min_area=self.min_mask_area)
        if new_mask is None:
            self._lose(t)
            return
        if cfg.use_kalman:
            kalman.update(t.kf, box)
        if dets.embeddings.shape[1]:
            e = cfg.embedding_momentum * t.embedding + (1 - cfg.embedding_momentum) * dets.embeddings[c]
            t.embedding = (e / max(np.linalg.norm(e), 1e-9)).astype(np.float32)
        t.mask = new_mask
        t.score = float(dets.scores[c])
        t.vote(int(dets.class_ids[c]), t.score)
        t.misses = 0
        t.hits += 1
        t.last_seen = frame_index
        t.last_box = new_mask.tight_box()
        if t.state is TrackState.LOST or t.hits >= cfg.confirm_hits or t.score >= cfg.confirm_score:
            _transition(t, TrackState.CONFIRMED)

    def _start(self, dets: Detections, c: int, frame_index: int) -> None:
        probs = dets.mask_probs[c] if dets.mask_probs is not None else dets.masks[c].astype(np.float32)
        mask = smooth_mask(probs, dets.xyxy[c], None, weight=1.0, min_area=self.min_mask_area)
        if mask is None or mask.area < self.min_mask_area:
            return
        t = Track(track_id=self._next_id, class_id=int(dets.class_ids[c]),
                  state=TrackState.TENTATIVE, kf=kalman.make_box_filter(dets.xyxy[c]), mask=mask,
                  embedding=dets.embeddings[c].astype(np.float32).copy(),
                  score=float(dets.scores[c]), hits=1, first_frame=frame_index,
                  last_seen=frame_index, last_box=mask.tight_box())
        t.vote(t.class_id, t.score)
        self._next_id += 1
        self.total_started += 1
        if t.score >= self.config.confirm_score or self.config.confirm_hits <= 1:
            _transition(t, TrackState.CONFIRMED)
        self.tracks.append(t)

    def _expire(self, frame_index: int) -> None:
        for t in self.tracks:
            if t.state is TrackState.LOST and frame_index - t.last_seen > self.config.max_age:
                _transition(t, TrackState.REMOVED)
        self.tracks = [t for t in self.tracks if t.state is not TrackState.REMOVED]

    def _output(self, frame_index: int, dets: Detections | None) -> Detections:
        live = sorted((t for t in self.tracks if t.state is TrackState.CONFIRMED and t.mask is not None),
                      key=lambda t: t.track_id)
        h, w = self._size
        if not live:
            return Detections.empty(h, w)
        return Detections(
            xyxy=np.stack([t.last_box for t in live]),
            masks=np.stack([t.mask.to_full() for t in live]),
            scores=np.array([t.score for t in live], np.float32),
            class_ids=np.array([t.class_id for t in live], np.int64),
            embeddings=np.stack([t.embedding for t in live]),
            track_ids=np.array([t.track_id for t in live], np.int64))

    # -- state as data (checkpoints) ---------------------------------------------------------
    def state_dict(self) -> dict:
        """The tracker's state as nested dicts/lists of JSON scalars and numpy arrays."""
        return {"next_id": self._next_id, "frame": self._frame, "size": list(self._size),
                "total_started": self.total_started,
                "tracks": [_track_state(t) for t in self.tracks]}

    def load_state_dict(self, state: dict) -> None:
        """Restore a ``state_dict`` (same configuration)."""
        self._next_id = int(state["next_id"])
        self._frame = int(state["frame"])
        self._size = tuple(int(v) for v in state["size"])
        self.total_started = int(state["total_started"])
        self.tracks = [_track_from_state(d) for d in state["tracks"]]

    def end_all(self) -> None:
        """End every track (e.g. after a long gap in the stream); ids are not reused."""
        for t in self.tracks:
            t.state = TrackState.REMOVED
        self.tracks = []


def _track_state(t: Track) -> dict:
    m = t.mask
    return {
        "track_id": t.track_id, "class_id": t.class_id, "state": t.state.value,
        "kf_x": np.asarray(t.kf.x, np.float64), "kf_P": np.asarray(t.kf.P, np.float64),
        "mask": None if m is None else {"x0": m.x0, "y0": m.y0, "prob": m.prob,
                                         "image_size": list(m.image_size),
                                         "velocity": [float(v) for v in m.velocity]},
        "embedding": t.embedding, "score": t.score, "hits": t.hits,
        "first_frame": t.first_frame, "last_seen": t.last_seen,
        "last_box": np.asarray(t.last_box, np.float32),
        "class_votes": [[int(k), float(v)] for k, v in t.class_votes.items()],
        "misses": t.misses,
    }


def _track_from_state(d: dict) -> Track:
    kf = kalman.make_box_filter(np.asarray(d["last_box"], np.float32))
    kf.x = np.asarray(d["kf_x"], np.float64).reshape(7, 1)
    kf.P = np.asarray(d["kf_P"], np.float64).reshape(7, 7)
    m = d["mask"]
    mask = None if m is None else BoxMask(
        int(m["x0"]), int(m["y0"]), np.asarray(m["prob"], np.float32),
        (int(m["image_size"][0]), int(m["image_size"][1])),
        (float(m["velocity"][0]), float(m["velocity"][1])))
    return Track(track_id=int(d["track_id"]), class_id=int(d["class_id"]),
                 state=TrackState(d["state"]), kf=kf, mask=mask,
                 embedding=np.asarray(d["embedding"], np.float32), score=float(d["score"]),
                 hits=int(d["hits"]), first_frame=int(d["first_frame"]),
                 last_seen=int(d["last_seen"]), last_box=np.asarray(d["last_box"], np.float32),
                 class_votes={int(k): float(v) for k, v in d["class_votes"]},
                 misses=int(d["misses"]))
