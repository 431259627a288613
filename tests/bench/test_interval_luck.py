"""bench.interval_luck: each redraw changes the detections a little, the same way for a seed,
and the summary counts the draws where N=1 is at least N=5, at phase 0 and against the mean
over N=5's keyframe phases."""

import random

import pytest

from bench.interval_luck import phase_mean, redraw, summary


def record(n: int = 400) -> dict:
    return {"frame_index": 0, "instances": [{"score": 0.5, "bbox": [0, 0, 1, 1]}] * n}


def test_a_redraw_is_small_and_the_same_for_a_seed():
    rec = record()
    missed = redraw(rec, "5 % missed", random.Random(3))
    assert 0.9 * 400 < len(missed["instances"]) < 400
    assert missed == redraw(rec, "5 % missed", random.Random(3))
    scaled = redraw(rec, "scores +-5 %", random.Random(3))
    scores = [i["score"] for i in scaled["instances"]]
    assert len(scores) == 400 and all(0.475 <= s <= 0.525 for s in scores)
    assert len(set(scores)) > 100  # each detection its own factor
    with pytest.raises(ValueError):
        redraw(rec, "everything", random.Random(0))


def test_the_summary_counts_draws_where_n1_is_at_least_n5():
    draws = [
        {
            "kind": "k",
            "seed": 0,
            "N=1": {"A": 50.0, "B": 60.0},
            "N=5": {"A": 52.0, "B": 58.0},
            "N=5 phases": {"A": 49.0, "B": 61.0},
        },
        {
            "kind": "k",
            "seed": 1,
            "N=1": {"A": 54.0, "B": 61.0},
            "N=5": {"A": 52.0, "B": 58.0},
            "N=5 phases": {"A": 55.0, "B": 60.0},
        },
    ]
    s = summary(draws)["k"]
    assert s["A"]["n1_at_least_n5"] == 1 and s["B"]["n1_at_least_n5"] == 2
    assert s["A"]["N=1"]["mean"] == 52.0 and s["A"]["N=5"]["sd"] == 0.0
    assert s["A"]["n1_at_least_n5_phases"] == 1 and s["B"]["n1_at_least_n5_phases"] == 1
    assert s["A"]["N=5 phases"]["mean"] == 52.0


def test_the_phase_mean_is_per_fold():
    by_phase = {0: {"A": 52.0, "B": 63.0}, 1: {"A": 43.0, "B": 58.0}, 2: {"A": 49.0, "B": 59.0}}
    assert phase_mean(by_phase) == {"A": 48.0, "B": 60.0}
