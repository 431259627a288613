"""Pinned quality on real pedestrians: PETS 2009 S2.L1, frames 0-399 (``../shared/data/
pets09-dev``), our tracker given another detector's detections or the ground-truth boxes,
scored with TrackEval on the whole span and on folds A (0-199) and B (200-399). The figures
and their tolerances: ``tests/data/expected_scores.json``. Skips, in one line, without the
shared data or the footage."""

import pytest

from tests.quality.cases import MEASURE, check
from vis_eval import pets09

pytestmark = pytest.mark.slow

missing = pets09.available()
if missing:
    pytest.skip(f"PETS09 quality pins skipped: {missing}", allow_module_level=True)


def test_foreign_detections_every_frame():
    """A foreign COCO detector on every frame: HOTA / AssA / IDSW of the README's table."""
    check("pets09_foreign_N1", MEASURE["pets09_foreign_N1"]())


def test_ground_truth_boxes_every_frame():
    """The ground truth's boxes without ids on every frame: association alone."""
    check("pets09_gt_N1", MEASURE["pets09_gt_N1"]())


def test_foreign_detections_at_n5_over_every_keyframe_phase():
    """Keyframes every 5 frames, at each of the 5 phases a stream can start at, and the mean
    over them (what N=5 is worth)."""
    check("pets09_foreign_N5", MEASURE["pets09_foreign_N5"]())


def test_ground_truth_boxes_at_n5():
    """Ground-truth boxes on every 5th frame: the masks carried between keyframes."""
    check("pets09_gt_N5", MEASURE["pets09_gt_N5"]())
