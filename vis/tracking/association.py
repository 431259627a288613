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
    return Match(pairs,
                 np.setdiff1d(np.arange(n), pairs[:, 0]),
                 np.setdiff1d(np.arange(m), pairs[:, 1]))


def class_cost(same_class: np.ndarray, class_penalty: float | None) -> np.ndarray:
    """(N, M) cost added for class disagreement: 0 for pairs of the same class, else
    ``class_penalty``, or ``GATED`` (forbidden) when it is None."""
    return np.where(same_class, 0.0, GATED if class_penalty is None else class_penalty)


def combined_cost(mask_iou: np.ndarray, emb_dist: np.ndarray, same_class: np.ndarray, *,
                  iou_weight: float, min_iou: float, max_emb_dist: float,
                  geometry_ok: np.ndarray | None = None,
                  class_penalty: float | None = None) -> np.ndarray:
    """Weighted mix of (1 - mask IoU) and embedding distance, with gates on both.

    Args:
        mask_iou: (N, M) IoU of the tracks' predicted masks and the detections' masks.
        emb_dist: (N, M) cosine distance of the tracks' embeddings and the detections'.
        same_class: (N, M) bool, pairs of the same class.
        iou_weight: weight of the IoU term; the embedding term gets ``1 - iou_weight``.
        min_iou: gate, pairs below it are forbidden unless ``geometry_ok`` allows them.
        max_emb_dist: gate, pairs above it are forbidden.
        geometry_ok: (N, M) bool, extra geometric evidence (e.g. the Kalman box overlaps).
        class_penalty: added to the cost of pairs of different classes; None forbids them.

    Returns:
        (N, M) cost; ``GATED`` for forbidden pairs.
    """
    cost = iou_weight * (1.0 - mask_iou) + (1.0 - iou_weight) * np.minimum(emb_dist, 1.0)
    geo = mask_iou >= min_iou
    if geometry_ok is not None:
        geo = geo | geometry_ok
    extra = class_cost(same_class, class_penalty)
    allowed = geo & (emb_dist <= max_emb_dist) & (extra < GATED)
    return np.where(allowed, cost + extra, GATED)
