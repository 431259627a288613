"""``vis.corrections/1``: the round trip, every refusal (naming the file and the fix), the
run's fingerprint, and which decision applies to an instance."""

from __future__ import annotations

import json

import pytest

from streams.exports.records import RunRecords
from streams.review.corrections import (
    Corrections,
    CorrectionsError,
    Decision,
    load_corrections,
    resolve,
    run_identity,
    save_corrections,
    tracks_fingerprint,
)
from tests.conftest import ROOT
from vis.schema import dumps_record


def _corrections(story, decisions=()):
    return Corrections(run_identity(story.jsonl), list(decisions), reviewer="ann")


def test_round_trip_keeps_every_field(story, tmp_path):
    corr = _corrections(story, [
        Decision(1, "accept", frames=(0, 4)), Decision(1, "reject", frames=(6, 9)),
        Decision(5, "reject"), Decision(2, "wrong_class", label="person"),
    ])  # fmt: skip
    path = save_corrections(corr, tmp_path / "c.json")
    back = load_corrections(path, story.jsonl)
    assert back == corr
    assert back.run.stream_id == "cam 1" and back.run.frames == 9
    assert (back.run.first_frame, back.run.last_frame) == (0, 9)
    raw = json.loads(path.read_text())
    assert raw["schema"] == "vis.corrections/1" and raw["created"].endswith("Z")
    assert raw["decisions"][0] == {"track_id": 1, "decision": "accept", "frames": [0, 4]}
    assert raw["decisions"][2] == {"track_id": 5, "decision": "reject"}
    jsonschema = pytest.importorskip("jsonschema")
    schema = json.loads((ROOT / "docs" / "vis.corrections.v1.schema.json").read_text())
    jsonschema.validate(raw, schema)


def test_fingerprint_is_the_tracks_spans(story, tmp_path):
    run = RunRecords.open(story.jsonl)
    # documented recipe: sha256 of the sorted [track, first, last] triples, 16 hex digits
    import hashlib  # noqa: PLC0415

    text = json.dumps([[1, 0, 9], [2, 0, 9], [5, 2, 4]], separators=(",", ":"))
    assert tracks_fingerprint(run) == hashlib.sha256(text.encode()).hexdigest()[:16]
    # the same run read back from its records (as the review's quality JSONL) matches
    copy = tmp_path / "copy.jsonl"
    copy.write_text("".join(dumps_record(story.records[f]) + "\n" for f in sorted(story.records)))
    assert run_identity(copy) == run_identity(run)
    # a run without the last frame ends track 1 and 2 earlier: another fingerprint
    short = tmp_path / "short.jsonl"
    short.write_text(
        "".join(dumps_record(story.records[f]) + "\n" for f in sorted(story.records)[:-1])
    )
    assert run_identity(short).tracks_fingerprint != run_identity(run).tracks_fingerprint


def _with(raw, path, **change):
    for key, value in change.items():
        if key == "decision":
            raw["decisions"] = [value]
        elif key == "run":
            raw["run"] = {**raw["run"], **value}
        else:
            raw[key] = value
    path.write_text(json.dumps(raw))
    return path


REFUSALS = [
    ({"schema": "vis.frame/2"}, "schema 'vis.frame/2', expected 'vis.corrections/1'"),
    ({"run": {"stream_id": "cam 2"}}, "belongs to another run (stream 'cam 2'"),
    ({"run": {"tracks_fingerprint": "0123456789abcdef"}},
     "belongs to another run (stream 'cam 1', fingerprint 0123456789abcdef)"),
    ({"run": {"frames": 30}}, "review this run's page again"),
    ({"decisions": {"track_id": 1}}, "'decisions' must be a list"),
    ({"decision": {"track_id": 1, "decision": "maybe"}},
     "unknown decision 'maybe' for track 1; use one of accept, reject, wrong_class"),
    ({"decision": {"track_id": "1", "decision": "accept"}}, "track_id must be an integer"),
    ({"decision": {"track_id": 2, "decision": "wrong_class"}},
     "wrong_class for track 2 without a label"),
    ({"decision": {"track_id": 2, "decision": "wrong_class", "label": "bicycle"}},
     "label 'bicycle' for track 2 is not one of the run's labels (car, person)"),
    ({"decision": {"track_id": 2, "decision": "accept", "label": "car"}},
     "accept for track 2 has a label"),
    ({"decision": {"track_id": 5, "decision": "reject", "frames": [0, 4]}},
     "frames 0-4 are outside track 5 (frames 2-4)"),
    ({"decision": {"track_id": 5, "decision": "reject", "frames": [4, 2]}},
     "must be [start, stop] with 0 <= start <= stop"),
    ({"decision": {"track_id": 5, "decision": "reject", "frames": [3]}}, "must be [start, stop]"),
    ({"decision": {"track_id": 42, "decision": "accept"}},
     "track 42 is not in run 'cam 1' (tracks 1, 2, 5)"),
]  # fmt: skip


@pytest.mark.parametrize(("change", "message"), REFUSALS)
def test_refusals_name_the_file_and_the_fix(story, tmp_path, change, message):
    good = save_corrections(_corrections(story, [Decision(1, "accept")]), tmp_path / "good.json")
    bad = _with(json.loads(good.read_text()), tmp_path / "bad.json", **change)
    with pytest.raises(CorrectionsError) as err:
        load_corrections(bad, story.jsonl)
    assert message in str(err.value) and str(bad) in str(err.value)


def test_refusals_without_the_run_are_about_the_file_only(story, tmp_path):
    good = save_corrections(_corrections(story, [Decision(42, "accept")]), tmp_path / "c.json")
    assert load_corrections(good).decisions == [Decision(42, "accept")]  # no run: not checked
    with pytest.raises(CorrectionsError, match="cannot read corrections file"):
        load_corrections(tmp_path / "none.json")
    (tmp_path / "text.json").write_text("accept 1")
    with pytest.raises(CorrectionsError, match="is not JSON"):
        load_corrections(tmp_path / "text.json")
    (tmp_path / "norun.json").write_text('{"schema": "vis.corrections/1", "decisions": []}')
    with pytest.raises(CorrectionsError, match="'run' must be an object with stream_id"):
        load_corrections(tmp_path / "norun.json")


def test_resolve_takes_the_latest_decision_covering_the_frame(story):
    corr = _corrections(story, [
        Decision(1, "accept"),
        Decision(1, "reject", frames=(3, 6)),
        Decision(1, "wrong_class", label="car", frames=(4, 4)),
        Decision(5, "reject"),
    ])  # fmt: skip
    expected = {0: "accept", 2: "accept", 3: "reject", 4: "wrong_class", 6: "reject", 7: "accept"}
    for frame, decision in expected.items():
        assert resolve(corr, 1, frame).decision == decision, frame
    assert resolve(corr, 1, 4).label == "car"
    assert resolve(corr, 2, 3) is None  # undecided track
    assert resolve(corr, 5, 3) == Decision(5, "reject")
    assert resolve(_corrections(story), 1, 0) is None  # no decisions at all


def test_add_drops_the_decisions_a_later_one_covers(story):
    corr = _corrections(story)
    corr.add(Decision(1, "accept", frames=(0, 4)), (0, 9))
    corr.add(Decision(1, "reject", frames=(5, 9)), (0, 9))
    corr.add(Decision(2, "reject"), (0, 9))
    corr.add(Decision(1, "accept", frames=(0, 6)), (0, 9))  # covers the first only
    assert corr.decisions == [
        Decision(1, "reject", frames=(5, 9)), Decision(2, "reject"),
        Decision(1, "accept", frames=(0, 6)),
    ]  # fmt: skip
    corr.add(Decision(1, "wrong_class", label="car"), (0, 9))  # the whole track: covers all
    assert corr.decisions == [Decision(2, "reject"), Decision(1, "wrong_class", label="car")]
    corr.add(Decision(2, "accept", frames=(0, 9)), (0, 9))  # the track's span: the whole track
    assert corr.decisions == [Decision(1, "wrong_class", label="car"), Decision(2, "accept")]
