import numpy as np
import pytest

from vis.ops.boxes import box_iou, cxcysr_to_xyxy, masks_to_boxes, xyxy_to_cxcysr


@pytest.mark.parametrize(
    "a, b, expected",
    [
        ([[0, 0, 10, 10]], [[0, 0, 10, 10]], [[1.0]]),
        ([[0, 0, 10, 10]], [[5, 0, 15, 10]], [[50 / 150]]),
        ([[0, 0, 10, 10]], [[20, 20, 30, 30]], [[0.0]]),
        (np.zeros((0, 4)), [[0, 0, 1, 1]], np.zeros((0, 1))),
        ([[0, 0, 1, 1]], np.zeros((0, 4)), np.zeros((1, 0))),
    ],
)
def test_box_iou_table(a, b, expected):
    assert np.allclose(box_iou(np.array(a, float), np.array(b, float)), expected)


def test_box_state_round_trip():
    box = np.array([10.0, 20.0, 50.0, 40.0])
    assert np.allclose(cxcysr_to_xyxy(xyxy_to_cxcysr(box)), box)


def test_masks_to_boxes_tight_and_empty():
    m = np.zeros((2, 10, 10), bool)
    m[0, 2:5, 3:8] = True
    assert masks_to_boxes(m).tolist() == [[3, 2, 8, 5], [0, 0, 0, 0]]
