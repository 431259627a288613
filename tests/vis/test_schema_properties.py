"""Property tests of the one check of ``vis.frame`` records: whatever a producer writes,
``validate_record``/``decode_record`` raise nothing but ``SchemaError``, a record they take
is valid by the published JSON Schema, and decoding it allocates a bounded amount."""

from __future__ import annotations

import json

import jsonschema
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.conftest import ROOT
from tests.mutations import JSON, PROPERTY_SETTINGS, mutated
from vis.ops.masks import BoxMask
from vis.schema import (
    MAX_CLASS_ID,
    MAX_MASK_PIXELS,
    SchemaError,
    decode_record,
    encode_record,
    validate_record,
)
from vis.types import Detections, FrameResult

SCHEMAS = {
    v: json.loads((ROOT / "docs" / f"vis.frame.v{v}.schema.json").read_text()) for v in (1, 2)
}


def base_record(version: int) -> dict:
    """A valid record: a 64x48 frame with three tracked instances."""
    h, w = 48, 64
    masks = []
    for x0, y0 in ((2, 3), (20, 10), (40, 30)):
        prob = np.zeros((12, 10), np.float32)
        prob[2:10, 1:8] = 1.0
        masks.append(BoxMask(x0, y0, prob, (h, w)))
    dets = Detections(
        xyxy=np.array([[2, 3, 12, 15], [20, 10, 30, 22], [40, 30, 50, 42]], np.float32),
        masks=masks,
        scores=np.array([0.9, 0.5, 0.25], np.float32),
        class_ids=np.array([1, 2, 1], np.int64),
        track_ids=np.array([1, 2, 3], np.int64),
        mask_confidence=np.array([0.8, 0.7, 0.6], np.float32),
        image_size=(h, w),
    )
    result = FrameResult("cam", 7, 280.0, True, w, h, dets, ["bg", "person", "car"])
    return encode_record(result, version=version)


BASES = {v: base_record(v) for v in (1, 2)}


def test_the_base_records_are_valid_both_ways():
    for version, rec in BASES.items():
        validate_record(rec)
        jsonschema.validate(rec, SCHEMAS[version])
        assert decode_record(rec).detections.track_ids.tolist() == [1, 2, 3]


@pytest.mark.parametrize(
    "field, value",
    [
        ("class_id", 2_000_000_000),
        ("class_id", MAX_CLASS_ID + 1),
        ("class_id", -1),
        ("score", float("nan")),
        ("bbox", ["0", "0", "1", "1"]),
        ("bbox", [0, 0, float("inf"), 1]),
        ("track_id", 10**400),
        ("label", "x" * 5000),
    ],
)
def test_instances_out_of_range_are_refused(field, value):
    rec = json.loads(json.dumps(BASES[2]))
    rec["instances"][0][field] = value
    with pytest.raises(SchemaError):
        decode_record(rec)


def test_frames_and_masks_over_the_limits_are_refused_before_decoding():
    big = {**BASES[2], "width": 100_000, "height": 100_000}
    with pytest.raises(SchemaError, match="pixels"):
        validate_record(big)
    many = {**BASES[2], "instances": BASES[2]["instances"] * 400}
    with pytest.raises(SchemaError, match="instances"):
        validate_record(many)
    # full-frame crops of an 8K frame, each a few bytes of RLE: refused past the budget
    w, h = 8192, 4320
    full = {"x": 0, "y": 0, "size": [h, w], "counts": "0"}
    inst = {**BASES[2]["instances"][0], "mask": full}
    rec = {**BASES[2], "width": w, "height": h, "instances": [inst] * 3}
    assert 3 * w * h > MAX_MASK_PIXELS
    with pytest.raises(SchemaError, match="crops"):
        validate_record(rec)


@PROPERTY_SETTINGS
@given(st.sampled_from([1, 2]).flatmap(lambda v: mutated(BASES[v])))
def test_any_record_is_valid_or_refused_with_schema_error(rec):
    try:
        decoded = decode_record(rec)
    except SchemaError as exc:
        assert "\n" not in str(exc) and len(str(exc)) <= 400
        return
    masks = decoded.detections.masks
    assert sum(m.prob.size for m in masks) <= MAX_MASK_PIXELS
    assert len(decoded.labels) <= MAX_CLASS_ID + 1


@PROPERTY_SETTINGS
@given(st.sampled_from([1, 2]).flatmap(lambda v: mutated(BASES[v], keep_keys=True)))
def test_a_record_the_check_takes_is_valid_by_the_published_schema(rec):
    try:
        validate_record(rec)
    except SchemaError:
        return
    jsonschema.validate(rec, SCHEMAS[int(rec["schema"][-1])])


@PROPERTY_SETTINGS
@given(st.binary(max_size=200) | st.text(max_size=200))
def test_any_text_is_a_record_or_schema_error(raw):
    try:
        decode_record(raw)
    except SchemaError:
        pass


def _with_uncertainty() -> dict:
    """A valid v2 record whose first two instances carry ``uncertainty`` (the third none)."""
    rec = json.loads(json.dumps(BASES[2]))
    rec["instances"][0]["uncertainty"] = 0.25
    rec["instances"][1]["uncertainty"] = 1
    return rec


#: numbers no float holds (an integer of 400 digits), beside any JSON value
NUMBERS = st.integers(min_value=2**1023, max_value=10**400).flatmap(
    lambda v: st.sampled_from([v, -v])
) | st.floats(allow_nan=True, allow_infinity=True)


@PROPERTY_SETTINGS
@given(
    st.sampled_from(["uncertainty", "agreement", "mask_confidence", "score", "bbox", "time"]),
    st.integers(0, 2),
    NUMBERS | JSON,
    st.booleans(),
)
def test_any_optional_number_is_taken_in_range_or_refused_with_schema_error(
    field, k, value, as_text
):
    """Whatever an instance's ``uncertainty`` (or another number of a record) holds, a
    record is decoded with every ``uncertainty`` finite in [0, 1] (NaN where an instance has
    none, one per instance) or refused with ``SchemaError``, from a dict or from JSON text."""
    rec = _with_uncertainty()
    if field == "bbox":
        rec["instances"][k]["bbox"][k] = value
    elif field == "time":
        rec["timestamp_ms"] = value
    else:
        rec["instances"][k][field] = value
    try:
        decoded = decode_record(json.dumps(rec) if as_text else rec)
    except SchemaError as exc:
        assert "\n" not in str(exc) and len(str(exc)) <= 400
        return
    doubt = decoded.detections.uncertainty
    assert doubt is not None and doubt.shape == (len(rec["instances"]),)
    for inst, d in zip(rec["instances"], doubt.tolist()):
        assert (0.0 <= d <= 1.0) if "uncertainty" in inst else np.isnan(d)
    jsonschema.validate(rec, SCHEMAS[2])
