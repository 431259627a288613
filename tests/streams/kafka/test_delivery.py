"""At-least-once delivery against a real broker that is frozen, killed and restarted."""

from __future__ import annotations

import logging
import threading
import time

import pytest

from devtools.broker import free_port
from streams.kafka import KafkaSink
from streams.sinks import SinkError

from .conftest import make_results, read_frames

log = logging.getLogger(__name__)


def _first_occurrence_order(frames, stream_id):
    seen, order = set(), []
    for f in frames:
        if f.stream_id == stream_id and f.frame_index not in seen:
            seen.add(f.frame_index)
            order.append(f.frame_index)
    return order


@pytest.mark.slow
@pytest.mark.parametrize("idempotent", [True, False], ids=["idempotent", "plain"])
def test_broker_killed_and_restarted_every_frame_arrives(fresh_broker, capsys, idempotent):
    """An idempotent producer is fenced by the new broker (unknown producer id): the sink
    replaces it and re-sends; a plain producer reconnects and retries by itself."""
    broker = fresh_broker
    topic = "vis.frames.restart"
    broker.topics = {topic: 4}  # re-created after every start (tansu forgets topics)
    broker.create_topics(broker.topics)
    streams = ["s0", "s1", "s2", "s3"]
    results = make_results(streams, 30)  # 120 frames, interleaved
    a, b = 40, 80
    sink = KafkaSink(
        bootstrap_servers=broker.bootstrap_servers,
        topic=topic,
        tracks_topic=None,
        request_timeout_ms=1500,
        delivery_timeout_s=40,
        connect_timeout_s=5,
        enable_idempotence=idempotent,
    )
    assert sink.idempotent == idempotent

    # 1. Delivered and read before the crash.
    for r in results[:a]:
        sink.write(r)
    sink.flush()
    before, r1 = read_frames(broker.bootstrap_servers, topic, dedup=False, expect=a)
    assert len(before) == a

    # 2. Frozen broker: these records go out but can never be acknowledged ...
    broker.pause()
    for r in results[a:b]:
        sink.write(r)
    time.sleep(0.5)
    assert sink.stats()["pending"] >= b - a
    # 3. ... then it crashes and comes back empty on the same port.
    port = broker.port
    broker.restart(down_s=0.5)
    assert broker.port == port
    for r in results[b:]:
        sink.write(r)
    sink.close()
    st = sink.stats()
    assert st["pending"] == 0

    after, r2 = read_frames(broker.bootstrap_servers, topic, dedup=False, idle_s=2.0)
    assert r1.assembler.malformed == r2.assembler.malformed == 0
    got = before + after
    keys = [(f.stream_id, f.frame_index) for f in got]
    missing = {(r.stream_id, r.frame_index) for r in results} - set(keys)
    assert not missing, f"frames lost: {sorted(missing)[:10]}"
    for sid in streams:  # per-key order: first occurrences in frame order
        order = _first_occurrence_order(got, sid)
        assert order == list(range(30)), (sid, order)
    duplicates = len(keys) - len(set(keys))
    with capsys.disabled():
        print(
            f"\n[restart idempotent={idempotent}] frames {len(results)}, read {len(keys)}, "
            f"duplicates {duplicates}, sink stats {st}"
        )
    if idempotent:
        assert st["recoveries"] >= 1 and st["retried"] >= b - a


def test_write_blocks_on_full_buffer_and_resumes(fresh_broker):
    broker = fresh_broker
    topic = "vis.frames.backpressure"
    results = make_results(["bp"], 18)
    sink = KafkaSink(
        bootstrap_servers=broker.bootstrap_servers,
        topic=topic,
        tracks_topic=None,
        buffer_max_records=5,
        block_timeout_s=20,
        request_timeout_ms=1000,
        delivery_timeout_s=30,
        connect_timeout_s=5,
    )
    for r in results[:3]:
        sink.write(r)
    sink.flush()
    broker.stop()

    done = threading.Event()
    errors: list[BaseException] = []

    def writer() -> None:
        try:
            for r in results[3:]:
                sink.write(r)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        done.set()

    t = threading.Thread(target=writer, daemon=True)
    t.start()
    time.sleep(1.5)
    assert not done.is_set(), "write did not block while the broker was down"
    assert 1 <= sink.stats()["pending"] <= 5
    broker.start()
    assert done.wait(20), "write did not resume after the broker came back"
    t.join(5)
    assert not errors, errors
    sink.close()
    assert sink.stats()["blocked_s"] > 1.0
    assert sink.stats()["pending"] == 0
    # frames 0-2 were acknowledged by the broker that died (and its memory); 3.. must be there
    frames, _ = read_frames(broker.bootstrap_servers, topic, expect=15)
    assert sorted(f.frame_index for f in frames) == list(range(3, 18))


@pytest.mark.slow
def test_broker_down_too_long_raises_sink_error_naming_topic(fresh_broker):
    broker = fresh_broker
    topic = "vis.frames.down"
    results = make_results(["down"], 12)
    sink = KafkaSink(
        bootstrap_servers=broker.bootstrap_servers,
        topic=topic,
        tracks_topic=None,
        buffer_max_records=3,
        block_timeout_s=1.5,
        request_timeout_ms=1000,
        delivery_timeout_s=3.0,
        connect_timeout_s=2,
    )
    sink.write(results[0])
    sink.flush()
    broker.stop()
    t0 = time.monotonic()
    with pytest.raises(SinkError, match=topic) as info:
        for r in results[1:]:
            sink.write(r)
        sink.flush()
    assert time.monotonic() - t0 < 8
    assert "vis.frames.down" in str(info.value)
    with pytest.raises(SinkError):  # stays failed: never a silent loss
        sink.write(results[-1])
    t0 = time.monotonic()
    with pytest.raises(SinkError):
        sink.close()
    assert time.monotonic() - t0 < 3
    sink.close()  # second close is a no-op


def test_broker_unreachable_at_start():
    port = free_port()
    t0 = time.monotonic()
    with pytest.raises(SinkError) as info:
        KafkaSink(
            bootstrap_servers=f"127.0.0.1:{port}",
            topic="vis.frames.nobroker",
            connect_timeout_s=1.5,
        )
    elapsed = time.monotonic() - t0
    assert elapsed < 5, elapsed
    msg = str(info.value)
    assert "vis.frames.nobroker" in msg and f"127.0.0.1:{port}" in msg
