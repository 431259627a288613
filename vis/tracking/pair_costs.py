"""The costs of pairing a keyframe's detections with tracks, one matrix per association pass:
the tracker's one place where place (Kalman box and propagated mask), appearance, motion and
class meet, built from the pure functions of ``association``.

Contract: ``PairCosts(config, now_ms).full(tracks, candidates)`` (and ``place_only``,
``reid``) -> (N, M) cost with ``GATED`` for forbidden pairs; nothing is modified.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from vis.ops.boxes import box_iou
from vis.ops.masks import BoxMask, mask_iou, pair_iou
from vis.tracking import kalman
from vis.tracking.association import (
    GATED,
    association_cost,
    class_cost,
    cosine_distance,
    geometry_similarity,
    reach_gate,
)
from vis.tracking.config import TrackerConfig
from vis.tracking.track import Track
from vis.types import Detections

#: how fast a track's trust in its mask follows the latest evidence (EMA rate per match)
TRUST_RATE = 0.3


@dataclasses.dataclass
class KeyframeDetections:
    """One keyframe's detections as the passes see them."""

    dets: Detections
    masks: list[BoxMask]
    left: np.ndarray  # indices of the detections not yet matched
    frame_index: int

    def candidates(self, cols: np.ndarray) -> Candidates:
        d = self.dets
        return Candidates(
            d.xyxy[cols],
            d.embeddings[cols],
            d.class_ids[cols],
            [self.masks[c] for c in cols],
            d.image_size,
        )


@dataclasses.dataclass(frozen=True)
class Candidates:
    """The detections one pass looks at (no full-frame masks are copied)."""

    xyxy: np.ndarray
    embeddings: np.ndarray
    class_ids: np.ndarray
    masks: list[BoxMask]
    image_size: tuple[int, int]

    def __len__(self) -> int:
        return len(self.xyxy)


class PairCosts:
    """Cost matrices of one keyframe (stream time ``now_ms``) under ``config``."""

    def __init__(self, config: TrackerConfig, now_ms: float) -> None:
        self.config = config
        self.now_ms = now_ms

    def predicted_boxes(self, tracks: list[Track]) -> np.ndarray:
        if self.config.use_kalman:
            return np.stack([kalman.state_box(t.kf) for t in tracks])
        return np.stack([t.last_box for t in tracks])

    def motion_ok(self, tracks: list[Track], dets: Candidates) -> np.ndarray | None:
        if not (self.config.motion_gate and self.config.use_kalman):
            return None
        return kalman.centre_distance2_many([t.kf for t in tracks], dets.xyxy) <= (
            kalman.GATE_CHI2_2D
        )

    def same_class(self, tracks: list[Track], dets: Candidates) -> np.ndarray:
        return np.array([t.class_id for t in tracks])[:, None] == dets.class_ids[None, :]

    def place(self, tracks: list[Track], dets: Candidates) -> np.ndarray:
        size = dets.image_size
        m_iou = mask_iou([t.mask or BoxMask.empty(size) for t in tracks], dets.masks)
        b_iou = box_iou(self.predicted_boxes(tracks), dets.xyxy)
        return geometry_similarity(b_iou, m_iou, self.mask_weights(tracks))

    def mask_weights(self, tracks: list[Track]) -> np.ndarray:
        """(N,) weight of each track's propagated-mask IoU: none without a mask, else the
        track's learned trust in its mask (``mask_weight`` when not adaptive)."""
        trust = [
            t.mask_trust if self.config.adaptive_mask_weight else self.config.mask_weight
            for t in tracks
        ]
        return np.array([w if t.mask is not None else 0.0 for w, t in zip(trust, tracks)])

    def full(self, tracks: list[Track], dets: Candidates) -> np.ndarray:
        cfg = self.config
        emb = cosine_distance(np.stack([t.embedding for t in tracks]), dets.embeddings)
        return association_cost(
            self.place(tracks, dets),
            emb,
            self.same_class(tracks, dets),
            appearance_weight=cfg.appearance_weight,
            min_geometry=cfg.min_iou,
            max_emb_dist=cfg.max_embedding_distance,
            motion_ok=self.motion_ok(tracks, dets),
            class_penalty=cfg.class_penalty_or_gate,
        )

    def place_only(self, tracks: list[Track], dets: Candidates) -> np.ndarray:
        cfg = self.config
        no_emb = np.zeros((len(tracks), len(dets)))
        return association_cost(
            self.place(tracks, dets),
            no_emb,
            self.same_class(tracks, dets),
            appearance_weight=0.0,
            min_geometry=cfg.low_min_iou,
            max_emb_dist=1.0,
            motion_ok=self.motion_ok(tracks, dets),
            class_penalty=cfg.class_penalty_or_gate,
        )

    def reid(self, tracks: list[Track], dets: Candidates) -> np.ndarray:
        cfg = self.config
        if not dets.embeddings.shape[1]:
            return np.full((len(tracks), len(dets)), GATED)
        dist = cosine_distance(np.stack([t.embedding for t in tracks]), dets.embeddings)
        dist = dist + class_cost(self.same_class(tracks, dets), cfg.class_penalty_or_gate)
        ok = (dist <= cfg.reid_max_distance) & self.within_reach(tracks, dets)
        motion = self.motion_ok(tracks, dets)
        if motion is not None:
            ok &= motion
        return np.where(ok, dist, GATED)

    def within_reach(self, tracks: list[Track], dets: Candidates) -> np.ndarray:
        now = self.now_ms
        lost_s = np.array([(now - t.last_seen_ms) / 1000.0 for t in tracks])
        return reach_gate(
            np.stack([t.last_box for t in tracks]),
            lost_s,
            dets.xyxy,
            max_speed=self.config.max_speed,
        )


def learn_mask_trust(
    t: Track, det_box: np.ndarray, det_mask: BoxMask | None, *, use_kalman: bool
) -> None:
    """Which predictor found this detection better, the motion model's box or the mask the
    flow carried? Inverse-error weighting of the two, averaged over the track's matches:
    a static camera and steady walkers favour the box, a panning camera or a deforming
    object the mask."""
    if det_mask is None or t.mask is None or not use_kalman:
        return
    box_err = 1.0 - float(box_iou(kalman.state_box(t.kf)[None], det_box[None])[0, 0])
    mask_err = 1.0 - pair_iou(t.mask, det_mask)
    target = box_err / max(box_err + mask_err, 1e-6) if box_err + mask_err > 0 else 0.5
    t.mask_trust = (1 - TRUST_RATE) * t.mask_trust + TRUST_RATE * target
