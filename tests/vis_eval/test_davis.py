"""DAVIS scoring: J of the one track that covers the object, ids it took, frames missed."""

import numpy as np
import pytest

from vis_eval.davis import available, score_object

H, W = 8, 10


def square(x: int, y: int = 2, s: int = 4) -> np.ndarray:
    m = np.zeros((H, W), bool)
    m[y : y + s, x : x + s] = True
    return m


def test_one_track_following_the_object():
    gt = [square(x) for x in range(4)]
    pred = {f: [(7, square(f)), (9, square(6 - f % 2, y=0, s=2))] for f in range(4)}
    s = score_object(gt, pred)
    assert s == {
        "frames": 4,
        "annotated": 4,
        "track_id": 7,
        "J_track": 1.0,
        "J_best": 1.0,
        "ids": 1,
        "missed": 0,
    }


def test_handed_from_id_to_id_and_a_missed_frame():
    gt = [square(0), square(1), square(2), square(3)]
    pred = {
        0: [(1, square(0))],
        1: [(1, square(1))],
        # frame 2: nothing; frame 3: another id, shifted by one pixel (IoU 3/5)
        3: [(2, square(4))],
    }
    s = score_object(gt, pred)
    assert s["track_id"] == 1
    assert s["J_track"] == pytest.approx(2 / 4)
    assert s["J_best"] == pytest.approx((1 + 1 + 0 + 0.6) / 4)
    assert s["ids"] == 2
    assert s["missed"] == 1


def test_poor_masks_count_as_missed_and_empty_annotations_are_left_out():
    gt = [square(0), np.zeros((H, W), bool), square(0)]
    pred = {0: [(5, square(2))], 1: [(5, square(2))], 2: [(5, square(0))]}  # IoU 8/24, -, 1
    s = score_object(gt, pred)
    assert s["annotated"] == 2
    assert s["J_track"] == pytest.approx((1 / 3 + 1) / 2, abs=1e-4)
    assert s["ids"] == 1 and s["missed"] == 1


def test_no_output_at_all():
    s = score_object([square(0)], {})
    assert s["track_id"] is None and s["J_track"] == 0.0 and s["missed"] == 1 and s["ids"] == 0


def test_wrong_mask_size_is_an_error():
    with pytest.raises(ValueError, match="mask shape"):
        score_object([square(0)], {0: [(1, np.zeros((4, 4), bool))]})


def test_available_names_the_missing_folder(tmp_path):
    assert "absent" in available(tmp_path / "nope")
    (tmp_path / "JPEGImages" / "480p" / "lucia").mkdir(parents=True)
    assert "Annotations" in available(tmp_path, ["lucia"])
