"""bench.interaction_keyframes' judgement: tuning picks among the offline candidates, and each
candidate is judged against the fixed schedule of its own mode, checks included on request."""

from bench.interaction_keyframes import judge, markdown


def row(a: float, b: float, **checks: dict) -> dict:
    case = {"A": {"mean": a, "range": 1.0}, "B": {"mean": b, "range": 2.0}, "detector_calls": 80}
    return {"overrides": [], "cases": {"N=5": case}, **checks}


def rows() -> dict[str, dict]:
    return {
        "fixed": row(50, 60, synthetic={"HOTA": 70.2}),
        "interaction": row(52, 61, synthetic={"HOTA": 70.0}),  # within 0.5 on the synthetic set
        "interaction_ends": row(55, 58),  # best on A, behind fixed on B
        "fixed_live": row(45, 55, davis={"J": 0.70, "ids": 1}),
        "interaction_live": row(46, 56, davis={"J": 0.65, "ids": 1}),  # loses 0.05 J
    }


def test_tuning_picks_offline_candidates_and_each_mode_is_judged_against_its_fixed_schedule():
    r = rows()
    verdict = judge(r, checks=True)
    assert verdict["picked"]["A"] == {
        "candidate": "interaction_ends",
        "tuned_on": 55,
        "reported_on": "B",
        "score": 58,
        "fixed_on_other": 60,
    }
    assert verdict["picked"]["B"]["candidate"] == "interaction"
    assert verdict["beats_base_on_both"] == ["interaction"]
    assert r["interaction_live"]["mean_HOTA"] == {"A": 46, "B": 56}
    assert judge(rows(), checks=False)["beats_base_on_both"] == ["interaction", "interaction_live"]
    md = markdown({"rows": r, "judgement": verdict, "cases": ["N=5"], "command": "c"})
    assert "| interaction | - | 52.00 (1.0) | 61.00 (2.0) | 52.00 | 61.00 | 80 | 70.00 | - |" in md
    assert "* Tuned on A (offline candidates): **interaction_ends** (55 there); on B: **58**" in md


def test_without_the_fixed_schedule_nothing_is_picked():
    r = {"interaction": row(52, 61)}
    assert judge(r, checks=True) == {"picked": {}, "beats_base_on_both": []}
