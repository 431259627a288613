"""Property tests of the job record and checkpoint record checks: whatever a producer writes
to the jobs or checkpoints topic, the worker meets only ``JobError``/``ResumeError``."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from tests.mutations import JSON, PROPERTY_SETTINGS, mutated
from vis_pipeline.resume import ResumeError, check_checkpoint, decode_state, encode_state
from vis_pipeline.worker.checkpoints import pack, unpack
from vis_pipeline.worker.jobs import (
    JOB_SCHEMA,
    Job,
    JobError,
    check_overrides,
    override_allowed,
    validate_job,
)

JOB = {
    "schema": JOB_SCHEMA,
    "job_id": "abc123",
    "stream_id": "cam-1",
    "source": "videos/cam1.mp4",
    "overrides": ["keyframes.interval=5", "tracker.high_score=0.6"],
    "submitted_at": 1700000000.5,
}


@PROPERTY_SETTINGS
@given(mutated(JOB))
def test_any_job_record_is_a_job_or_job_error(doc):
    try:
        job = Job.from_bytes(json.dumps(doc, allow_nan=True).encode())
    except JobError as exc:
        assert "\n" not in str(exc) and len(str(exc)) <= 400
        return
    assert Job.from_bytes(job.to_bytes()) == job  # what is taken is also what is written
    try:
        check_overrides(job.overrides)
    except JobError as exc:
        assert "may not set" in str(exc)


@PROPERTY_SETTINGS
@given(st.sampled_from(sorted(JOB)), JSON)
@example("submitted_at", 10**400)  # digits in JSON: an int no float holds
@example("submitted_at", -(10**400))
@example("overrides", [10**400])
@example("job_id", 10**400)
def test_validate_job_takes_any_json_in_any_field_or_refuses_it_with_job_error(field, value):
    """The record check is total: whatever JSON value a field holds, a valid job or
    ``JobError`` (a worker that met anything else would stop on that record, and so would
    every worker taking its partition after it)."""
    doc = {**JOB, field: value}
    try:
        validate_job(doc)
    except JobError as exc:
        assert "\n" not in str(exc) and len(str(exc)) <= 400
        return
    job = Job.from_bytes(json.dumps(doc, allow_nan=True).encode())  # as it comes off the topic
    assert Job.from_bytes(job.to_bytes()) == job


@PROPERTY_SETTINGS
@given(JSON)
def test_validate_job_takes_any_json_document_or_refuses_it_with_job_error(doc):
    try:
        validate_job(doc)
    except JobError:
        pass


@PROPERTY_SETTINGS
@given(st.text(max_size=40))
def test_an_allowed_override_never_names_output_sinks_or_files(item):
    key = item.split("=", 1)[0].strip()
    if override_allowed(item):
        assert not key.startswith(("output", "sinks", "resume", "source", "stream_id"))
        assert not key.startswith(("detector.weights", "detector.path", "detector.engine"))
        assert key.split(".")[0] in ("keyframes", "tracker", "propagation", "analytics",
                                     "detector", "fps", "mode")  # fmt: skip


def _checkpoint_value(document) -> bytes:
    state = encode_state({"tracker": {"next_id": 4, "boxes": np.ones((2, 4), np.float32)}})
    base = {
        "checkpoint_format": 1,
        "config": "d",
        "job_id": "j",
        "stream_id": "cam",
        "frame_index": 9,
        "state": state.document,
    }
    return pack(document if document is not None else base, state.arrays)


BASE_CHECKPOINT = unpack(_checkpoint_value(None), "k")[0]


@PROPERTY_SETTINGS
@given(mutated(BASE_CHECKPOINT))
def test_any_checkpoint_document_is_restored_or_refused(document):
    if not isinstance(document, dict):
        document = {"state": document}
    doc, arrays = unpack(_checkpoint_value(document), "k")
    try:
        index = check_checkpoint(doc, "cam", "record k")
        decode_state(doc["state"], arrays)
    except (ResumeError, ValueError):
        return
    assert 0 <= index <= 2**53


@PROPERTY_SETTINGS
@given(st.binary(max_size=300) | JSON.map(lambda v: json.dumps(v, allow_nan=True).encode()))
def test_any_checkpoint_value_is_unpacked_or_refused(value):
    try:
        unpack(value, "k")
    except ResumeError:
        pass


def test_a_zip_bomb_checkpoint_is_refused_before_it_is_read(monkeypatch):
    from vis_pipeline import resume

    monkeypatch.setattr(resume, "MAX_STATE_BYTES", 1 << 20)  # a small limit, a small bomb
    buf = io.BytesIO()
    np.savez_compressed(
        buf, __document__=np.frombuffer(b"{}", np.uint8), x=np.zeros(1 << 24, np.uint8)
    )
    value = buf.getvalue()
    assert len(value) < 1 << 16
    with pytest.raises(ResumeError, match="k is not a checkpoint"):
        unpack(value, "k")
