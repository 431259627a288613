"""The tracker's settings, validated at construction (``tracker:`` in the YAML config)."""

from __future__ import annotations

import dataclasses

from vis.config import require


@dataclasses.dataclass(frozen=True)
class TrackerConfig:
    """Association and lifecycle settings (see module docstring).

    Attributes:
        high_score: detections at least this confident take part in every pass.
        low_score: detections between this and ``high_score`` only continue tracks (pass 2).
        new_track_score: minimum score to start a track.
        weak_start_score: a detection left over scoring between this and ``new_track_score``
            starts a tentative track too, but one that is confirmed (output) only after
            ``weak_start_hits`` matched keyframes in a row, matching detections down to this
            score, and re-identification takes lost tracks back from detections down to it
            too (1: off). An object the detector is steadily unsure of is tracked, a flicker
            is not, and a person coming out from behind something at a weak score keeps
            their id.
        weak_start_hits: matched keyframes that confirm a weakly started track.
        score_reference: the thresholds above are set for detectors whose clear
            detections score at least this. ``level``, the 90th percentile of the scores
            of the last 512 detections kept on tracks the detector was sure enough of to
            start (``new_track_score``; not weak starts, whose scores in a scene without a
            clear object are the detector's false ones), says where a detector's clear
            detections sit; once 8 are kept, below the reference every score is read times
            ``score_reference / level`` (capped at 1) before any threshold applies.
            Detectors disagree about what a score means (the shipped models say 0.99 for a
            clear person, a small YOLO 0.75), and footage moves them too (light, size); a
            less sure detector is read on the scale the thresholds were set on, a surer one
            as it is. 0: off. Published scores are never changed.
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
        max_lost_s: seconds a LOST track is kept for re-identification (stream time with
            frames: an outage, see ``outage_s``, does not count).
        reid_max_distance: cosine-distance gate for re-identifying LOST tracks (pass 4).
        motion_gate: forbid pairs outside the Kalman prediction's 99 % ellipse.
        position_noise: Kalman process noise on the box, heights per sqrt(second).
        velocity_noise: Kalman process noise on its velocity, heights/s per sqrt(second).
        max_speed: re-identification reach: a lost track is looked for within half its
            height plus this many heights per second lost of where it was last seen.
        outage_s: a stretch of stream time longer than this with no frame at all (a camera
            outage, frames lost in decoding) makes every track forget its velocity: the
            tracker knows where objects were, not how they moved while it saw nothing.
        embedding_momentum: EMA momentum of a track's embedding.
        use_kalman: predict boxes with the Kalman filter (off: last box, no motion gate).
        class_penalty: cost added to a pair whose classes differ; negative forbids such pairs.
        duplicate_iou: a keyframe detection whose mask overlaps a higher-scoring one (of any
            class) by more than this IoU is the same object and is dropped (1 = keep all);
            applied by the tracker before association (``duplicates.split_duplicates``).
            When both masks fill their boxes (a detector of boxes, ground-truth boxes) the
            overlap is only the boxes', which two people walking past each other reach too: a
            detection scoring at least ``high_score`` is kept to continue a track nothing else
            matched, never to start one (``hold_box_duplicates``).
        hold_box_duplicates: keep such overlapping boxes to continue tracks (false: drop
            them as duplicates, as silhouettes are).
    """

    high_score: float = 0.5
    low_score: float = 0.1
    new_track_score: float = 0.6
    weak_start_score: float = 0.4
    weak_start_hits: int = 3
    score_reference: float = 0.85
    mask_weight: float = 0.5
    adaptive_mask_weight: bool = True
    appearance_weight: float = 0.3
    min_iou: float = 0.1
    low_min_iou: float = 0.5
    max_embedding_distance: float = 0.5
    max_cost: float = 0.8
    confirm_hits: int = 1
    confirm_score: float = 0.85
    max_lost_s: float = 4.0
    reid_max_distance: float = 0.2
    motion_gate: bool = True
    position_noise: float = 0.13
    velocity_noise: float = 0.12
    max_speed: float = 6.0
    outage_s: float = 1.0
    embedding_momentum: float = 0.8
    use_kalman: bool = True
    class_penalty: float = 0.2
    duplicate_iou: float = 0.5
    hold_box_duplicates: bool = True

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
        require(
            self.low_score <= self.weak_start_score <= 1.0,
            "tracker.weak_start_score",
            self.weak_start_score,
            "must be in [tracker.low_score, 1]",
        )
        require(
            self.weak_start_hits >= 1,
            "tracker.weak_start_hits",
            self.weak_start_hits,
            "must be >= 1",
        )
        require(
            0.0 <= self.score_reference <= 1.0,
            "tracker.score_reference",
            self.score_reference,
            "must be in [0, 1] (0: off)",
        )
        require(self.confirm_hits >= 1, "tracker.confirm_hits", self.confirm_hits, "must be >= 1")
        require(self.max_lost_s >= 0, "tracker.max_lost_s", self.max_lost_s, "must be >= 0")
        for key in ("position_noise", "velocity_noise", "max_speed", "outage_s"):
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
