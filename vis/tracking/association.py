"""Pairwise costs and Hungarian assignment. The cost matrix is the one seam between
appearance/geometry and assignment.

All functions are pure: (N, ...), (M, ...) -> (N, M); empty inputs give empty outputs;
inputs are never modified.
"""

from __future__ import annotations

import dataclasses

import numpy as np
from scipy.optimize import linear_sum_assignment

#: cost given to forbidden (gated) pairs; larger than any real cost
GATED = 1e6


def cosine_distance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(N, D), (M, D) L2-normalised rows -> (N, M) distance 1 - cos in [0, 2].

    With D == 0 (no embeddings) the distance is 0 everywhere.
    """
    a = np.asarray(a, np.float64).reshape(len(a), -1)
    b = np.asarray(b, np.float64).reshape(len(b), -1)
    if a.shape[1] == 0 or b.shape[1] == 0 or len(a) == 0 or len(b) == 0:
        return np.zeros((len(a), len(b)))
    return np.clip(1.0 - a @ b.T, 0.0, 2.0)


@dataclasses.dataclass(frozen=True)
class Match:
    """Result of an assignment: index pairs plus the unmatched rows and columns."""

    pairs: np.ndarray  # (K, 2) int: row, col
    unmatched_rows: np.ndarray
    unmatched_cols: np.ndarray


def linear_assignment(cost: np.ndarray, max_cost: float) -> Match:
    """Minimum-cost assignment; pairs costing more than ``max_cost`` are rejected.

    Args:
        cost: (N, M) cost matrix (not modified). Use ``GATED`` for forbidden pairs.
        max_cost: accept a pair only if its cost <= max_cost.
    """
    n, m = cost.shape
    if n == 0 or m == 0:
        return Match(np.zeros((0, 2), int), np.arange(n), np.arange(m))
    rows, cols = linear_sum_assignment(cost)
    ok = cost[rows, cols] <= max_cost
    pairs = np.stack([rows[ok], cols[ok]], axis=1)
    return Match(
        pairs, np.setdiff1d(np.arange(n), pairs[:, 0]), np.setdiff1d(np.arange(m), pairs[:, 1])
    )


def class_cost(same_class: np.ndarray, class_penalty: float | None) -> np.ndarray:
    """(N, M) cost added for class disagreement: 0 for pairs of the same class, else
    ``class_penalty``, or ``GATED`` (forbidden) when it is None."""
    return np.where(same_class, 0.0, GATED if class_penalty is None else class_penalty)


def geometry_similarity(
    box_iou: np.ndarray, mask_iou: np.ndarray, mask_weights: np.ndarray
) -> np.ndarray:
    """How well each track's predicted place fits each detection, in [0, 1].

    Args:
        box_iou: (N, M) IoU of the tracks' motion-predicted boxes and the detections' boxes.
        mask_iou: (N, M) IoU of the tracks' propagated masks and the detections' masks.
        mask_weights: (N,) weight of each track's mask IoU (0 for a track without a mask);
            the box IoU gets the rest.

    Returns:
        (N, M) ``w * mask_iou + (1 - w) * box_iou`` row by row.
    """
    w = np.asarray(mask_weights, np.float64).reshape(-1, 1)
    return w * mask_iou + (1.0 - w) * box_iou


def association_cost(
    geometry: np.ndarray,
    emb_dist: np.ndarray,
    same_class: np.ndarray,
    *,
    appearance_weight: float,
    min_geometry: float,
    max_emb_dist: float,
    motion_ok: np.ndarray | None = None,
    class_penalty: float | None = None,
) -> np.ndarray:
    """The one cost of pairing tracks with detections: geometry, appearance, class, gates.

    Args:
        geometry: (N, M) similarity of place in [0, 1] (``geometry_similarity``).
        emb_dist: (N, M) cosine distance of the tracks' embeddings and the detections'.
        same_class: (N, M) bool, pairs of the same class.
        appearance_weight: weight of the embedding distance; ``1 - geometry`` gets the rest.
        min_geometry: gate, pairs whose geometry is below it are forbidden.
        max_emb_dist: gate, pairs whose appearance differs more are forbidden.
        motion_ok: (N, M) bool, the detection lies where the track's motion model allows
            (None: no motion gate).
        class_penalty: added to the cost of pairs of different classes; None forbids them.

    Returns:
        (N, M) cost; ``GATED`` for forbidden pairs.
    """
    cost = (1.0 - appearance_weight) * (1.0 - geometry) + appearance_weight * np.minimum(
        emb_dist, 1.0
    )
    extra = class_cost(same_class, class_penalty)
    allowed = (geometry >= min_geometry) & (emb_dist <= max_emb_dist) & (extra < GATED)
    if motion_ok is not None:
        allowed &= motion_ok
    return np.where(allowed, cost + extra, GATED)


def reach_gate(
    last_boxes: np.ndarray, lost_s: np.ndarray, det_boxes: np.ndarray, *, max_speed: float
) -> np.ndarray:
    """Where a lost object can have got to: within half its height plus ``max_speed`` heights
    per second lost of where it was last seen.

    Args:
        last_boxes: (N, 4) xyxy boxes where the tracks were last seen.
        lost_s: (N,) seconds since then.
        det_boxes: (M, 4) xyxy detection boxes.
        max_speed: box heights per second.

    Returns:
        (N, M) bool, True where the detection's centre is within reach.
    """
    last = np.asarray(last_boxes, np.float64).reshape(-1, 4)
    det = np.asarray(det_boxes, np.float64).reshape(-1, 4)
    if len(last) == 0 or len(det) == 0:
        return np.zeros((len(last), len(det)), bool)
    centre = (last[:, :2] + last[:, 2:]) / 2
    height = np.maximum(last[:, 3] - last[:, 1], 1.0)
    reach = height * (0.5 + max_speed * np.asarray(lost_s, np.float64).reshape(-1))
    det_centre = (det[:, :2] + det[:, 2:]) / 2
    dist = np.linalg.norm(det_centre[None, :, :] - centre[:, None, :], axis=2)
    return dist <= reach[:, None]
