import numpy as np
import pytest

from tests.conftest import disk_mask
from vis_eval.coco_ap import coco_mask_ap

NAMES = {1: "disk", 2: "box"}


def gt():
    m = np.stack([disk_mask(64, 64, 20, 20, 8), disk_mask(64, 64, 45, 40, 10)])
    return m, np.array([1, 2])


def test_perfect_prediction_scores_100_and_empty_scores_0():
    m, c = gt()
    perfect = coco_mask_ap([(m, c)], [(m, c, np.array([0.9, 0.8]))], class_names=NAMES)
    assert perfect["mask_AP"] == pytest.approx(100.0)
    assert perfect["box_AP50"] == pytest.approx(100.0)
    empty = coco_mask_ap(
        [(m, c)], [(np.zeros((0, 64, 64), bool), np.zeros(0, int), np.zeros(0))], class_names=NAMES
    )
    assert empty["mask_AP"] == 0.0


def test_wrong_class_and_poor_masks_lower_the_score():
    m, c = gt()
    wrong = coco_mask_ap([(m, c)], [(m, c[::-1], np.array([0.9, 0.8]))], class_names=NAMES)
    shifted = np.stack([disk_mask(64, 64, 24, 20, 8), disk_mask(64, 64, 45, 40, 10)])
    partial = coco_mask_ap([(m, c)], [(shifted, c, np.array([0.9, 0.8]))], class_names=NAMES)
    assert wrong["mask_AP"] == 0.0
    assert 0.0 < partial["mask_AP"] < 100.0
