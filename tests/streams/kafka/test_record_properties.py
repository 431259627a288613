"""The consumer side never raises on a record: ``FrameAssembler``/``EventAssembler`` (and so
``FrameReader``/``EventReader``) count whatever a producer writes as malformed and go on, and
what they return decodes within bounds. Properties on generated records, then the hostile
records that broke the readers, through the real broker."""

from __future__ import annotations

import json

import jsonschema
from hypothesis import given
from hypothesis import strategies as st
from kafka import KafkaProducer

from streams.kafka import EventReader, FrameReader
from streams.kafka.events import EventAssembler, EventError, validate_event
from streams.kafka.records import FrameAssembler, fit_record
from tests.conftest import ROOT
from tests.mutations import PROPERTY_SETTINGS, mutated
from tests.vis.test_schema_properties import BASES
from vis.analytics import LineCross, ZoneEnter, ZoneExit, ZoneOccupancy
from vis.schema import MAX_MASK_PIXELS, decode_record, dumps_json

EVENTS = [
    e.to_dict()
    for e in (
        ZoneEnter("s", 3, 120.0, "lawn", 7, 1, "person"),
        ZoneOccupancy("s", 3, 120.0, "lawn", 1, (7,), 1, False),
        LineCross("s", 9, 360.0, "door", "in", 7, 1, "person", 1),
        ZoneExit("s", 12, 480.0, "lawn", 7, 1, "person", 320.0, "left"),
    )
]
EVENT_SCHEMA = json.loads((ROOT / "docs" / "vis.event.v1.schema.json").read_text())


def _value(obj) -> bytes:
    return json.dumps(obj, allow_nan=True).encode()


@PROPERTY_SETTINGS
@given(st.lists(st.sampled_from([1, 2]).flatmap(lambda v: mutated(BASES[v])), max_size=4))
def test_the_frame_assembler_counts_any_record_and_never_raises(records):
    asm = FrameAssembler(dedup=False)
    taken = 0
    for rec in records:
        out = asm.add(_value(rec), b"k")
        if out is not None:
            taken += 1
            result = decode_record(out)  # what ConsumedFrame.result() does
            assert sum(m.prob.size for m in result.detections.masks) <= MAX_MASK_PIXELS
    assert taken + asm.malformed == len(records)


@PROPERTY_SETTINGS
@given(mutated({**BASES[2], "part": 0, "parts": 2}), mutated({**BASES[2], "part": 1, "parts": 2}))
def test_split_frames_with_any_parts_are_joined_or_counted(first, second):
    asm = FrameAssembler()
    outs = [asm.add(_value(first)), asm.add(_value(second))]
    for out in outs:
        if out is not None:
            decode_record(out)
    assert asm.records == 2


@PROPERTY_SETTINGS
@given(st.sampled_from(EVENTS).flatmap(mutated))
def test_the_event_assembler_counts_any_event_and_never_raises(event):
    asm = EventAssembler(dedup=True)
    out = asm.add(_value(event))
    assert (out is None) == (asm.malformed == 1)
    assert "\n" not in asm.last_error and len(asm.last_error) <= 400


@PROPERTY_SETTINGS
@given(st.sampled_from(EVENTS).flatmap(lambda e: mutated(e, keep_keys=True)))
def test_an_event_the_check_takes_is_valid_by_the_published_schema(event):
    try:
        validate_event(event)
    except EventError:
        return
    jsonschema.validate(event, EVENT_SCHEMA)


# -- through the real broker --------------------------------------------------------------------
def _hostile_frames() -> list[bytes]:
    good = BASES[2]
    inst = good["instances"][0]
    bad = [
        {**good, "instances": [{**inst, "class_id": 2_000_000_000}]},
        {**good, "instances": [{**inst, "score": float("nan")}]},
        {**good, "width": 100_000, "height": 100_000},
        {**good, "instances": [{**inst, "track_id": 10**400}]},
        {**good, "instances": [{**inst, "bbox": ["0", "0", "1", "1"]}]},
        {**good, "stream_id": None},
        {**good, "part": 0, "parts": 10**9},
    ]
    return [_value(b) for b in bad] + [b"not json", b"[]", b"\xff\xfe"]


def _hostile_events() -> list[bytes]:
    line = EVENTS[2]
    bad = [
        {**line, "frame_index": "x"},
        {**line, "direction": "sideways"},
        {**line, "count": float("nan")},
        {**line, "stream_id": None},
        {**line, "line": {}},
        {**line, "track_id": 10**400},
    ]
    return [_value(b) for b in bad] + [b"not json", b"null"]


def _produce(broker, topic: str, values: list[bytes]) -> None:
    producer = KafkaProducer(bootstrap_servers=broker.bootstrap_servers)
    for value in values:
        producer.send(topic, value=value, key=b"s")
    producer.flush()
    producer.close()


def test_frame_reader_counts_hostile_records_and_goes_on(broker, topic):
    hostile = _hostile_frames()
    good = [dumps_json({**BASES[2], "frame_index": i}) for i in (1, 2)]
    _produce(broker, topic, [good[0], *hostile, good[1]])
    with FrameReader(topic, bootstrap_servers=broker.bootstrap_servers) as reader:
        frames = list(reader.frames(to_end=True, idle_s=10.0, timeout_s=60.0))
        results = [f.result() for f in frames]  # decoded within bounds, never raised
        assert reader.assembler.malformed == len(hostile)
    assert [r.frame_index for r in results] == [1, 2]


def test_a_split_frame_over_the_limits_once_joined_is_counted(broker, topic):
    rec = {**BASES[2], "instances": BASES[2]["instances"] * 334}  # 1002 instances
    values, _ = fit_record({**rec, "instances": rec["instances"][:1000]}, 64 * 1024)
    assert len(values) > 1
    parts = [json.loads(v) for v in values]
    parts[-1]["instances"] += BASES[2]["instances"]  # the joined frame: over 1000
    _produce(broker, topic, [_value(p) for p in parts])
    with FrameReader(topic, bootstrap_servers=broker.bootstrap_servers) as reader:
        assert list(reader.frames(to_end=True, idle_s=10.0, timeout_s=60.0)) == []
        assert reader.assembler.malformed == 1


def test_event_reader_counts_hostile_events_and_goes_on(broker, topic):
    hostile = _hostile_events()
    _produce(broker, topic, [_value(EVENTS[0]), *hostile, _value(EVENTS[2])])
    with EventReader(topic, bootstrap_servers=broker.bootstrap_servers) as reader:
        got = list(reader.events(to_end=True, idle_s=10.0, timeout_s=60.0))
        assert reader.assembler.malformed == len(hostile)
    assert [e["event"] for e in got] == ["zone_enter", "line_cross"]


def test_malformed_records_under_made_up_keys_do_not_grow_the_counts():
    from streams.kafka.records import MAX_COUNTED_STREAMS, UNKNOWN_STREAM

    asm = FrameAssembler()
    for i in range(MAX_COUNTED_STREAMS + 50):
        asm.add(b"not json", f"k{i}".encode())
    assert len(asm.streams) == MAX_COUNTED_STREAMS + 1
    assert asm.streams[UNKNOWN_STREAM].malformed == 50
    assert asm.malformed == MAX_COUNTED_STREAMS + 50
