import numpy as np
import pytest

from tests.conftest import disk_mask
from vis.ops.masks import (
    BoxMask,
    clean_mask,
    duplicate_of,
    is_box,
    mask_iou,
    overlapping_pairs,
)


def brute_iou(a, b):
    return np.array([[(x & y).sum() / max((x | y).sum(), 1) for y in b] for x in a])


def test_mask_iou_matches_full_frame_computation():
    rng = np.random.default_rng(0)
    fulls = [disk_mask(60, 80, *rng.uniform(10, 60, 2), rng.uniform(4, 15)) for _ in range(7)]
    crops = [BoxMask.from_full(m) for m in fulls]
    assert np.allclose(mask_iou(crops[:3], crops[3:]), brute_iou(fulls[:3], fulls[3:]))


@pytest.mark.parametrize("n, m", [(0, 0), (0, 3), (2, 0)])
def test_mask_iou_empty(n, m):
    masks = [BoxMask.from_full(disk_mask(20, 20, 10, 10, 5))] * max(n, m)
    assert mask_iou(masks[:n], masks[:m]).shape == (n, m)


def test_only_overlapping_pairs_are_compared():
    def sq(x, y):
        return BoxMask(x, y, np.ones((10, 10), np.float32), (200, 200))

    a = [sq(0, 0), sq(100, 100)]
    b = [sq(5, 5), sq(150, 150), sq(10, 0)]  # (0,0)-(5,5) overlap; (0,0)-(10,0) only touch
    assert overlapping_pairs(a, b).tolist() == [[0, 0]]
    iou = mask_iou(a, b)
    assert iou[0, 0] == pytest.approx(25 / 175)
    assert np.count_nonzero(iou) == 1


def test_boxmask_round_trip_and_box():
    full = disk_mask(40, 50, 20, 15, 6)
    bm = BoxMask.from_full(full)
    assert np.array_equal(bm.to_full(), full)
    assert bm.tight_box().tolist() == [14, 9, 27, 22]
    assert BoxMask.from_full(np.zeros((5, 5), bool)) is None


def test_crop_or_empty_gives_an_empty_crop_that_overlaps_nothing():
    full = disk_mask(40, 50, 20, 15, 6)
    assert np.array_equal(BoxMask.crop_or_empty(full).to_full(), full)
    none = BoxMask.crop_or_empty(np.zeros((40, 50), bool))
    assert none.area == 0 and none.image_size == (40, 50)
    assert mask_iou([none], [BoxMask.from_full(full)])[0, 0] == 0.0


def test_clean_mask_removes_specks_and_fills_holes():
    prob = np.zeros((40, 40), np.float32)
    prob[5:30, 5:30] = 1.0
    prob[15:17, 15:17] = 0.0  # small hole
    prob[35, 35] = 1.0  # speck
    out = clean_mask(prob, min_area=10)
    assert out[15, 15] and not out[35, 35]
    assert out.sum() == 25 * 25


def test_duplicates_keep_the_best_of_each_object_whatever_its_class():
    h, w = 60, 80
    a = disk_mask(h, w, 20, 30, 10)
    a_again = disk_mask(h, w, 21, 30, 10)  # the same object detected twice (IoU ~0.9)
    b = disk_mask(h, w, 60, 30, 10)
    touching = disk_mask(h, w, 33, 30, 6)  # a neighbour overlapping a little
    masks = [BoxMask.from_full(m) for m in (a, a_again, b, touching)]
    scores = np.array([0.7, 0.9, 0.8, 0.6])

    def kept(masks, scores, max_iou):
        return np.flatnonzero(duplicate_of(masks, scores, max_iou) < 0).tolist()

    assert kept(masks, scores, 0.5) == [1, 2, 3]
    assert kept(masks, scores, 1.0) == [0, 1, 2, 3]
    assert kept(masks[:1], scores[:1], 0.5) == [0]
    # each dropped mask names the kept one it duplicates
    assert duplicate_of(masks, scores, 0.5).tolist() == [1, -1, -1, -1]


def test_a_mask_that_fills_its_box_is_a_box_and_a_silhouette_is_not():
    h, w = 60, 80
    rect = np.zeros((h, w), bool)
    rect[10:50, 20:35] = True
    assert is_box(BoxMask.from_full(rect))
    assert not is_box(BoxMask.from_full(disk_mask(h, w, 40, 30, 12)))
    assert not is_box(BoxMask.empty((h, w)))


def test_a_box_becomes_its_filled_mask_clipped_to_the_image():
    m = BoxMask.from_box([10.4, 5.6, 30, 25], (40, 50))
    assert (m.x0, m.y0, m.x1, m.y1) == (10, 6, 30, 25) and m.area == 20 * 19 and is_box(m)
    clipped = BoxMask.from_box([-5, -5, 60, 10], (40, 50))
    assert (clipped.x0, clipped.y0, clipped.x1, clipped.y1) == (0, 0, 50, 10)
    assert BoxMask.from_box([45, 10, 70, 20], (40, 50)).area == 5 * 10
    assert BoxMask.from_box([60, 10, 70, 20], (40, 50)).area == 0  # outside the image
