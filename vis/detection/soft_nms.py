"""Gaussian Soft-NMS around any detector (``detector.nms: soft``).

Contract: ``soft_nms(boxes, scores, class_ids, sigma=..., min_score=...)`` returns the indices
kept (highest decayed score first) and their decayed scores; ``SoftNMSDetector(inner, ...)``
is a ``Detector`` that runs ``inner`` (built with its own NMS loose: ``LOOSE_NMS_IOU`` and
``candidates(max_detections)`` instances per frame) and applies ``soft_nms`` to each frame's
instances, keeping the best ``max_detections``. Everything after the network is numpy, so
every engine gives the same result from the same candidates.

Soft-NMS (Bodla et al., 2017): instead of deleting every instance whose box overlaps a
higher-scoring one of its class by more than a threshold, its score is multiplied by
``exp(-IoU^2 / sigma)``, so a person half hidden behind another keeps a lower score and can
still be found.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from vis.detection.base import Detector, WrappedDetector
from vis.ops.boxes import box_iou
from vis.types import Detections, Frame

#: the IoU above which the model's own NMS still suppresses under ``nms: soft``: only
#: near-copies of a box (what Soft-NMS would decay to a fifth of their score anyway)
LOOSE_NMS_IOU = 0.9
#: the most candidates per frame the model passes to Soft-NMS
MAX_CANDIDATES = 1000


def candidates(max_detections: int) -> int:
    """Instances per frame the model keeps for Soft-NMS: four times what is output (the
    decayed ones fall behind the rest), at most ``MAX_CANDIDATES``, at least
    ``max_detections``."""
    return max(max_detections, min(4 * max_detections, MAX_CANDIDATES))


def soft_nms(
    boxes: np.ndarray,
    scores: np.ndarray,
    class_ids: np.ndarray,
    *,
    sigma: float,
    min_score: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Gaussian Soft-NMS, per class.

    Repeatedly takes the instance of highest (decayed) score, then multiplies the score of
    every remaining instance of its class by ``exp(-IoU^2 / sigma)`` (box IoU with the one
    taken) and drops those that fall below ``min_score``. Ties go to the lower index.

    Args:
        boxes: (N, 4) x1 y1 x2 y2.
        scores: (N,) in [0, 1].
        class_ids: (N,) class of each instance (classes never decay each other).
        sigma: the Gaussian's width (> 0).
        min_score: the floor a decayed score must reach to be kept.

    Returns:
        ``(keep, decayed)``: (K,) int64 indices in the order taken (decayed score not
        increasing) and (K,) float32 their decayed scores.
    """
    n = len(scores)
    s = np.asarray(scores, np.float64).reshape(n).copy()
    cls = np.asarray(class_ids).reshape(n)
    iou = box_iou(boxes, boxes)
    alive = np.flatnonzero(s >= min_score)
    keep: list[int] = []
    while len(alive):
        i = int(alive[np.argmax(s[alive])])
        keep.append(i)
        alive = alive[alive != i]
        same = cls[alive] == cls[i]
        s[alive] *= np.where(same, np.exp(-(iou[i, alive] ** 2) / sigma), 1.0)
        alive = alive[s[alive] >= min_score]
    idx = np.asarray(keep, np.int64)
    return idx, s[idx].astype(np.float32)


class SoftNMSDetector(WrappedDetector):
    """``inner``'s detections with Gaussian Soft-NMS applied per frame.

    Args:
        inner: a detector whose own NMS is loose (``LOOSE_NMS_IOU``) and that keeps up to
            ``candidates(max_detections)`` instances per frame.
        sigma: ``detector.soft_nms_sigma``.
        min_score: the score floor after decay.
        max_detections: instances kept per frame (highest decayed scores).
    """

    def __init__(
        self, inner: Detector, *, sigma: float, min_score: float, max_detections: int
    ) -> None:
        super().__init__(inner)
        self.sigma = sigma
        self.min_score = min_score
        self.max_detections = max_detections

    def detect_frames(self, frames: Sequence[Frame]) -> list[Detections]:
        return [self.apply(d) for d in self.inner.detect_frames(frames)]

    def apply(self, dets: Detections) -> Detections:
        """Soft-NMS on one frame's instances: the kept ones, best first, decayed scores."""
        keep, decayed = soft_nms(
            dets.xyxy, dets.scores, dets.class_ids, sigma=self.sigma, min_score=self.min_score
        )
        keep, decayed = keep[: self.max_detections], decayed[: self.max_detections]
        out = dets[keep]
        out.scores = decayed
        return out
