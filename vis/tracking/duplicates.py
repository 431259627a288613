"""One object detected twice on a keyframe: which detection the tracker keeps.

Contract: ``split_duplicates(detections, score_scale, config)`` is a pure function; the
tracker calls it on every keyframe before association (``Tracker.update``).
"""

from __future__ import annotations

import numpy as np

from vis.ops.masks import duplicate_of, is_box
from vis.tracking.config import TrackerConfig
from vis.types import Detections


def split_duplicates(
    detections: Detections, score_scale: float, config: TrackerConfig
) -> tuple[Detections, np.ndarray]:
    """One object detected twice (per-class NMS lets a second class through): of
    detections whose masks overlap by more than ``duplicate_iou`` the better-scoring one
    is kept. The other is dropped when the two masks have shapes: silhouettes
    overlapping that much are one object. When both masks are their boxes (a detector
    of boxes, ground-truth boxes) the overlap is only the boxes', which two people
    walking past each other reach too: if the detector is sure of the second box as
    well (``high_score``, on the tracker's score scale) it is kept as ``held`` (True),
    to continue a track nothing else matched, never to start one; a box it is unsure of
    is a fragment more often than a person, and is dropped
    (``tracker.hold_box_duplicates``: false drops every duplicate).

    Args:
        detections: the keyframe's N detections.
        score_scale: what the detector's scores are multiplied by before a threshold is
            applied (``Tracker.score_scale()``).
        config: ``duplicate_iou``, ``high_score`` and ``hold_box_duplicates`` apply.

    Returns:
        The M <= N detections left, in their order, and (M,) bool: which of them are held.
    """
    of = duplicate_of(detections.masks, detections.scores, config.duplicate_iou)
    if not (of >= 0).any():
        return detections, np.zeros(len(detections), bool)
    sure = np.minimum(detections.scores * score_scale, 1.0) >= config.high_score
    held = np.array(
        [
            config.hold_box_duplicates
            and k >= 0
            and sure[i]
            and is_box(detections.masks[i])
            and is_box(detections.masks[k])
            for i, k in enumerate(of)
        ],
        bool,
    )
    left = np.flatnonzero((of < 0) | held)
    return detections[left], held[left]
