"""bench.real_tracking's keyframe phases: ours at N > 1 is reported per phase and as the mean
and range over them, per fold and on the whole span. Skips without the shared PETS data."""

import pytest

from vis_eval import pets09

missing = pets09.available()
if missing:
    pytest.skip(f"needs PETS09: {missing}", allow_module_level=True)

from bench.real_tracking import _phase_cell, phase_scores  # noqa: E402


def test_phases_are_scored_per_fold_and_summarised_by_mean_and_range():
    gt = pets09.load_gt()
    # a run that is the ground truth itself, and one that lost fold B entirely
    half = {f: boxes for f, boxes in gt.items() if f < pets09.FOLDS["B"][0]}
    out = phase_scores(gt, [gt, half])
    perfect, lost_b = out["by_phase"]
    assert perfect == {"whole": 100.0, "A": 100.0, "B": 100.0}
    assert lost_b["A"] == 100.0 and lost_b["B"] == 0.0 and 0 < lost_b["whole"] < 100
    assert out["B"] == {"mean": 50.0, "min": 0.0, "max": 100.0}
    assert out["whole"]["max"] == 100.0 and out["whole"]["min"] == lost_b["whole"]
    assert _phase_cell(out) == f"{out['whole']['mean']:.1f} ({lost_b['whole']:.1f}-100.0)"
    assert _phase_cell(None) is None
