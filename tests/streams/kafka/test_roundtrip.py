"""KafkaSink -> real broker -> FrameReader: frames come back exactly, in order per stream."""

from __future__ import annotations

import json

import numpy as np
from kafka import KafkaConsumer

from streams.kafka import KafkaSink, TrackTimelines
from streams.sinks import Sink
from vis.schema import SCHEMA, dumps_record, encode_record

from .conftest import make_results, read_frames


def test_round_trip_several_streams(broker, topic):
    streams = ["cam-a", "cam-b", "cam-c"]
    results = make_results(streams, 12)
    sink = KafkaSink(
        bootstrap_servers=broker.bootstrap_servers,
        topic=topic,
        tracks_topic=f"{topic}.tracks",
        topic_partitions=3,
    )
    assert isinstance(sink, Sink)
    for r in results:
        sink.write(r)
    sink.close()
    sink.close()  # idempotent
    st = sink.stats()
    assert st["frames"] == len(results) and st["pending"] == 0 and st["failed"] == 0
    assert st["sent"] == st["records"] == len(results) + st["track_events"]

    frames, reader = read_frames(broker.bootstrap_servers, topic, expect=len(results))
    assert reader.assembler.malformed == 0 and reader.assembler.duplicates == 0
    assert len(frames) == len(results)
    expected = {(r.stream_id, r.frame_index): r for r in results}
    for sid in streams:  # ordered per stream, and equal record for record
        got = [f for f in frames if f.stream_id == sid]
        assert [f.frame_index for f in got] == list(range(12))
        for f in got:
            orig = expected[(sid, f.frame_index)]
            assert f.record == encode_record(orig)
            res = f.result()  # masks decoded lazily, exactly
            assert np.array_equal(res.detections.full_masks(), orig.detections.full_masks())
            assert np.array_equal(res.detections.track_ids, orig.detections.track_ids)
            assert all(m.area == 0 for m in f.result(with_masks=False).detections.masks)


def test_record_key_value_headers(broker, topic):
    results = make_results(["cam-x"], 3)
    with KafkaSink(
        bootstrap_servers=broker.bootstrap_servers, topic=topic, tracks_topic=None
    ) as sink:
        for r in results:
            sink.write(r)
    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=broker.bootstrap_servers,
        auto_offset_reset="earliest",
        consumer_timeout_ms=1500,
    )
    msgs = list(consumer)
    consumer.close()
    assert len(msgs) == 3
    for m, r in zip(msgs, results):
        assert m.key == b"cam-x"
        assert m.value == dumps_record(r).encode()
        assert dict(m.headers) == {"schema": SCHEMA.encode(), "content-type": b"application/json"}


def test_track_events_and_timelines(broker, topic):
    results = make_results(["cam-t"], 40, n_objects=3)
    tracks_topic = f"{topic}.tracks"
    with KafkaSink(
        bootstrap_servers=broker.bootstrap_servers,
        topic=topic,
        tracks_topic=tracks_topic,
        track_end_frames=3,
    ) as sink:
        for r in results:
            sink.write(r)
    consumer = KafkaConsumer(
        tracks_topic,
        bootstrap_servers=broker.bootstrap_servers,
        auto_offset_reset="earliest",
        consumer_timeout_ms=1500,
    )
    events = [json.loads(m.value) for m in consumer]
    consumer.close()
    assert events and all(e["schema"] == "vis.track/1" for e in events)

    # Ground truth from the results themselves.
    present: dict[int, list[int]] = {}
    for r in results:
        for tid in r.detections.track_ids.tolist():
            present.setdefault(tid, []).append(r.frame_index)
    started = {e["track_id"]: e for e in events if e["event"] == "started"}
    assert set(started) == set(present)
    for tid, fr in present.items():
        assert started[tid]["first_frame"] == fr[0]
        ends = [e for e in events if e["event"] == "ended" and e["track_id"] == tid]
        assert ends, f"track {tid} never ended"
        assert ends[-1]["last_frame"] == fr[-1]
        assert sum(e["frame_count"] for e in ends) == len(fr)  # re-appearances start anew
    # every track still visible in the last frame ended at close
    last = set(results[-1].detections.track_ids.tolist())
    closed = {e["track_id"] for e in events if e.get("reason") == "closed"}
    assert closed == last

    frames, _ = read_frames(broker.bootstrap_servers, topic, expect=len(results))
    tl = TrackTimelines()
    for f in frames:
        tl.add(f.record)
    timelines = {t.track_id: t for t in tl.timelines("cam-t")}
    assert {tid: t.frames for tid, t in timelines.items()} == present


def test_a_topic_with_both_record_versions_reads_back_exactly(broker, topic):
    """Producers still on ``vis.frame/1`` and new ones on ``/2`` share a topic during a
    migration: the consumer helper reads both, with the same masks."""
    results = make_results(["old-cam", "new-cam"], 6)
    sinks = {
        v: KafkaSink(
            bootstrap_servers=broker.bootstrap_servers,
            topic=topic,
            tracks_topic=None,
            record_version=v,
            client_id=f"v{v}",
        )
        for v in (1, 2)
    }
    for r in results:
        sinks[1 if r.stream_id == "old-cam" else 2].write(r)
    for s in sinks.values():
        s.close()
    frames, reader = read_frames(broker.bootstrap_servers, topic, expect=len(results))
    assert reader.assembler.malformed == 0 and len(frames) == len(results)
    expected = {(r.stream_id, r.frame_index): r for r in results}
    for f in frames:
        orig = expected[(f.stream_id, f.frame_index)]
        version = 1 if f.stream_id == "old-cam" else 2
        assert f.record["schema"] == f"vis.frame/{version}"
        assert f.record == encode_record(orig, version=version)
        assert np.array_equal(f.result().detections.full_masks(), orig.detections.full_masks())
