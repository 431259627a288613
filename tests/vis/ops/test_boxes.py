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


def test_support_rect_matches_the_rows_and_columns_of_true_pixels():
    """The OpenCV bounding rectangle used on every warped mask: the same rectangle as the
    true rows and columns, on views that are not contiguous, and None when nothing is set."""
    from vis.ops.boxes import support_rect

    rng = np.random.default_rng(0)
    for _ in range(50):
        m = np.zeros((rng.integers(1, 60), rng.integers(1, 60)), bool)
        k = rng.integers(0, 4)
        for _ in range(k):
            m[rng.integers(0, m.shape[0]), rng.integers(0, m.shape[1])] = True
        for view in (m, m[:, ::2], m.T):
            rows, cols = np.flatnonzero(view.any(1)), np.flatnonzero(view.any(0))
            want = None if len(rows) == 0 else (cols[0], rows[0], cols[-1] + 1, rows[-1] + 1)
            assert support_rect(view) == want
    assert support_rect(np.zeros((0, 5), bool)) is None
