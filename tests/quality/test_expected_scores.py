"""The pinned figures themselves: every case measured by ``tests.quality.cases`` is pinned
with its command, date, CPU and tolerance, and the check fails on a figure that moved beyond
its tolerance, naming it."""

import pytest

from tests.quality.cases import MEASURE, differences, load


def test_every_case_is_pinned_with_its_provenance_and_tolerance():
    pinned = load()["cases"]
    assert pinned.keys() == MEASURE.keys()
    for name, case in pinned.items():
        assert case["values"], name
        for key in ("command", "date_utc", "cpu", "reproduces", "tolerance_basis"):
            assert isinstance(case[key], str) and case[key], (name, key)
        assert case["command"].endswith(f"tests.quality.record {name}")
        assert all(v >= 0 for v in case["tolerance"].values()), name


PINNED = {
    "cases": {
        "c": {
            "values": {"whole": {"HOTA": 50.83, "IDSW": 17}, "mean J": 0.6628},
            "tolerance": {"mean J": 0.002},
        }
    }
}


def test_a_figure_that_moved_is_named_with_its_direction():
    same = {"whole": {"HOTA": 50.83, "IDSW": 17}, "mean J": 0.6628}
    assert differences("c", same, PINNED) == []
    worse = {"whole": {"HOTA": 50.82, "IDSW": 18}, "mean J": 0.6628}
    assert differences("c", worse, PINNED) == [
        "whole / HOTA: pinned 50.83, measured 50.82 (-0.01; allowed 0)",
        "whole / IDSW: pinned 17, measured 18 (+1; allowed 0)",
    ]


@pytest.mark.parametrize(("j", "moved"), [(0.6648, False), (0.6608, False), (0.6649, True)])
def test_a_tolerance_allows_its_spread_and_no_more(j, moved):
    got = {"whole": {"HOTA": 50.83, "IDSW": 17}, "mean J": j}
    assert bool(differences("c", got, PINNED)) == moved


def test_a_figure_missing_on_either_side_is_a_difference():
    assert differences("c", {"whole": {"HOTA": 50.83, "IDSW": 17}}, PINNED) == [
        "mean J: pinned 0.6628, measured None"
    ]
