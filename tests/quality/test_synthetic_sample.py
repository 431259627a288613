"""Pinned quality on the synthetic demo clip (``data/sample``, 150 frames, with its MOTS
ground truth) through ``configs/demo.yaml`` and the shipped tiny model at keyframe intervals
1, 5 and 10: the share of object-frames covered by a mask at IoU >= 0.5, the mean IoU of
those masks, and id switches. The figures: ``tests/data/expected_scores.json``."""

import pytest

from tests.quality.cases import MEASURE, SAMPLE_INTERVALS, check

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("interval", SAMPLE_INTERVALS)
def test_synthetic_sample_coverage_iou_and_switches(interval):
    check(f"sample_N{interval}", MEASURE[f"sample_N{interval}"]())
