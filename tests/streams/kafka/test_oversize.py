"""Frames larger than max_request_size: split into parts, coarsen what cannot be split."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
from kafka import KafkaConsumer

from streams.kafka import RECORD_OVERHEAD, KafkaSink, coarsen_mask, dumps_json, fit_record
from streams.sinks import SinkError
from vis.schema import decode_mask, encode_record, instance_mask
from vis.types import Detections, FrameResult

from .conftest import LABELS, make_results, read_frames

MAX_REQUEST = 16384
BUDGET = MAX_REQUEST - RECORD_OVERHEAD


def _ragged(result: FrameResult, seed: int = 0) -> FrameResult:
    """Same instances with jagged, noisy outlines (RLE grows like a real person mask)."""
    rng = np.random.default_rng(seed)
    d = result.detections
    masks = []
    for m in d.full_masks():
        soft = cv2.GaussianBlur(m.astype(np.float32), (0, 0), 3.0)
        masks.append((soft + rng.uniform(-0.45, 0.45, m.shape).astype(np.float32)) > 0.5)
    dets = Detections(
        xyxy=d.xyxy,
        masks=np.stack(masks),
        scores=d.scores,
        class_ids=d.class_ids,
        track_ids=d.track_ids,
    )
    return FrameResult(
        result.stream_id,
        result.frame_index,
        result.timestamp_ms,
        result.keyframe,
        result.width,
        result.height,
        dets,
        result.labels,
    )


def _with_noise_instance(result: FrameResult, track_id: int = 999) -> FrameResult:
    """Adds one instance whose mask is salt-and-pepper noise: its RLE alone is > BUDGET."""
    rng = np.random.default_rng(7)
    h, w = result.height, result.width
    noise = np.zeros((h, w), bool)
    noise[20:220, 40:300] = rng.random((200, 260)) < 0.5
    d = result.detections
    dets = Detections(
        xyxy=np.concatenate([d.xyxy, [[40, 20, 300, 220]]]),
        masks=np.concatenate([d.full_masks(), noise[None]]),
        scores=np.concatenate([d.scores, [0.7]]),
        class_ids=np.concatenate([d.class_ids, [1]]),
        track_ids=np.concatenate([d.track_ids, [track_id]]),
    )
    return FrameResult(
        result.stream_id,
        result.frame_index,
        result.timestamp_ms,
        result.keyframe,
        result.width,
        result.height,
        dets,
        result.labels,
    )


@pytest.fixture(scope="module")
def big_frames() -> list[FrameResult]:
    base = make_results(["big"], 2, width=1280, height=720, n_objects=20, size_range=(60.0, 160.0))
    frames = [_ragged(base[0], 0), _with_noise_instance(_ragged(base[1], 1))]
    assert len(dumps_json(encode_record(frames[0]))) > 2 * BUDGET  # really oversize
    return frames


def test_fit_record_fits_whole_or_splits_in_order(big_frames):
    rec = encode_record(big_frames[0])
    values, coarsened = fit_record(rec, 10**9)
    assert values == [dumps_json(rec)] and coarsened == 0
    empty = encode_record(make_results(["e"], 1)[0])
    empty["instances"] = []
    assert fit_record(empty, 1000) == ([dumps_json(empty)], 0)

    values, coarsened = fit_record(rec, BUDGET)
    assert coarsened == 0 and len(values) >= 3
    assert all(len(v) <= BUDGET for v in values)
    parts = [json.loads(v) for v in values]
    assert [p["part"] for p in parts] == list(range(len(parts)))
    assert {p["parts"] for p in parts} == {len(parts)}
    assert [i for p in parts for i in p["instances"]] == rec["instances"]
    head = {k: v for k, v in rec.items() if k != "instances"}
    assert all({k: p[k] for k in head} == head for p in parts)


def test_fit_record_coarsens_an_instance_too_big_for_any_record(big_frames):
    rec = encode_record(big_frames[1])
    values, coarsened = fit_record(rec, BUDGET)
    assert coarsened == 1 and all(len(v) <= BUDGET for v in values)
    insts = [i for v in values for i in json.loads(v)["instances"]]
    assert [i["track_id"] for i in insts] == [i["track_id"] for i in rec["instances"]]
    noisy = insts[-1]
    block = noisy["mask_coarsened"]
    assert block >= 2
    size = (rec["height"], rec["width"])
    original = instance_mask(rec["instances"][-1]["mask"], size)  # blocks start at its crop
    want = np.zeros(size, bool)
    want[original.y0 : original.y1, original.x0 : original.x1] = coarsen_mask(original.bits, block)
    assert np.array_equal(decode_mask(noisy["mask"], size), want)
    assert {"x", "y"} <= set(noisy["mask"])  # still box-relative, as the record it came from
    assert all("mask_coarsened" not in i for i in insts[:-1])


@pytest.mark.parametrize("fill,block", [(False, 2), (True, 2), (True, 8), (False, 64)])
def test_coarsen_mask_uniform(fill, block):
    m = np.full((37, 53), fill)
    assert np.array_equal(coarsen_mask(m, block), m)


def test_coarsen_mask_keeps_a_square_roughly():
    m = np.zeros((64, 64), bool)
    m[10:40, 12:50] = True
    c = coarsen_mask(m, 4)
    assert c.shape == m.shape
    assert abs(int(c.sum()) - int(m.sum())) <= 4 * 64
    assert (c & m).sum() / (c | m).sum() > 0.8


def test_oversize_frames_through_the_broker(broker, topic, big_frames):
    with KafkaSink(
        bootstrap_servers=broker.bootstrap_servers,
        topic=topic,
        tracks_topic=None,
        max_request_size=MAX_REQUEST,
    ) as sink:
        for r in big_frames:
            sink.write(r)
    st = sink.stats()
    assert st["oversize"] == 2 and st["coarsened"] == 1 and st["parts"] >= 4
    assert st["sent"] == st["records"] == 2 + st["parts"]

    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=broker.bootstrap_servers,
        auto_offset_reset="earliest",
        consumer_timeout_ms=1500,
    )
    raw = list(consumer)
    consumer.close()
    assert len(raw) == st["records"] and all(len(m.value) <= BUDGET for m in raw)

    frames, reader = read_frames(broker.bootstrap_servers, topic, expect=2)
    assert reader.assembler.malformed == 0 and reader.assembler.incomplete == 0
    assert [f.frame_index for f in frames] == [0, 1]
    assert frames[0].record == encode_record(big_frames[0])  # split losslessly
    got, orig = frames[1].record, encode_record(big_frames[1])
    assert [i["track_id"] for i in got["instances"]] == [i["track_id"] for i in orig["instances"]]
    assert got["instances"][:-1] == orig["instances"][:-1]
    assert got["instances"][-1]["mask_coarsened"] >= 2
    res = frames[1].result()
    assert res.detections.full_masks().shape == (len(orig["instances"]), 720, 1280)


def test_oversize_policy_error_raises(broker, topic, big_frames):
    sink = KafkaSink(
        bootstrap_servers=broker.bootstrap_servers,
        topic=topic,
        tracks_topic=None,
        max_request_size=MAX_REQUEST,
        oversize_policy="error",
    )
    with pytest.raises(SinkError, match=rf"{topic}.*max_request_size"):
        sink.write(big_frames[0])
    small = make_results(["small"], 1)[0]
    sink.write(small)
    sink.close()
    assert sink.stats()["sent"] == 1
    assert LABELS[0] == "background"
