"""Property tests of the corrections check: whatever a corrections file holds, loading it
(with or without the run) gives corrections that fit the limits or ``CorrectionsError``, and
what ``parse_corrections`` takes is valid by the published JSON Schema and saves as is."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import jsonschema
from hypothesis import given
from hypothesis import strategies as st

from streams.review.corrections import (
    CorrectionsError,
    load_corrections,
    parse_corrections,
    save_corrections,
)
from tests.conftest import ROOT
from tests.mutations import PROPERTY_SETTINGS, mutated

DOC = {
    "schema": "vis.corrections/1",
    "run": {
        "stream_id": "cam 1",
        "frames": 9,
        "first_frame": 0,
        "last_frame": 9,
        "tracks_fingerprint": "0123456789abcdef",
    },
    "created": "2026-12-07T10:00:00Z",
    "reviewer": "ann",
    "decisions": [
        {"track_id": 1, "decision": "accept", "frames": [0, 4]},
        {"track_id": 5, "decision": "reject"},
        {"track_id": 2, "decision": "wrong_class", "label": "person"},
    ],
}
SCHEMA = json.loads((ROOT / "docs" / "vis.corrections.v1.schema.json").read_text())


@PROPERTY_SETTINGS
@given(mutated(DOC))
def test_any_document_is_corrections_or_corrections_error(doc):
    try:
        corr = parse_corrections(doc, "c.json")
    except CorrectionsError as exc:
        assert "\n" not in str(exc)
        return
    assert all(0 <= d.track_id <= 2**53 for d in corr.decisions)
    with tempfile.TemporaryDirectory() as tmp:  # what is taken saves and loads back
        path = save_corrections(corr, Path(tmp) / "c.json")
        assert load_corrections(path) == corr


@PROPERTY_SETTINGS
@given(mutated(DOC, keep_keys=True))
def test_a_document_the_check_takes_is_valid_by_the_published_schema(doc):
    try:
        parse_corrections(doc)
    except CorrectionsError:
        return
    jsonschema.validate(doc, SCHEMA)


@PROPERTY_SETTINGS
@given(st.binary(max_size=300))
def test_any_file_is_loaded_or_refused(raw):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "c.json"
        path.write_bytes(raw)
        try:
            load_corrections(path)
        except CorrectionsError:
            pass


def test_a_file_for_the_run_with_hostile_values_is_refused_naming_it(story, tmp_path):
    from streams.review.corrections import run_identity

    run = run_identity(story.jsonl).to_json()
    for decision in (
        {"track_id": 10**400, "decision": "reject"},
        {"track_id": 1, "decision": "wrong_class", "label": "x" * 5000},
        {"track_id": 1, "decision": {}},
        {"track_id": 1, "decision": "reject", "frames": [0, float("inf")]},
    ):
        path = tmp_path / "c.json"
        path.write_text(json.dumps({**DOC, "run": run, "decisions": [decision]}))
        try:
            load_corrections(path, story.jsonl)
        except CorrectionsError as exc:
            assert str(path) in str(exc) and "\n" not in str(exc)
        else:
            raise AssertionError(f"took {decision}")
