"""The duplicate rule the tracker applies to every keyframe, as the pure function it is."""

import numpy as np

from tests.conftest import disk_mask
from tests.vis.tracking.test_people import H, W, people
from vis.tracking.config import TrackerConfig
from vis.tracking.duplicates import split_duplicates
from vis.types import Detections


def test_overlapping_silhouettes_are_one_object_and_overlapping_boxes_may_be_two():
    """Two masks with shapes overlapping by more than ``duplicate_iou`` are one object
    detected twice (the lower-scoring one is dropped); two masks that are their boxes
    overlapping as much may be two people passing, so the lower-scoring one, if the detector
    is sure of it, is kept, held (it may continue a track, never start one)."""
    cfg = TrackerConfig()
    boxes = people([("a", 100.0, 200.0), ("b", 104.0, 202.0)], score=[0.9, 0.6])
    left, held = split_duplicates(boxes, 1.0, cfg)
    assert len(left) == 2 and held.tolist() == [False, True]
    # a box the detector is unsure of (under high_score) is a fragment more often: dropped
    unsure = people([("a", 100.0, 200.0), ("b", 104.0, 202.0)], score=[0.9, 0.3])
    left, held = split_duplicates(unsure, 1.0, cfg)
    assert len(left) == 1 and held.tolist() == [False]
    shapes = Detections(
        xyxy=boxes.xyxy,
        masks=np.stack([disk_mask(H, W, 100, 170, 25), disk_mask(H, W, 103, 171, 25)]),
        scores=boxes.scores,
        class_ids=boxes.class_ids,
        embeddings=boxes.embeddings,
    )
    left, held = split_duplicates(shapes, 1.0, cfg)
    assert len(left) == 1 and held.tolist() == [False]
    assert left.scores.tolist() == [np.float32(0.9)]
    apart = people([("a", 60.0, 200.0), ("b", 200.0, 200.0)])
    left, held = split_duplicates(apart, 1.0, cfg)
    assert len(left) == 2 and held.tolist() == [False, False]
    assert left is apart  # nothing to split: the detections as given


def test_sure_is_read_on_the_trackers_score_scale_and_holding_can_be_turned_off():
    """``score_scale`` (the tracker's reading of an unsure detector) lifts a box under
    ``high_score`` to sure; ``hold_box_duplicates: false`` drops every duplicate."""
    unsure = people([("a", 100.0, 200.0), ("b", 104.0, 202.0)], score=[0.9, 0.4])
    left, held = split_duplicates(unsure, 1.0, TrackerConfig())
    assert len(left) == 1
    left, held = split_duplicates(unsure, 1.5, TrackerConfig())  # 0.4 read as 0.6
    assert held.tolist() == [False, True] and left.scores.tolist() == [np.float32(0.9)] + [
        np.float32(0.4)
    ]
    left, held = split_duplicates(unsure, 1.5, TrackerConfig(hold_box_duplicates=False))
    assert len(left) == 1 and held.tolist() == [False]
    # the kept detections keep their order and every field
    three = people([("c", 250.0, 200.0), ("a", 100.0, 200.0), ("b", 104.0, 202.0)], [0.5, 0.9, 0.3])
    left, held = split_duplicates(three, 1.0, TrackerConfig())
    assert left.scores.tolist() == [np.float32(0.5), np.float32(0.9)]
    assert np.array_equal(left.embeddings, three.embeddings[:2]) and left.image_size == (H, W)
    assert held.tolist() == [False, False]
