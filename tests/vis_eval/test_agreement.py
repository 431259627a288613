"""``track_agreement``: two runs agree when every frame has the same track ids and every id's
mask overlaps at IoU >= min_iou; the first difference is named."""

from __future__ import annotations

import numpy as np

from vis.ops.masks import BoxMask
from vis.types import Detections, FrameResult
from vis_eval.agreement import track_agreement

H, W = 40, 60


def result(frame: int, objects: dict[int, tuple[int, int, int, int]]) -> FrameResult:
    """A frame whose tracks ``id -> (x1, y1, x2, y2)`` are filled rectangles."""
    masks, boxes = [], []
    for x1, y1, x2, y2 in objects.values():
        full = np.zeros((H, W), bool)
        full[y1:y2, x1:x2] = True
        masks.append(BoxMask.from_full(full) or BoxMask.empty((H, W)))
        boxes.append([x1, y1, x2, y2])
    d = Detections(
        xyxy=np.array(boxes, np.float32).reshape(-1, 4),
        masks=masks,
        scores=np.ones(len(boxes), np.float32),
        class_ids=np.ones(len(boxes), np.int64),
        track_ids=np.array(list(objects), np.int64),
        image_size=(H, W),
    )
    return FrameResult("s", frame, frame * 100.0, frame == 0, W, H, d, ["bg", "person"])


RUN = [
    result(0, {1: (5, 5, 25, 35), 2: (30, 5, 50, 35)}),
    result(1, {1: (6, 5, 26, 35)}),
    result(2, {}),
]


def test_a_run_agrees_with_itself():
    a = track_agreement(RUN, RUN)
    assert a.holds and a.frames == 3 and a.instances == 3 and a.min_mask_iou == 1.0


def test_an_id_swap_or_a_missing_track_breaks_agreement():
    swapped = [result(0, {2: (5, 5, 25, 35), 1: (30, 5, 50, 35)}), *RUN[1:]]
    a = track_agreement(RUN, swapped)
    assert (
        not a.holds
        and a.min_mask_iou == 0.0
        and "frame 0: track 1 mask IoU 0.0000" in (a.first_difference or "")
    )
    lost = [RUN[0], result(1, {}), RUN[2]]
    b = track_agreement(RUN, lost)
    assert not b.holds and b.id_mismatch_frames == 1
    assert (
        b.first_difference
        == "frame 1: track ids [1] vs [] (only in reference [1], only in other [])"
    )


def test_a_mask_one_pixel_off_is_below_0_99_but_above_0_9():
    # 20 x 30 rectangle shifted by one column: IoU = 580 / 620 = 0.935
    shifted = [result(0, {1: (6, 5, 26, 35), 2: (30, 5, 50, 35)}), *RUN[1:]]
    assert not track_agreement(RUN, shifted).holds
    assert track_agreement(RUN, shifted, min_iou=0.9).holds


def test_different_frames_are_named():
    a = track_agreement(RUN, RUN[:2])
    assert not a.holds and a.first_difference.startswith("different frames: 3 vs 2")
