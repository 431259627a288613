"""Box-local masks end to end: RLE of crops (both record versions), frame borders, empty masks,
overlapping objects, and one encoding per frame shared by the sinks."""

import json

import numpy as np
import pytest
from pycocotools import mask as mask_utils

import vis.schema as schema
from streams.sinks.jsonl import JsonlSink
from vis.ops import rle
from vis.ops.masks import BoxMask
from vis.schema import SchemaError, decode_record, encode_record, json_of, record_of
from vis.types import Detections, FrameResult

H, W = 48, 64


def coco_full(full: np.ndarray) -> dict:
    r = mask_utils.encode(np.asfortranarray(full.astype(np.uint8)))
    return {"size": [H, W], "counts": r["counts"].decode()}


def border_masks() -> list[np.ndarray]:
    """Masks touching each border, a corner, the whole frame, one pixel, and nothing."""
    out = []
    for sl in [
        (slice(0, 10), slice(5, 30)),  # top
        (slice(30, H), slice(20, 40)),  # bottom
        (slice(10, 20), slice(0, 7)),  # left
        (slice(5, 25), slice(50, W)),  # right
        (slice(H - 6, H), slice(W - 9, W)),  # bottom-right corner
        (slice(0, H), slice(0, W)),  # everything
        (slice(17, 18), slice(33, 34)),  # one pixel
    ]:
        m = np.zeros((H, W), bool)
        m[sl] = True
        out.append(m)
    rng = np.random.default_rng(3)
    ragged = np.zeros((H, W), bool)
    ragged[0:30, 40:W] = rng.random((30, W - 40)) < 0.5  # holes, runs across columns
    out += [ragged, np.zeros((H, W), bool)]
    return out


@pytest.mark.parametrize("i", range(9))
def test_both_forms_encode_exactly_from_the_crop(i):
    full = border_masks()[i]
    box = BoxMask.crop_or_empty(full)
    # version 1 from the crop equals pycocotools on the full frame, byte for byte
    assert rle.encode_box_as_full(box) == coco_full(full)
    # version 2: the tight crop, inside the frame, decoding to the same pixels
    enc = rle.encode_box(box)
    if full.any():
        ys, xs = np.nonzero(full)
        assert (enc["x"], enc["y"]) == (xs.min(), ys.min())
        assert enc["size"] == [ys.max() - ys.min() + 1, xs.max() - xs.min() + 1]
    else:
        assert enc == {"x": 0, "y": 0, "size": [0, 0], "counts": ""}
    assert np.array_equal(rle.decode_box(enc, (H, W)).to_full(), full)
    assert rle.to_full_rle(enc, (H, W)) == coco_full(full)


def test_a_soft_crop_that_overhangs_the_frame_is_clipped():
    prob = np.full((20, 30), 0.9, np.float32)
    m = BoxMask.from_window(prob, W - 10, -5, (H, W))  # 20 columns and 5 rows outside
    assert (m.x0, m.y0, m.x1, m.y1) == (W - 10, 0, W, 15)
    assert rle.decode_box(rle.encode_box(m), (H, W)).area == 10 * 15
    assert BoxMask.from_window(prob, W + 3, 0, (H, W)).area == 0  # wholly outside: empty


def frame(masks: list[np.ndarray], scores=None) -> FrameResult:
    n = len(masks)
    d = Detections(
        xyxy=np.tile([0, 0, 1, 1], (n, 1)),
        masks=np.stack(masks) if n else np.zeros((0, H, W), bool),
        scores=np.linspace(0.9, 0.5, n) if scores is None else scores,
        class_ids=np.ones(n),
        track_ids=np.arange(1, n + 1),
    )
    return FrameResult("cam", 3, 120.0, True, W, H, d, ["bg", "person"])


@pytest.mark.parametrize("version", [1, 2])
def test_records_keep_overlapping_and_empty_masks_exactly(version):
    a = np.zeros((H, W), bool)
    a[5:30, 5:40] = True
    b = np.zeros((H, W), bool)
    b[20:H, 25:W] = True  # overlaps a and touches two borders
    masks = [a, b, np.zeros((H, W), bool), border_masks()[7]]
    r = frame(masks)
    rec = json.loads(json.dumps(encode_record(r, version=version)))
    assert rec["schema"] == f"vis.frame/{version}"
    back = decode_record(rec)
    assert np.array_equal(back.detections.full_masks(), np.stack(masks))
    assert back.detections.masks[2].area == 0
    # the overlap belongs to both instances: each mask is kept whole, not cut by the other
    assert (back.detections.full_masks()[0] & back.detections.full_masks()[1]).sum() == 10 * 15
    # readers that store full-frame masks get the version 1 record
    v1 = schema.as_v1(rec)
    assert v1["schema"] == "vis.frame/1"
    assert [i["mask"] for i in v1["instances"]] == [coco_full(m) for m in masks]


def test_a_record_whose_crop_leaves_the_frame_is_refused():
    rec = encode_record(frame([border_masks()[3]]), version=2)
    rec["instances"][0]["mask"]["x"] += 1  # the right-border crop now sticks out by one
    with pytest.raises(SchemaError, match="not inside"):
        decode_record(rec)


def test_detections_keep_masks_box_local():
    masks = border_masks()
    d = frame(masks).detections
    assert all(isinstance(m, BoxMask) for m in d.masks)
    assert sum(m.prob.size for m in d.masks) < len(masks) * H * W / 2
    assert np.array_equal(d.full_masks(), np.stack(masks))
    sub = d[np.array([True, False] * 4 + [True])]
    assert np.array_equal(sub.full_masks(), np.stack(masks[::2]))
    both = Detections.concatenate([d[:2], d[7:]], H, W)
    assert np.array_equal(both.full_masks(), np.stack(masks[:2] + masks[7:]))
    with pytest.raises(ValueError, match="frame"):
        Detections(
            xyxy=np.zeros((1, 4)),
            masks=[BoxMask.empty((H + 1, W))],
            scores=[1.0],
            class_ids=[1],
            image_size=(H, W),
        )


def test_a_frame_is_encoded_once_whatever_the_number_of_sinks(tmp_path, monkeypatch):
    calls = []
    encode = schema.encode_record
    monkeypatch.setattr(schema, "encode_record", lambda r, **kw: calls.append(1) or encode(r, **kw))
    r = frame(border_masks()[:3])
    sinks = [JsonlSink(tmp_path / "a"), JsonlSink(tmp_path / "b")]
    for s in sinks:
        s.write(r)
        s.close()
    assert record_of(r) is record_of(r) and json_of(r) is json_of(r)
    assert len(calls) == 1
    lines = [(tmp_path / d / "cam.jsonl").read_text() for d in "ab"]
    assert lines[0] == lines[1] == json_of(r).decode() + "\n"


def test_the_jsonl_sink_writes_the_version_asked_for(tmp_path):
    r = frame(border_masks()[:2])
    sink = JsonlSink(tmp_path, record_version=1)
    sink.write(r)
    sink.close()
    rec = json.loads((tmp_path / "cam.jsonl").read_text())
    assert rec["schema"] == "vis.frame/1" and rec["instances"][0]["mask"]["size"] == [H, W]
    assert np.array_equal(decode_record(rec).detections.full_masks(), np.stack(border_masks()[:2]))
