import json

import numpy as np
import pytest

from tests.conftest import disk_mask
from vis.schema import SCHEMA, SchemaError, decode_record, dumps_record, encode_record
from vis.types import Detections, FrameResult


def result(n: int) -> FrameResult:
    h, w = 48, 64
    masks = (
        np.stack([disk_mask(h, w, 10 + 15 * i, 20, 6) for i in range(n)])
        if n
        else np.zeros((0, h, w), bool)
    )
    d = Detections(
        xyxy=[[4 + 15 * i, 14, 17 + 15 * i, 27] for i in range(n)],
        masks=masks,
        scores=np.full(n, 0.9),
        class_ids=np.ones(n, int),
        track_ids=np.arange(1, n + 1),
    )
    return FrameResult("cam-1", 7, 280.0, True, w, h, d, ["__background__", "disk"])


@pytest.mark.parametrize("n", [0, 1, 3])
def test_round_trip_is_exact(n):
    r = result(n)
    rec = encode_record(r)
    assert rec["schema"] == SCHEMA
    assert set(rec) == {
        "schema",
        "stream_id",
        "frame_index",
        "timestamp_ms",
        "keyframe",
        "propagated_from",
        "width",
        "height",
        "instances",
    }
    back = decode_record(json.loads(dumps_record(r)))
    assert back.stream_id == "cam-1" and back.frame_index == 7 and back.keyframe
    assert np.array_equal(back.detections.full_masks(), r.detections.full_masks())
    assert back.detections.track_ids.tolist() == list(range(1, n + 1))
    assert [i["label"] for i in rec["instances"]] == ["disk"] * n
    assert all(isinstance(i["mask"]["counts"], str) for i in rec["instances"])


def test_propagated_from_round_trips_and_older_records_still_decode():
    r = result(1)
    r.propagated_from = (10, 20)
    rec = json.loads(dumps_record(r))
    assert rec["propagated_from"] == [10, 20]
    assert decode_record(rec).propagated_from == (10, 20)
    del rec["propagated_from"]  # a record written before the field existed
    assert decode_record(rec).propagated_from == ()
    rec["propagated_from"] = ["10"]
    with pytest.raises(SchemaError, match="propagated_from"):
        decode_record(rec)


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda r: r.update(schema="vis.frame/0"), "schema"),
        (lambda r: r.pop("frame_index"), "frame_index"),
        (lambda r: r.update(keyframe="yes"), "keyframe"),
        (lambda r: r["instances"][0]["mask"].update(counts="@@@not-rle"), "RLE"),
        (lambda r: r["instances"][0]["mask"].update(x=10_000), "not inside the"),
        (lambda r: r["instances"][0]["mask"].update(size=[0, -1]), "not inside the"),
        (lambda r: r["instances"][0].update(bbox=[1, 2]), "bbox"),
    ],
)
def test_malformed_records_raise_schema_error(mutate, message):
    rec = encode_record(result(1))
    mutate(rec)
    with pytest.raises(SchemaError, match=message):
        decode_record(rec)


def test_truncated_json_is_schema_error():
    with pytest.raises(SchemaError, match="not JSON"):
        decode_record(dumps_record(result(2))[:-20])


def test_decode_without_masks_is_cheap_summary():
    back = decode_record(encode_record(result(2)), with_masks=False)
    assert len(back.detections.masks) == 2
    assert all(m.area == 0 for m in back.detections.masks)
    assert back.detections.track_ids.tolist() == [1, 2]
