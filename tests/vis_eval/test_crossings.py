"""Crossing events on ground truth, and what a tracker did at each: a scripted scene of two
people walking past each other, tracked once with a swap and once without."""

from __future__ import annotations

import numpy as np

from vis_eval.crossings import Crossing, crossing_events, id_timeline, outcomes


def box(cx: float) -> np.ndarray:
    return np.array([cx - 10, 0, cx + 10, 60], np.float32)


# person 1 walks right, person 2 left; they overlap while |x1 - x2| < 20: frames 9-11
GT = {f: [(1, box(10 + 5 * f)), (2, box(110 - 5 * f))] for f in range(21)}
# a third person far away never crosses
for f in range(21):
    GT[f].append((3, box(400)))


def tracker(swap: bool):
    out = {}
    for f, people in GT.items():
        ids = {1: 11, 2: 12, 3: 13}
        if swap and f > 10:
            ids = {1: 12, 2: 11, 3: 13}
        out[f] = [(ids[g], b.copy()) for g, b in people]
    return out


def test_one_event_where_the_two_boxes_overlap():
    assert crossing_events(GT) == [Crossing(1, 2, 9, 11)]
    assert crossing_events(GT, min_frames=4) == []
    assert crossing_events({}) == []


def test_a_swap_at_the_crossing_is_counted_and_a_clean_pass_is_not():
    events = crossing_events(GT)
    (swapped,) = outcomes(GT, tracker(swap=True), events)
    assert swapped["switches"] == 2 and not swapped["kept"]
    (clean,) = outcomes(GT, tracker(swap=False), events)
    assert clean["switches"] == 0 and clean["kept"]


def test_id_timeline_names_the_covering_track_per_frame():
    t = id_timeline(GT, tracker(swap=True))
    assert t[1][0] == 11 and t[1][20] == 12 and t[3] == {f: 13 for f in range(21)}
    assert id_timeline(GT, {}) == {}


def test_a_fold_in_time_is_renumbered_from_zero():
    from vis_eval.pets09 import FOLDS, span

    fold = span(GT, 5, 8)
    assert sorted(fold) == [0, 1, 2] and fold[0] == GT[5]
    assert span({}, 0, 2) == {0: [], 1: []}
    assert FOLDS == {"A": (0, 200), "B": (200, 400)}
