"""Mask quality of chosen frames (e.g. the propagated, non-keyframe ones) against ground truth.

Contract: ``frame_mask_iou(gt, pred, frames)`` matches, frame by frame, predicted masks to
ground-truth masks one-to-one (Hungarian on mask IoU from ``pycocotools.mask.iou``, pairs
below ``min_iou`` unmatched) and returns:

* ``miou_matched``: mean IoU of the matched pairs (how good the masks are where the object
  was found);
* ``miou_gt``: mean over ground-truth instances of their matched IoU, 0 when unmatched
  (also falls when objects are lost);
* ``gt_instances``, ``matched``, ``frames``: the counts behind them.

With no frame to look at, both means are None.

Identities are not looked at (that is what HOTA/IDF1 are for).

``object_coverage(gt_by_frame, pred)`` follows each ground-truth object instead: per frame
the predicted mask that overlaps it most (by mask IoU, identities ignored for the choice)
covers it when their IoU reaches ``hit_iou``; it gives the share of object-frames covered,
their mean IoU, and the id switches (the covering track id changing from one covered frame
of an object to its next).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

import numpy as np
from pycocotools import mask as mask_utils
from scipy.optimize import linear_sum_assignment

from vis_eval.sequences import TrackSequence


def frame_mask_iou(
    gt: TrackSequence, pred: TrackSequence, frames: Iterable[int], *, min_iou: float = 0.5
) -> dict[str, float | int]:
    """Mean mask IoU of ``pred`` vs ``gt`` over ``frames`` (see module docstring)."""
    ious: list[float] = []
    n_gt = n_frames = 0
    for f in frames:
        g, p = gt.instances(f), pred.instances(f)
        n_frames += 1
        n_gt += len(g)
        if not g or not p:
            continue
        iou = np.asarray(mask_utils.iou([x.rle for x in p], [x.rle for x in g], [0] * len(g)))
        rows, cols = linear_sum_assignment(-iou)
        ious += [float(v) for v in iou[rows, cols] if v >= min_iou]
    if n_frames == 0:  # nothing to measure (e.g. no propagated frame at N=1)
        return {"miou_matched": None, "miou_gt": None, "gt_instances": 0, "matched": 0, "frames": 0}
    return {
        "miou_matched": round(100.0 * float(np.mean(ious)), 3) if ious else 0.0,
        "miou_gt": round(100.0 * float(np.sum(ious)) / n_gt, 3) if n_gt else 0.0,
        "gt_instances": n_gt,
        "matched": len(ious),
        "frames": n_frames,
    }


def propagated_frames(pred: TrackSequence, n_frames: int) -> list[int]:
    """Frames ``0..n_frames-1`` whose record says ``keyframe: false``.

    Raises:
        ValueError: ``pred`` has no keyframe information (not read from JSONL).
    """
    if pred.keyframes is None:
        raise ValueError("predictions carry no keyframe flags (MOTS text): read the JSONL")
    return [f for f in range(n_frames) if f not in pred.keyframes and f in pred.frames]


def object_coverage(
    gt_by_frame: dict[int, list[tuple[int, int, np.ndarray]]],
    pred: TrackSequence,
    *,
    min_pixels: int = 200,
    hit_iou: float = 0.5,
) -> dict:
    """Each ground-truth object followed through ``pred``'s frames (see module docstring).

    Args:
        gt_by_frame: {frame: [(object id, class id, (H, W) bool mask)]}
            (``vis_eval.sequences.read_mots_by_frame``).
        pred: the predictions (every frame with a record is looked at).
        min_pixels: objects smaller than this in a frame (mostly hidden) are not counted there.
        hit_iou: IoU at which the best mask covers the object.

    Returns:
        ``{"coverage": covered / counted object-frames, "mean_iou": mean IoU of the covered
        ones (0.0 if none), "switches": id switches summed over objects, "ids": {object id:
        [covering track id per covered frame]}}``.
    """
    ids: dict[int, list[int]] = defaultdict(list)
    ious: list[float] = []
    total = 0
    for f in sorted(pred.frames):
        masks = [(i.track_id, mask_utils.decode(i.rle).astype(bool)) for i in pred.frames[f]]
        for gid, _, gm in gt_by_frame.get(f, []):
            if gm.sum() < min_pixels:
                continue
            total += 1
            best, best_iou = None, 0.0
            for tid, pm in masks:
                iou = (gm & pm).sum() / max((gm | pm).sum(), 1)
                if iou > best_iou:
                    best, best_iou = tid, float(iou)
            if best_iou >= hit_iou:
                ious.append(best_iou)
                ids[gid].append(best)
    return {
        "coverage": len(ious) / max(total, 1),
        "mean_iou": float(np.mean(ious)) if ious else 0.0,
        "switches": sum(sum(1 for a, b in zip(v, v[1:]) if a != b) for v in ids.values()),
        "ids": dict(ids),
    }
