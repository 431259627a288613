"""bench.reid_probe's measures: a person is re-identified when their own later embedding is
the nearest among everyone in view, and drift is the distance from the reference model's."""

import numpy as np

from bench.reid_probe import drift, reid


def unit(v) -> np.ndarray:
    v = np.asarray(v, np.float32)
    return v / np.linalg.norm(v)


def test_rank1_counts_a_sighting_right_only_when_the_same_person_is_nearest():
    hist = unit([1, 1])
    emb = {
        0: {1: (unit([1, 0, 0]), hist), 2: (unit([0, 1, 0]), hist)},
        # frame 5: person 1 no longer looks like themselves (2 is nearer to how 1 looked);
        # 2 still does
        5: {1: (unit([0, 1, 0.5]), hist), 2: (unit([0.3, 1, 0]), hist)},
    }
    r = reid(emb, 5, "box_head")
    assert r["pairs"] == 2 and r["rank1"] == 50.0
    assert reid(emb, 3, "box_head")["pairs"] == 0  # nobody seen twice at that gap


def test_drift_is_the_mean_distance_to_the_reference_embedding_of_the_same_box():
    hist = unit([1, 1])
    ref = {0: {1: (unit([1, 0]), hist), 2: (unit([0, 1]), hist)}}
    moved = {0: {1: (unit([1, 0]), hist), 2: (unit([1, 1]), hist)}}
    assert drift(ref, ref) == 0.0
    assert abs(drift(moved, ref) - (1 - np.sqrt(0.5)) / 2) < 1e-4
