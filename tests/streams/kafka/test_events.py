"""Analytics events on their own topic, against the real broker: the sink delivers them with
the frames' machinery, keyed by stream and in order; ``EventReader`` reads them back,
de-duplicates re-sent copies and skips malformed records."""

from __future__ import annotations

import json

import pytest
from kafka import KafkaProducer

from streams.kafka import EventAssembler, EventReader, KafkaSink, parse_event
from vis.analytics import LineCross, ZoneEnter, ZoneExit, ZoneOccupancy


def _events(stream: str) -> list:
    return [
        ZoneEnter(stream, 3, 120.0, "lawn", 7, 1, "person"),
        ZoneOccupancy(stream, 3, 120.0, "lawn", 1, (7,), 1, False),
        LineCross(stream, 9, 360.0, "door", "in", 7, 1, "person", 1),
        ZoneExit(stream, 12, 480.0, "lawn", 7, 1, "person", 320.0, "left"),
        ZoneOccupancy(stream, 12, 480.0, "lawn", 0, (), 1, False),
    ]


def test_sink_delivers_events_to_their_topic_and_the_reader_reads_them(broker, topic):
    events_topic = f"{topic}.events"
    sink = KafkaSink(
        bootstrap_servers=broker.bootstrap_servers,
        topic=topic,
        tracks_topic=None,
        events_topic=events_topic,
        topic_partitions=2,
    )
    a, b = _events("cam-a"), _events("cam-b")
    for i in range(len(a)):
        sink.write_events([a[i], b[i]])
    sink.write_events(a[2:3])  # a copy re-sent after a failure: read once
    sink.close()
    stats = sink.stats()
    assert stats["events"] == 11 and stats["sent"] == 11 and stats["pending"] == 0
    with EventReader(events_topic, bootstrap_servers=broker.bootstrap_servers) as reader:
        got = list(reader.events(idle_s=2.0, timeout_s=30.0))
        assert reader.assembler.duplicates == 1
    for stream, expected in (("cam-a", a), ("cam-b", b)):
        assert [e for e in got if e["stream_id"] == stream] == [x.to_dict() for x in expected]


def test_events_are_keyed_by_stream_with_the_schema_header(broker, topic):
    from kafka import KafkaConsumer

    events_topic = f"{topic}.events"
    with KafkaSink(
        bootstrap_servers=broker.bootstrap_servers, topic=topic, events_topic=events_topic
    ) as sink:
        sink.write_events(_events("cam-a")[:1])
    consumer = KafkaConsumer(
        events_topic,
        bootstrap_servers=broker.bootstrap_servers,
        auto_offset_reset="earliest",
        consumer_timeout_ms=5000,
    )
    msgs = list(consumer)
    consumer.close()
    assert len(msgs) == 1 and msgs[0].key == b"cam-a"
    assert dict(msgs[0].headers)["schema"] == b"vis.event/1"


def test_reader_skips_malformed_records(broker, topic):
    producer = KafkaProducer(bootstrap_servers=broker.bootstrap_servers)
    good = json.dumps(_events("s")[2].to_dict()).encode()
    for value in (b"not json", b'{"schema": "vis.frame/2"}', good):
        producer.send(topic, value=value, key=b"s")
    producer.flush()
    producer.close()
    with EventReader(topic, bootstrap_servers=broker.bootstrap_servers) as reader:
        got = list(reader.events(idle_s=2.0, timeout_s=30.0))
        assert reader.assembler.malformed == 2
    assert [e["event"] for e in got] == ["line_cross"]


@pytest.mark.parametrize(
    "value, error",
    [
        (None, "empty"),
        (b'{"schema": "vis.event/1", "event": "teleport"}', "unknown event kind"),
        (b'{"schema": "vis.event/1", "event": "zone_enter", "stream_id": "s"}', "without"),
    ],
)
def test_parse_event_rejects(value, error):
    with pytest.raises(ValueError, match=error):
        parse_event(value)
    assert EventAssembler().add(value) is None


def test_events_topic_must_differ_from_the_others():
    from streams.kafka import KafkaSinkConfig
    from vis.config import ConfigError

    with pytest.raises(ConfigError, match="events_topic"):
        KafkaSinkConfig(topic="x", events_topic="x")
