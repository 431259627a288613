"""bench.tracker_cv's judgement: a setting is picked on one fold and reported on the other, and
replaces a default only if it wins both folds without losing the synthetic set."""

from bench.tracker_cv import judge, markdown, mean_scores


def row(a: float, b: float, synthetic: float | None = 70.0) -> dict:
    r = {"overrides": [], "cases": {"c1": {"A": {"HOTA": a}, "B": {"HOTA": b}}}}
    if synthetic is not None:
        r["synthetic"] = {"N=1": {"HOTA": synthetic}, "N=5": {"HOTA": synthetic}}
    return r


def test_the_fold_a_setting_wins_on_is_reported_on_b_and_only_all_round_winners_replace():
    rows = {
        "default": row(60, 70),
        "fits_a": row(65, 60),  # best on A, worst on B: what tuning on A alone would pick
        "wins_both": row(61, 71, synthetic=69.6),  # within 0.5 on the synthetic set
        "loses_synthetic": row(62, 72, synthetic=68.0),
        "no_synthetic_run": row(60.5, 70.5, synthetic=None),
    }
    verdict = judge(rows)
    assert verdict["picked"]["A"] == {
        "candidate": "fits_a",
        "tuned_on": 65,
        "reported_on": "B",
        "score": 60,
        "default_on_other": 70,
    }
    assert verdict["picked"]["B"]["candidate"] == "loses_synthetic"
    assert verdict["beats_default_on_both"] == ["wins_both", "no_synthetic_run"]
    md = markdown({"rows": rows, "judgement": verdict, "cases": ["c1"]})
    assert "Tuned on A: **fits_a** (mean HOTA 65 there); on B" in md
    assert "**wins_both**, **no_synthetic_run**" in md


def test_a_case_at_several_keyframe_phases_is_their_mean_per_fold_and_key():
    runs = [
        {"A": {"HOTA": 52.0, "IDSW": 16}, "B": {"HOTA": 63.0, "IDSW": 4}},
        {"A": {"HOTA": 43.0, "IDSW": 20}, "B": {"HOTA": 58.0, "IDSW": 6}},
    ]
    assert mean_scores(runs) == {"A": {"HOTA": 47.5, "IDSW": 18}, "B": {"HOTA": 60.5, "IDSW": 5}}
    rows = {"default": row(47.5, 60.5)}
    md = markdown({"rows": rows, "judgement": judge(rows), "cases": ["c1"], "phases": True})
    assert "mean over every keyframe phase" in md
