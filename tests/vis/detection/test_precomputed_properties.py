"""Property-based: generated vis.frame JSONL records and det.txt rows (hostile class ids,
boxes, masks, frame sizes, order, garbage lines) give detections within the limits or one
PrecomputedError line, in bounded memory."""

import json

from hypothesis import example, given, settings
from hypothesis import strategies as st

from devtools.hostile import (
    FRAME_H,
    FRAME_W,
    address_space_limit,
    check_precomputed,
    det_txt_files,
    jsonl_files,
)
from tests.mutations import JSON, PROPERTY_SETTINGS, mutated
from vis.detection.precomputed import check_instances
from vis.schema import SchemaError

PROFILE = settings(PROPERTY_SETTINGS)


@PROFILE
@given(jsonl_files(), st.booleans())
def test_jsonl_records_keep_the_contract(lines, model_labels):
    with address_space_limit():
        check_precomputed(lines, mot=False, model_labels=model_labels)


@PROFILE
@given(det_txt_files())
def test_det_txt_rows_keep_the_contract(rows):
    with address_space_limit():
        check_precomputed(rows, mot=True, model_labels=False)


#: a valid vis.frame/2 record of the frame ``check_precomputed`` feeds: a box and a masked
#: instance (a 4x3 crop at (2, 5))
RECORD = {
    "schema": "vis.frame/2",
    "stream_id": "s",
    "frame_index": 0,
    "timestamp_ms": 0.0,
    "keyframe": True,
    "width": FRAME_W,
    "height": FRAME_H,
    "instances": [
        {"class_id": 1, "label": "person", "score": 0.9, "bbox": [4, 6, 20, 30]},
        {
            "class_id": 2,
            "label": "car",
            "score": 0.7,
            "bbox": [2, 5, 5, 9],
            "mask": {"size": [4, 3], "x": 2, "y": 5, "counts": "0<"},
        },
    ],
}
HUGE = 10**400  # written as 401 digits: JSON holds it, no float does


@PROFILE
@given(mutated(RECORD), st.booleans())
@example({**RECORD, "instances": [{**RECORD["instances"][0], "score": HUGE}]}, True)
@example({**RECORD, "instances": [{**RECORD["instances"][0], "bbox": [0, 0, HUGE, 1]}]}, False)
@example({**RECORD, "instances": [{**RECORD["instances"][0], "bbox": [-HUGE, 0, 1, 1]}]}, True)
def test_any_json_in_a_record_gives_detections_or_a_skipped_record(rec, model_labels):
    """Whatever JSON a record holds in place of any of its values (an integer no float holds
    included), ``detect_frame`` serves detections within the limits, skips the record, or
    refuses the file in one line: never another exception."""
    with address_space_limit():
        check_precomputed([json.dumps(rec, allow_nan=True)], mot=False, model_labels=model_labels)


@PROFILE
@given(st.sampled_from(["class_id", "score", "bbox", "mask"]), st.integers(0, 3), JSON)
@example("score", 0, HUGE)
@example("bbox", 2, -HUGE)
def test_check_instances_takes_any_json_in_an_instance_or_refuses_it(field, k, value):
    inst = dict(RECORD["instances"][1])
    if field == "bbox":
        inst["bbox"] = [*inst["bbox"][:k], value, *inst["bbox"][k + 1 :]]
    else:
        inst[field] = value
    try:
        check_instances({**RECORD, "instances": [inst]}, n_labels=3)
    except SchemaError as exc:
        assert "\n" not in str(exc) and len(str(exc)) < 300
