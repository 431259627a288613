"""Multi-object tracker over instance masks: a function of its state and the detections.

Contract: once per frame, in order, ``update(detections, frame_index=..., image_size=...,
timestamp_ms=..., warp=...)`` with the keyframe's ``Detections``, or None between keyframes.
It moves every track to the frame (Kalman prediction over the elapsed stream time, the live
masks warped by ``warp``), on keyframes sets aside duplicate detections
(``duplicates.split_duplicates``) and associates the rest, and returns the frame's confirmed
instances as ``Detections``: ``track_ids`` set, masks box-local, in track-id order. No I/O;
times are in seconds of stream time, so one setting means the same at 7 fps and at 30 fps.

Association on a keyframe (every pair also passes the class rule and the motion gate: the
detection's centre must lie inside the 99 % ellipse of the track's Kalman prediction):

1. confirmed and lost tracks x confident detections (score >= ``high_score``): the cost mixes
   place (IoU of the Kalman-predicted box and, for tracks still in view, of the flow-propagated
   mask: ``association.geometry_similarity``) and appearance (``association.association_cost``);
2. confirmed tracks still unmatched x the less confident detections (``low_score`` <= score <
   ``high_score``, ByteTrack's second pass) and the held duplicates: place only;
3. tentative tracks x the detections left down to ``weak_start_score``: as 1;
4. lost tracks x the detections left down to ``weak_start_score`` (a person coming out of
   an occlusion often scores low at first): appearance only, inside the motion gate
   (re-identification after an occlusion; the gate widens as the prediction ages);
5. confident detections left, scoring >= ``new_track_score``, start tentative tracks; with
   ``weak_start_score`` below that, the detections left between the two start tentative
   tracks that need ``weak_start_hits`` matched keyframes in a row (pass 3 matches them with
   detections down to ``weak_start_score``).

Lifecycle (``TrackState``; transitions all in ``_ALLOWED``): TENTATIVE becomes CONFIRMED after
``confirm_hits`` matched keyframes (at once with score >= ``confirm_score``) and is REMOVED when
missed; CONFIRMED missed on a keyframe (or whose propagated mask collapsed) becomes LOST;
LOST is CONFIRMED again when matched, and REMOVED after ``max_lost_s`` seconds (of stream
time with frames: an outage longer than ``outage_s`` does not count) or once its
prediction has left the image. Ids count up from 1 per tracker (per stream), never reused.
"""

from __future__ import annotations

import collections
import time

from collections.abc import Callable

import numpy as np

from vis.ops.masks import BoxMask, smooth_mask
from vis.tracking import kalman
from vis.tracking.association import linear_assignment
from vis.tracking.config import TrackerConfig
from vis.tracking.duplicates import split_duplicates
from vis.tracking.pair_costs import (
    Candidates,
    KeyframeDetections,
    PairCosts,
    learn_mask_trust,
)
from vis.tracking.track import Track, TrackState, track_from_state, track_state
from vis.types import Detections, mask_confidence

#: for ``TrackerConfig.score_reference``: the scores of the detections the tracker kept on
#: tracks the detector was sure enough of to start on its own (not weak starts) remembered,
#: the quantile of them taken as the detector's level of a clear detection, and how many it
#: needs before it reads any detector's scores as other than given
SCORE_WINDOW = 512
SCORE_LEVEL_Q = 0.9
SCORE_MIN = 8

__all__ = ["Track", "Tracker", "TrackerConfig", "TrackState"]


class Tracker:
    """Tracks instances of one stream (see the module docstring).

    Args:
        config: association and lifecycle settings.
        min_mask_area: a propagated mask smaller than this has collapsed (track LOST).
        smoothing: detection weight when blending masks on keyframes (1 = none).
        fps: converts frame indices to stream time when ``update`` gets no timestamp.

    Attributes:
        tracks: every track alive (tentative, confirmed or lost): the state, to read, not
            to change.
        total_started: tracks started so far (ids count up from 1).
        association_s, predict_s: seconds spent associating (cost matrices and assignment)
            and moving the tracks to each frame (Kalman prediction and mask warping):
            measurements, never part of the state.
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
        self.reset()

    def reset(self) -> None:
        """Forget every track and every score seen: the tracker of a new stream (ids count
        from 1 again)."""
        self.tracks: list[Track] = []
        self._next_id = 1
        self._frame = -1
        self._time_ms: float | None = None
        self._size = (0, 0)
        self.total_started = 0
        #: scores of the recent detections kept on confidently started tracks, for
        #: ``score_reference`` (bounded: SCORE_WINDOW)
        self._kept_scores: collections.deque[float] = collections.deque(maxlen=SCORE_WINDOW)
        self._scale = 1.0  # score_scale() of the keyframe being associated
        #: on a keyframe whose detections carry ``uncertainty``: track id -> its detection's
        self._uncertainty: dict[int, float] | None = None
        self.association_s = 0.0
        self.predict_s = 0.0

    # -- per frame ---------------------------------------------------------------
    def update(
        self,
        detections: Detections | None,
        *,
        frame_index: int,
        image_size: tuple[int, int] | None = None,
        timestamp_ms: float | None = None,
        warp: Callable[[BoxMask], BoxMask | None] | None = None,
    ) -> Detections:
        """Track one frame: the keyframe's ``detections``, or None between keyframes (the
        tracks keep their propagated masks).

        Args:
            detections: the frame's N detections (any order; ``track_ids`` are ignored), or
                None on a frame the detector did not run on.
            frame_index: the frame's index in the stream (frames in increasing order).
            image_size: (H, W) of the frame; default: the detections', else the last frame's.
            timestamp_ms: the frame's stream time (default: ``frame_index`` at ``fps``).
            warp: moves a mask of the previous frame to this one (optical flow; None: masks
                stay where they were); a mask it returns None for has collapsed.

        Returns:
            The frame's confirmed instances (M >= 0), in track-id order: ``track_ids`` set,
            each mask box-local (``Detections.full_masks()`` pastes them), ``xyxy`` the
            track's box, ``scores`` its last detection score, ``embeddings`` its appearance,
            ``mask_confidence`` set and ``agreement`` NaN; on a keyframe whose detections
            carry ``uncertainty``, each matched track's (NaN for the others).

        Raises:
            ValueError: no ``image_size`` on the first frame without detections.
        """
        if image_size is None:
            image_size = self._size if detections is None else detections.image_size
            if image_size == (0, 0):
                raise ValueError(
                    "Tracker.update: pass image_size on a first frame of no detections"
                )
        t0 = time.perf_counter()
        self._predict(frame_index, tuple(image_size), warp, timestamp_ms)
        self.predict_s += time.perf_counter() - t0
        self._uncertainty = None if detections is None or detections.uncertainty is None else {}
        if detections is None:
            self._update_propagated(frame_index)
        else:
            left, held = split_duplicates(detections, self.score_scale(), self.config)
            self._update_keyframe(left, frame_index, held)
        self._expire()
        return self._confirmed()

    def live_masks(self) -> list[BoxMask]:
        """The masks the tracks carry into the next frame (the ones ``warp`` will move), for
        building the flow between this frame and the next."""
        return [t.mask for t in self.tracks if t.mask is not None]

    def first_frame(self, track_id: int) -> int | None:
        """The frame a track still alive started on (None: no such track)."""
        return next((t.first_frame for t in self.tracks if t.track_id == track_id), None)

    def _predict(
        self,
        frame_index: int,
        image_size: tuple[int, int],
        warp: Callable[[BoxMask], BoxMask | None] | None,
        timestamp_ms: float | None,
    ) -> None:
        """Advance all tracks to ``frame_index`` of an (H, W) image (stream time
        ``timestamp_ms``, else from ``fps``); warp live masks with ``warp``."""
        t_ms = frame_index * 1000.0 / self.fps if timestamp_ms is None else float(timestamp_ms)
        dt_s = 0.0 if self._time_ms is None else max(t_ms - self._time_ms, 0.0) / 1000.0
        self._time_ms = t_ms
        self._frame = frame_index
        self._size = image_size
        outage = dt_s > self.config.outage_s
        for t in self.tracks:
            if not outage:  # a camera that saw nothing is not evidence that objects left
                t.missed_ms += 1000.0 * dt_s
            if outage and self.config.use_kalman:
                kalman.forget_velocity(t.kf)
        if self.config.use_kalman:
            kalman.predict_many(
                [t.kf for t in self.tracks],
                dt_s,
                position_noise=self.config.position_noise,
                velocity_noise=self.config.velocity_noise,
            )
        for t in self.tracks:
            if t.mask is not None and warp is not None:
                t.mask = warp(t.mask)
                if t.mask is not None and t.mask.area < self.min_mask_area:
                    t.mask = None

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
    def score_scale(self) -> float:
        """What the detector's scores are multiplied by before any threshold is applied
        (``TrackerConfig.score_reference``; 1 when off, before ``SCORE_MIN`` detections were
        kept, or for a detector at least as sure as the reference).

        The level is read from the detections the tracker kept on tracks started by a
        detection scoring ``new_track_score`` or more, not from every detection: in a scene
        with no clear object most detections are the detector's unsure false ones (and an
        object it is steadily unsure of, such as a parked car, is a weak start), and their
        quantile would say a sure detector is an unsure one."""
        if not self.config.score_reference or len(self._kept_scores) < SCORE_MIN:
            return 1.0
        level = float(np.quantile(np.fromiter(self._kept_scores, float), SCORE_LEVEL_Q))
        return max(1.0, self.config.score_reference / max(level, 1e-3))

    def _update_keyframe(self, dets: Detections, frame_index: int, held: np.ndarray) -> None:
        cfg = self.config
        size = dets.image_size
        self._scale = self.score_scale()
        scores = np.minimum(dets.scores * self._scale, 1.0)
        usable = np.flatnonzero(scores >= cfg.low_score)
        masks = [BoxMask.empty(size)] * len(dets)
        for c in usable:
            masks[c] = dets.masks[c]
        kf = KeyframeDetections(dets, masks, usable, frame_index)
        high = (scores >= cfg.high_score) & ~held
        by_state = {s: [t for t in self.tracks if t.state is s] for s in TrackState}
        matched: set[int] = set()
        costs = PairCosts(cfg, self._now_ms())

        # 1. confirmed and lost tracks x confident detections: place + appearance
        matched |= self._associate(
            by_state[TrackState.CONFIRMED] + by_state[TrackState.LOST],
            kf,
            high,
            costs.full,
            cfg.max_cost,
        )
        # 2. confirmed tracks still unmatched x the less confident and the held detections:
        # place only
        rest = [t for t in by_state[TrackState.CONFIRMED] if id(t) not in matched]
        matched |= self._associate(
            rest, kf, ~high, costs.place_only, 1.0 - cfg.low_min_iou, learn_appearance=False
        )
        # 3. tentative tracks x detections left down to weak_start_score
        weak = (scores >= min(cfg.high_score, cfg.weak_start_score)) & ~held
        matched |= self._associate(
            by_state[TrackState.TENTATIVE], kf, weak, costs.full, cfg.max_cost
        )
        for t in by_state[TrackState.CONFIRMED] + by_state[TrackState.TENTATIVE]:
            if id(t) not in matched:
                self._lose(t)
        # 4. lost tracks (including the ones just lost) x detections left down to
        # weak_start_score: appearance
        lost = [t for t in self.tracks if t.state is TrackState.LOST and id(t) not in matched]
        self._associate(lost, kf, weak, costs.reid, cfg.reid_max_distance, reid=True)
        # 5. new tentative tracks
        for c in kf.left[~held[kf.left]]:
            if scores[c] >= cfg.new_track_score:
                self._start(dets, int(c), frame_index)
            elif scores[c] >= cfg.weak_start_score:
                self._start(dets, int(c), frame_index, confirm_at=cfg.weak_start_hits)

    def _associate(
        self,
        tracks: list[Track],
        kf: KeyframeDetections,
        eligible: np.ndarray,
        cost_fn: Callable[[list[Track], Candidates], np.ndarray],
        max_cost: float,
        *,
        learn_appearance: bool = True,
        reid: bool = False,
    ) -> set[int]:
        """Match ``tracks`` with the eligible detections still left; returns the matched tracks."""
        cols = kf.left[eligible[kf.left]]
        if not tracks or not len(cols):
            return set()
        t0 = time.perf_counter()
        m = linear_assignment(cost_fn(tracks, kf.candidates(cols)), max_cost)
        self.association_s += time.perf_counter() - t0
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
            learn_mask_trust(t, box, det_mask, use_kalman=cfg.use_kalman)
        new_mask = smooth_mask(
            dets.masks[c],
            box,
            None if reid else t.mask,
            weight=self.smoothing,
            min_area=self.min_mask_area,
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
        t.missed_ms = 0.0
        self._note_uncertainty(t, dets, c)
        t.last_box = np.asarray(box, np.float32).copy()
        if t.state is TrackState.LOST or self._earned_confirmation(t):
            t.transition(TrackState.CONFIRMED)
        self._remember_score(t)

    def _start(self, dets: Detections, c: int, frame_index: int, confirm_at: int = 0) -> None:
        mask = smooth_mask(
            dets.masks[c], dets.xyxy[c], None, weight=1.0, min_area=self.min_mask_area
        )
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
            confirm_at=confirm_at,
        )
        t.vote(t.class_id, t.score)
        self._next_id += 1
        self.total_started += 1
        if self._earned_confirmation(t):
            t.transition(TrackState.CONFIRMED)
        self._remember_score(t)
        self.tracks.append(t)
        self._note_uncertainty(t, dets, c)

    def _note_uncertainty(self, t: Track, dets: Detections, c: int) -> None:
        """Keep detection ``c``'s ``uncertainty`` for track ``t``'s output on this keyframe."""
        if self._uncertainty is not None and dets.uncertainty is not None:
            self._uncertainty[t.track_id] = float(dets.uncertainty[c])

    def _remember_score(self, t: Track) -> None:
        """The score of a detection just kept, for ``score_scale``: on confirmed tracks the
        detector started on its own (``confirm_at`` 0), not on weak starts."""
        if self.config.score_reference and t.state is TrackState.CONFIRMED and not t.confirm_at:
            self._kept_scores.append(t.score)

    def _earned_confirmation(self, t: Track) -> bool:
        """Enough matched keyframes (its own count for a weak start, else ``confirm_hits``),
        or a detection confident enough to confirm at once."""
        needed = t.confirm_at or self.config.confirm_hits
        return t.hits >= needed or t.score * self._scale >= self.config.confirm_score

    def _now_ms(self) -> float:
        return 0.0 if self._time_ms is None else self._time_ms

    def _expire(self) -> None:
        h, w = self._size
        for t in self.tracks:
            if t.state is not TrackState.LOST:
                continue
            gone = t.missed_ms / 1000.0 > self.config.max_lost_s
            if self.config.use_kalman and not gone:
                # it was last seen at the image's edge and its prediction has left the image
                # (not: extrapolated out of it from the middle, e.g. across a camera outage)
                x0, y0, x1, y1 = t.last_box
                margin = 0.5 * max(y1 - y0, 1.0)
                at_edge = x0 < margin or y0 < margin or x1 > w - margin or y1 > h - margin
                cx, cy = t.kf.x[0, 0], t.kf.x[1, 0]
                gone = at_edge and not (0 <= cx < w and 0 <= cy < h)
            if gone:
                t.transition(TrackState.REMOVED)
        self.tracks = [t for t in self.tracks if t.state is not TrackState.REMOVED]

    def _confirmed(self) -> Detections:
        """The frame's confirmed instances with live masks, box-local, in track-id order."""
        live = sorted(
            (t for t in self.tracks if t.state is TrackState.CONFIRMED and t.mask is not None),
            key=lambda t: t.track_id,
        )
        if not live:
            return Detections.empty(*self._size)
        return Detections(
            xyxy=np.stack([t.last_box for t in live]),
            masks=[t.mask for t in live],
            scores=np.array([t.score for t in live], np.float32),
            class_ids=np.array([t.class_id for t in live], np.int64),
            embeddings=np.stack([t.embedding for t in live]),
            track_ids=np.array([t.track_id for t in live], np.int64),
            mask_confidence=np.array([mask_confidence(t.mask) for t in live], np.float32),
            agreement=np.full(len(live), np.nan, np.float32),
            image_size=self._size,
            uncertainty=None
            if self._uncertainty is None
            else np.array([self._uncertainty.get(t.track_id, np.nan) for t in live], np.float32),
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
            # the scores behind score_scale(); a checkpoint of the tracker before 2026-12-07
            # has "recent_scores" (every detection's), which is not read
            "kept_scores": list(self._kept_scores),
        }

    def load_state_dict(self, state: dict) -> None:
        """Restore a ``state_dict`` (same configuration)."""
        self._next_id = int(state["next_id"])
        self._frame = int(state["frame"])
        self._time_ms = None if state["time_ms"] is None else float(state["time_ms"])
        self._size = tuple(int(v) for v in state["size"])
        self.total_started = int(state["total_started"])
        self.tracks = [track_from_state(d) for d in state["tracks"]]
        self._kept_scores.clear()
        self._kept_scores.extend(float(v) for v in state.get("kept_scores", []))

    def end_all(self) -> None:
        """End every track (e.g. after a long gap in the stream); ids are not reused and the
        scores seen are kept (``reset`` forgets everything)."""
        for t in self.tracks:
            t.transition(TrackState.REMOVED)
        self.tracks = []
