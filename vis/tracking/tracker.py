"""Multi-object tracker over instance masks: a function of its state and the detections.

Contract: once per frame, call ``predict(frame_index, image_size=..., warp=..., timestamp_ms=...)``
(moves every track to the frame: Kalman prediction over the elapsed time, and the live masks
warped by ``warp``), then ``update(detections, frame_index)`` on keyframes or
``update(None, frame_index)`` between them. ``update`` returns the confirmed instances of the
frame with ``track_ids`` set. No I/O; times are in seconds of stream time, so one setting
means the same at 7 fps and at 30 fps.

Association on a keyframe (every pair also passes the class rule and the motion gate: the
detection's centre must lie inside the 99 % ellipse of the track's Kalman prediction):

1. confirmed and lost tracks x confident detections (score >= ``high_score``): the cost mixes
   place (IoU of the Kalman-predicted box and, for tracks still in view, of the flow-propagated
   mask: ``association.geometry_similarity``) and appearance (``association.association_cost``);
2. confirmed tracks still unmatched x the less confident detections (``low_score`` <= score <
   ``high_score``, ByteTrack's second pass): place only;
3. tentative tracks x the confident detections left: as 1;
4. lost tracks x the confident detections left: appearance only, inside the motion gate
   (re-identification after an occlusion; the gate widens as the prediction ages);
5. confident detections left, scoring >= ``new_track_score``, start tentative tracks.

Lifecycle (``TrackState``; transitions all in ``_ALLOWED``): TENTATIVE becomes CONFIRMED after
``confirm_hits`` matched keyframes (at once with score >= ``confirm_score``) and is REMOVED when
missed; CONFIRMED missed on a keyframe (or whose propagated mask collapsed) becomes LOST;
LOST is CONFIRMED again when matched, and REMOVED after ``max_lost_s`` seconds or once its
prediction has left the image. Ids count up from 1 per tracker (per stream), never reused.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np

from vis.config import require
from vis.ops.boxes import box_iou
from vis.ops.masks import BoxMask, mask_iou, smooth_mask
from vis.tracking import kalman
from vis.tracking.association import (
    GATED,
    association_cost,
    class_cost,
    cosine_distance,
    geometry_similarity,
    linear_assignment,
    reach_gate,
)
from vis.tracking.track import Track, TrackState, track_from_state, track_state
from vis.types import Detections

__all__ = ["Track", "Tracker", "TrackerConfig", "TrackState"]

#: how fast a track's trust in its mask follows the latest evidence (EMA rate per match)
TRUST_RATE = 0.3


@dataclasses.dataclass(frozen=True)
class TrackerConfig:
    """Association and lifecycle settings (see module docstring).

    Attributes:
        high_score: detections at least this confident take part in every pass.
        low_score: detections between this and ``high_score`` only continue tracks (pass 2).
        new_track_score: minimum score to start a track.
        mask_weight: weight of the propagated-mask IoU in the place term (the Kalman box
            IoU gets the rest; tracks without a mask use the box alone).
        adaptive_mask_weight: each track learns its own mask weight (starting at
            ``mask_weight``) from which of its two predictors, the Kalman box or the
            propagated mask, found its detections better.
        appearance_weight: weight of the embedding distance in the cost (place gets the rest).
        min_iou: gate: a pair needs at least this place similarity (passes 1 and 3).
        low_min_iou: gate of pass 2 (low-score detections): place similarity at least this.
        max_embedding_distance: gate on cosine distance in passes 1 and 3.
        max_cost: pairs costing more are not matched.
        confirm_hits: matched keyframes that confirm a tentative track.
        confirm_score: a detection at least this confident confirms its track at once.
        max_lost_s: seconds a LOST track is kept for re-identification.
        reid_max_distance: cosine-distance gate for re-identifying LOST tracks (pass 4).
        motion_gate: forbid pairs outside the Kalman prediction's 99 % ellipse.
        position_noise: Kalman process noise on the box, heights per sqrt(second).
        velocity_noise: Kalman process noise on its velocity, heights/s per sqrt(second).
        max_speed: re-identification reach: a lost track is looked for within half its
            height plus this many heights per second lost of where it was last seen.
        embedding_momentum: EMA momentum of a track's embedding.
        use_kalman: predict boxes with the Kalman filter (off: last box, no motion gate).
        class_penalty: cost added to a pair whose classes differ; negative forbids such pairs.
        duplicate_iou: a keyframe detection whose mask overlaps a higher-scoring one (of any
            class) by more than this IoU is the same object and is dropped (1 = keep all);
            applied by the stream processor before association.
    """

    high_score: float = 0.5
    low_score: float = 0.1
    new_track_score: float = 0.6
    mask_weight: float = 0.5
    adaptive_mask_weight: bool = True
    appearance_weight: float = 0.3
    min_iou: float = 0.1
    low_min_iou: float = 0.5
    max_embedding_distance: float = 0.5
    max_cost: float = 0.8
    confirm_hits: int = 2
    confirm_score: float = 0.85
    max_lost_s: float = 4.0
    reid_max_distance: float = 0.2
    motion_gate: bool = True
    position_noise: float = 0.13
    velocity_noise: float = 0.12
    max_speed: float = 1.0
    embedding_momentum: float = 0.8
    use_kalman: bool = True
    class_penalty: float = 0.2
    duplicate_iou: float = 0.5

    def __post_init__(self) -> None:
        for key in ("mask_weight", "appearance_weight", "high_score", "low_score"):
            v = getattr(self, key)
            require(0.0 <= v <= 1.0, f"tracker.{key}", v, "must be in [0, 1]")
        require(
            self.low_score <= self.high_score,
            "tracker.low_score",
            self.low_score,
            "must be <= tracker.high_score",
        )
        require(
            self.new_track_score >= self.high_score,
            "tracker.new_track_score",
            self.new_track_score,
            "must be >= tracker.high_score",
        )
        require(0.0 <= self.min_iou < 1.0, "tracker.min_iou", self.min_iou, "must be in [0, 1)")
        require(
            0.0 <= self.low_min_iou < 1.0,
            "tracker.low_min_iou",
            self.low_min_iou,
            "must be in [0, 1)",
        )
        require(self.confirm_hits >= 1, "tracker.confirm_hits", self.confirm_hits, "must be >= 1")
        require(self.max_lost_s >= 0, "tracker.max_lost_s", self.max_lost_s, "must be >= 0")
        for key in ("position_noise", "velocity_noise", "max_speed"):
            require(getattr(self, key) > 0, f"tracker.{key}", getattr(self, key), "must be > 0")
        require(
            0.0 <= self.embedding_momentum < 1.0,
            "tracker.embedding_momentum",
            self.embedding_momentum,
            "must be in [0, 1)",
        )
        require(self.max_cost > 0, "tracker.max_cost", self.max_cost, "must be > 0")
        require(
            0.0 < self.duplicate_iou <= 1.0,
            "tracker.duplicate_iou",
            self.duplicate_iou,
            "must be in (0, 1]",
        )

    @property
    def class_penalty_or_gate(self) -> float | None:
        return None if self.class_penalty < 0 else self.class_penalty


@dataclasses.dataclass
class _Keyframe:
    """One keyframe's detections as the passes see them."""

    dets: Detections
    masks: list[BoxMask]
    left: np.ndarray  # indices of the detections not yet matched
    frame_index: int

    def candidates(self, cols: np.ndarray) -> _Candidates:
        d = self.dets
        return _Candidates(
            d.xyxy[cols],
            d.embeddings[cols],
            d.class_ids[cols],
            [self.masks[c] for c in cols],
            d.image_size,
        )


@dataclasses.dataclass(frozen=True)
class _Candidates:
    """The detections one pass looks at (no full-frame masks are copied)."""

    xyxy: np.ndarray
    embeddings: np.ndarray
    class_ids: np.ndarray
    masks: list[BoxMask]
    image_size: tuple[int, int]

    def __len__(self) -> int:
        return len(self.xyxy)


def _empty_mask(size: tuple[int, int]) -> BoxMask:
    return BoxMask(0, 0, np.zeros((0, 0), np.float32), size)


class Tracker:
    """Tracks instances of one stream.

    Args:
        config: association and lifecycle settings.
        min_mask_area: a propagated mask smaller than this has collapsed (track LOST).
        smoothing: detection weight when blending masks on keyframes (1 = none).
        fps: converts frame indices to stream time when ``predict`` gets no timestamp.
    """

    def __init__(
        self,
        config: TrackerConfig | None = None,
        *,
        min_mask_area: int = 20,
        smoothing: float = 1.0,
        fps: float = 25.0,
    ) -> None:
        self.config = config or TrackerConfig()
        self.min_mask_area = min_mask_area
        self.smoothing = smoothing
        self.fps = fps
        self.tracks: list[Track] = []
        self._next_id = 1
        self._frame = -1
        self._time_ms: float | None = None
        self._size = (0, 0)
        self.total_started = 0

    # -- per frame ---------------------------------------------------------------
    def predict(
        self,
        frame_index: int,
        *,
        image_size: tuple[int, int],
        warp: Callable[[BoxMask], BoxMask | None] | None = None,
        timestamp_ms: float | None = None,
    ) -> None:
        """Advance all tracks to ``frame_index`` of an (H, W) image (stream time
        ``timestamp_ms``, else from ``fps``); warp live masks with ``warp``."""
        t_ms = frame_index * 1000.0 / self.fps if timestamp_ms is None else float(timestamp_ms)
        dt_s = 0.0 if self._time_ms is None else max(t_ms - self._time_ms, 0.0) / 1000.0
        self._time_ms = t_ms
        self._frame = frame_index
        self._size = image_size
        for t in self.tracks:
            if self.config.use_kalman:
                kalman.predict(
                    t.kf,
                    dt_s,
                    position_noise=self.config.position_noise,
                    velocity_noise=self.config.velocity_noise,
                )
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
        self._expire()
        return self._output()

    # -- between keyframes -------------------------------------------------------------
    def _update_propagated(self, frame_index: int) -> None:
        for t in self.tracks:
            if t.state in (TrackState.TENTATIVE, TrackState.CONFIRMED):
                if t.mask is None:
                    self._lose(t)
                    continue
                t.last_box = t.mask.tight_box()
                t.last_seen = frame_index

    def _lose(self, t: Track) -> None:
        """Unmatched or collapsed: TENTATIVE ends, CONFIRMED becomes LOST (mask dropped)."""
        t.mask = None
        t.transition(TrackState.REMOVED if t.state is TrackState.TENTATIVE else TrackState.LOST)

    # -- keyframes -----------------------------------------------------------------------
    def _update_keyframe(self, dets: Detections, frame_index: int) -> None:
        cfg = self.config
        size = dets.image_size
        usable = np.flatnonzero(dets.scores >= cfg.low_score)
        masks = [_empty_mask(size)] * len(dets)
        for c in usable:
            masks[c] = BoxMask.from_full(dets.masks[c]) or _empty_mask(size)
        kf = _Keyframe(dets, masks, usable, frame_index)
        high = dets.scores >= cfg.high_score
        by_state = {s: [t for t in self.tracks if t.state is s] for s in TrackState}
        matched: set[int] = set()

        # 1. confirmed and lost tracks x confident detections: place + appearance
        matched |= self._associate(
            by_state[TrackState.CONFIRMED] + by_state[TrackState.LOST],
            kf,
            high,
            self._full_cost,
            cfg.max_cost,
        )
        # 2. confirmed tracks still unmatched x the less confident detections: place only
        rest = [t for t in by_state[TrackState.CONFIRMED] if id(t) not in matched]
        matched |= self._associate(
            rest, kf, ~high, self._place_cost, 1.0 - cfg.low_min_iou, learn_appearance=False
        )
        # 3. tentative tracks x confident detections left
        matched |= self._associate(
            by_state[TrackState.TENTATIVE], kf, high, self._full_cost, cfg.max_cost
        )
        for t in by_state[TrackState.CONFIRMED] + by_state[TrackState.TENTATIVE]:
            if id(t) not in matched:
                self._lose(t)
        # 4. lost tracks (including the ones just lost) x confident detections left: appearance
        lost = [t for t in self.tracks if t.state is TrackState.LOST and id(t) not in matched]
        self._associate(lost, kf, high, self._reid_cost, cfg.reid_max_distance, reid=True)
        # 5. new tentative tracks
        for c in kf.left:
            if dets.scores[c] >= cfg.new_track_score:
                self._start(dets, int(c), frame_index)

    def _associate(
        self,
        tracks: list[Track],
        kf: _Keyframe,
        eligible: np.ndarray,
        cost_fn: Callable[[list[Track], _Candidates], np.ndarray],
        max_cost: float,
        *,
        learn_appearance: bool = True,
        reid: bool = False,
    ) -> set[int]:
        """Match ``tracks`` with the eligible detections still left; returns the matched tracks."""
        cols = kf.left[eligible[kf.left]]
        if not tracks or not len(cols):
            return set()
        m = linear_assignment(cost_fn(tracks, kf.candidates(cols)), max_cost)
        done = set()
        for r, c in m.pairs:
            self._match(
                tracks[r],
                kf.dets,
                int(cols[c]),
                kf.frame_index,
                learn_appearance=learn_appearance,
                reid=reid,
                det_mask=kf.masks[int(cols[c])],
            )
            done.add(id(tracks[r]))
        kf.left = np.setdiff1d(kf.left, cols[m.pairs[:, 1]]) if len(m.pairs) else kf.left
        return done

    def _predicted_boxes(self, tracks: list[Track]) -> np.ndarray:
        if self.config.use_kalman:
            return np.stack([kalman.state_box(t.kf) for t in tracks])
        return np.stack([t.last_box for t in tracks])

    def _motion_ok(self, tracks: list[Track], dets: _Candidates) -> np.ndarray | None:
        if not (self.config.motion_gate and self.config.use_kalman):
            return None
        return np.stack(
            [kalman.centre_distance2(t.kf, dets.xyxy) <= kalman.GATE_CHI2_2D for t in tracks]
        )

    def _same_class(self, tracks: list[Track], dets: _Candidates) -> np.ndarray:
        return np.array([t.class_id for t in tracks])[:, None] == dets.class_ids[None, :]

    def _place(self, tracks: list[Track], dets: _Candidates) -> np.ndarray:
        size = dets.image_size
        m_iou = mask_iou([t.mask or _empty_mask(size) for t in tracks], dets.masks)
        b_iou = box_iou(self._predicted_boxes(tracks), dets.xyxy)
        return geometry_similarity(b_iou, m_iou, self._mask_weights(tracks))

    def _mask_weights(self, tracks: list[Track]) -> np.ndarray:
        """(N,) weight of each track's propagated-mask IoU: none without a mask, else the
        track's learned trust in its mask (``mask_weight`` when not adaptive)."""
        trust = [
            t.mask_trust if self.config.adaptive_mask_weight else self.config.mask_weight
            for t in tracks
        ]
        return np.array([w if t.mask is not None else 0.0 for w, t in zip(trust, tracks)])

    def _learn_mask_trust(self, t: Track, det_box: np.ndarray, det_mask: BoxMask | None) -> None:
        """Which predictor found this detection better, the motion model's box or the mask the
        flow carried? Inverse-error weighting of the two, averaged over the track's matches:
        a static camera and steady walkers favour the box, a panning camera or a deforming
        object the mask."""
        if det_mask is None or t.mask is None or not self.config.use_kalman:
            return
        box_err = 1.0 - float(box_iou(kalman.state_box(t.kf)[None], det_box[None])[0, 0])
        mask_err = 1.0 - float(mask_iou([t.mask], [det_mask])[0, 0])
        target = box_err / max(box_err + mask_err, 1e-6) if box_err + mask_err > 0 else 0.5
        t.mask_trust = (1 - TRUST_RATE) * t.mask_trust + TRUST_RATE * target

    def _full_cost(self, tracks: list[Track], dets: _Candidates) -> np.ndarray:
        cfg = self.config
        emb = cosine_distance(np.stack([t.embedding for t in tracks]), dets.embeddings)
        return association_cost(
            self._place(tracks, dets),
            emb,
            self._same_class(tracks, dets),
            appearance_weight=cfg.appearance_weight,
            min_geometry=cfg.min_iou,
            max_emb_dist=cfg.max_embedding_distance,
            motion_ok=self._motion_ok(tracks, dets),
            class_penalty=cfg.class_penalty_or_gate,
        )

    def _place_cost(self, tracks: list[Track], dets: _Candidates) -> np.ndarray:
        cfg = self.config
        no_emb = np.zeros((len(tracks), len(dets)))
        return association_cost(
            self._place(tracks, dets),
            no_emb,
            self._same_class(tracks, dets),
            appearance_weight=0.0,
            min_geometry=cfg.low_min_iou,
            max_emb_dist=1.0,
            motion_ok=self._motion_ok(tracks, dets),
            class_penalty=cfg.class_penalty_or_gate,
        )

    def _reid_cost(self, tracks: list[Track], dets: _Candidates) -> np.ndarray:
        cfg = self.config
        if not dets.embeddings.shape[1]:
            return np.full((len(tracks), len(dets)), GATED)
        dist = cosine_distance(np.stack([t.embedding for t in tracks]), dets.embeddings)
        dist = dist + class_cost(self._same_class(tracks, dets), cfg.class_penalty_or_gate)
        ok = (dist <= cfg.reid_max_distance) & self._within_reach(tracks, dets)
        motion = self._motion_ok(tracks, dets)
        if motion is not None:
            ok &= motion
        return np.where(ok, dist, GATED)

    def _within_reach(self, tracks: list[Track], dets: _Candidates) -> np.ndarray:
        now = self._now_ms()
        lost_s = np.array([(now - t.last_seen_ms) / 1000.0 for t in tracks])
        return reach_gate(
            np.stack([t.last_box for t in tracks]),
            lost_s,
            dets.xyxy,
            max_speed=self.config.max_speed,
        )

    def _match(
        self,
        t: Track,
        dets: Detections,
        c: int,
        frame_index: int,
        *,
        learn_appearance: bool = True,
        reid: bool = False,
        det_mask: BoxMask | None = None,
    ) -> None:
        cfg = self.config
        box = dets.xyxy[c]
        if not reid:
            self._learn_mask_trust(t, box, det_mask)
        probs = (
            dets.mask_probs[c] if dets.mask_probs is not None else dets.masks[c].astype(np.float32)
        )
        new_mask = smooth_mask(
            probs, box, None if reid else t.mask, weight=self.smoothing, min_area=self.min_mask_area
        )
        if new_mask is None:
            self._lose(t)
            return
        if cfg.use_kalman:
            kalman.update(t.kf, box)
        if learn_appearance and dets.embeddings.shape[1]:
            e = (
                cfg.embedding_momentum * t.embedding
                + (1 - cfg.embedding_momentum) * dets.embeddings[c]
            )
            t.embedding = (e / max(np.linalg.norm(e), 1e-9)).astype(np.float32)
        t.mask = new_mask
        t.score = float(dets.scores[c])
        t.vote(int(dets.class_ids[c]), t.score)
        t.hits += 1
        t.last_seen = frame_index
        t.last_seen_ms = self._now_ms()
        t.last_box = np.asarray(box, np.float32).copy()
        if t.state is TrackState.LOST or t.hits >= cfg.confirm_hits or t.score >= cfg.confirm_score:
            t.transition(TrackState.CONFIRMED)

    def _start(self, dets: Detections, c: int, frame_index: int) -> None:
        probs = (
            dets.mask_probs[c] if dets.mask_probs is not None else dets.masks[c].astype(np.float32)
        )
        mask = smooth_mask(probs, dets.xyxy[c], None, weight=1.0, min_area=self.min_mask_area)
        if mask is None or mask.area < self.min_mask_area:
            return
        t = Track(
            track_id=self._next_id,
            class_id=int(dets.class_ids[c]),
            state=TrackState.TENTATIVE,
            kf=kalman.make_box_filter(dets.xyxy[c]),
            mask=mask,
            embedding=dets.embeddings[c].astype(np.float32).copy(),
            score=float(dets.scores[c]),
            hits=1,
            first_frame=frame_index,
            last_seen=frame_index,
            last_seen_ms=self._now_ms(),
            last_box=mask.tight_box(),
            mask_trust=self.config.mask_weight,
        )
        t.vote(t.class_id, t.score)
        self._next_id += 1
        self.total_started += 1
        if t.score >= self.config.confirm_score or self.config.confirm_hits <= 1:
            t.transition(TrackState.CONFIRMED)
        self.tracks.append(t)

    def _now_ms(self) -> float:
        return 0.0 if self._time_ms is None else self._time_ms

    def _expire(self) -> None:
        h, w = self._size
        now = self._now_ms()
        for t in self.tracks:
            if t.state is not TrackState.LOST:
                continue
            gone = (now - t.last_seen_ms) / 1000.0 > self.config.max_lost_s
            if self.config.use_kalman and not gone:
                cx, cy = t.kf.x[0, 0], t.kf.x[1, 0]
                gone = not (0 <= cx < w and 0 <= cy < h)  # its prediction has left the image
            if gone:
                t.transition(TrackState.REMOVED)
        self.tracks = [t for t in self.tracks if t.state is not TrackState.REMOVED]

    def _output(self) -> Detections:
        live = sorted(
            (t for t in self.tracks if t.state is TrackState.CONFIRMED and t.mask is not None),
            key=lambda t: t.track_id,
        )
        h, w = self._size
        if not live:
            return Detections.empty(h, w)
        return Detections(
            xyxy=np.stack([t.last_box for t in live]),
            masks=np.stack([t.mask.to_full() for t in live]),
            scores=np.array([t.score for t in live], np.float32),
            class_ids=np.array([t.class_id for t in live], np.int64),
            embeddings=np.stack([t.embedding for t in live]),
            track_ids=np.array([t.track_id for t in live], np.int64),
        )

    # -- state as data (checkpoints) ---------------------------------------------------------
    def state_dict(self) -> dict:
        """The tracker's state as nested dicts/lists of JSON scalars and numpy arrays."""
        return {
            "next_id": self._next_id,
            "frame": self._frame,
            "time_ms": self._time_ms,
            "size": list(self._size),
            "total_started": self.total_started,
            "tracks": [track_state(t) for t in self.tracks],
        }

    def load_state_dict(self, state: dict) -> None:
        """Restore a ``state_dict`` (same configuration)."""
        self._next_id = int(state["next_id"])
        self._frame = int(state["frame"])
        self._time_ms = None if state["time_ms"] is None else float(state["time_ms"])
        self._size = tuple(int(v) for v in state["size"])
        self.total_started = int(state["total_started"])
        self.tracks = [track_from_state(d) for d in state["tracks"]]

    def end_all(self) -> None:
        """End every track (e.g. after a long gap in the stream); ids are not reused."""
        for t in self.tracks:
            t.transition(TrackState.REMOVED)
        self.tracks = []
