import pytest

from tests.vis_eval.conftest import N_FRAMES, tiny_sequence
from vis_eval.sequences import TrackSequence
from vis_eval.trackeval_mots import TRACKING_FIELDS, evaluate_tracking


@pytest.fixture(scope="module")
def scores():
    gt = tiny_sequence()
    trackers = {
        "perfect": {"tiny": tiny_sequence()},
        "empty": {"tiny": TrackSequence()},
        "swap": {"tiny": tiny_sequence(swap_after=10)},
        "shifted": {"tiny": tiny_sequence(shift=3)},
    }
    return evaluate_tracking({"tiny": gt}, {"tiny": N_FRAMES}, trackers)


def test_perfect_prediction_scores_100(scores):
    r = scores["perfect"]["combined"]
    assert set(TRACKING_FIELDS) <= set(r)
    for k in ("HOTA", "DetA", "AssA", "MOTSA", "IDF1"):
        assert r[k] == pytest.approx(100.0), k
    assert r["IDSW"] == 0 and r["TP"] == 2 * N_FRAMES
    assert scores["perfect"]["sequences"]["tiny"]["HOTA"] == pytest.approx(100.0)


def test_empty_prediction_scores_0(scores):
    r = scores["empty"]["combined"]
    for k in ("HOTA", "DetA", "AssA", "MOTSA", "IDF1"):
        assert r[k] == 0.0, k
    assert r["FN"] == 2 * N_FRAMES


def test_one_id_swap_lowers_idf1_and_assa_and_counts_switches(scores):
    r, p = scores["swap"]["combined"], scores["perfect"]["combined"]
    assert r["DetA"] == pytest.approx(100.0)  # detection untouched
    assert r["IDSW"] == 2  # both objects switch once
    assert r["IDF1"] < p["IDF1"] and r["AssA"] < p["AssA"] and r["HOTA"] < p["HOTA"]
    assert r["IDF1"] == pytest.approx(50.0)  # each GT id matched to one pred id half the time


def test_worse_masks_lower_hota_but_not_identity(scores):
    r = scores["shifted"]["combined"]
    assert 0.0 < r["HOTA"] < 100.0 and r["LocA"] < 100.0
    assert r["IDSW"] == 0
