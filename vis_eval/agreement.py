"""Do two runs of the pipeline give the same tracks? Engine and precision equality where users
see it: whole-pipeline output, frame by frame.

Contract: ``track_agreement(reference, other)`` compares two runs' per-frame results (same
frames, in order): on every frame the same set of track ids, and for each id a mask IoU of at
least ``min_iou`` with the reference's mask of that id. It returns an ``Agreement`` whose
``holds`` says whether both are true everywhere and whose ``first_difference`` says where they
are not, in words.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from vis.ops.masks import pair_iou
from vis.types import FrameResult


@dataclasses.dataclass(frozen=True)
class Agreement:
    """frames: frames compared; id_mismatch_frames: frames whose track-id sets differ;
    instances: same-id instance pairs compared; min_mask_iou: the lowest mask IoU among them
    (1.0 when none); low_iou_instances: pairs below ``min_iou``; first_difference: the first
    frame that breaks agreement, described (None when it holds)."""

    frames: int
    id_mismatch_frames: int
    instances: int
    min_mask_iou: float
    low_iou_instances: int
    first_difference: str | None

    @property
    def holds(self) -> bool:
        return self.first_difference is None

    def to_json(self) -> dict:
        return {**dataclasses.asdict(self), "holds": self.holds}


def track_agreement(
    reference: Sequence[FrameResult], other: Sequence[FrameResult], *, min_iou: float = 0.99
) -> Agreement:
    """Compare ``other`` with ``reference`` frame by frame (see the module docstring)."""
    first: str | None = None
    if [r.frame_index for r in reference] != [r.frame_index for r in other]:
        first = (
            f"different frames: {len(reference)} vs {len(other)} results "
            f"(first indices {[r.frame_index for r in reference[:3]]} vs "
            f"{[r.frame_index for r in other[:3]]})"
        )
    id_mismatch = pairs = low = 0
    worst = 1.0
    for want, got in zip(reference, other):
        a = {int(t): m for t, m in zip(want.detections.track_ids, want.detections.masks)}
        b = {int(t): m for t, m in zip(got.detections.track_ids, got.detections.masks)}
        if set(a) != set(b):
            id_mismatch += 1
            if first is None:
                first = (
                    f"frame {want.frame_index}: track ids {sorted(a)} vs {sorted(b)} "
                    f"(only in reference {sorted(set(a) - set(b))}, only in other "
                    f"{sorted(set(b) - set(a))})"
                )
        for tid in sorted(set(a) & set(b)):
            both_empty = a[tid].area == 0 and b[tid].area == 0
            iou = 1.0 if both_empty else pair_iou(a[tid], b[tid])
            pairs += 1
            worst = min(worst, iou)
            if iou < min_iou:
                low += 1
                if first is None:
                    first = f"frame {want.frame_index}: track {tid} mask IoU {iou:.4f} < {min_iou}"
    return Agreement(
        frames=min(len(reference), len(other)),
        id_mismatch_frames=id_mismatch,
        instances=pairs,
        min_mask_iou=round(worst, 4),
        low_iou_instances=low,
        first_difference=first,
    )
