"""Kafka I/O: the ``KafkaSink`` producer, the ``FrameReader`` consumer and what they share.

* ``config`` — connection settings and ``KafkaSecurity`` (producer and consumer alike),
  ``KafkaSinkConfig``, secrets kept out of logs.
* ``records`` — the wire format both ways: oversize frames split into parts / coarsened
  (``fit_record``), parts joined back, validated and de-duplicated (``FrameAssembler``).
* ``tracks`` — tracks rebuilt from records: live ``vis.track/1`` events (``TrackEvents``)
  and timelines of what was read (``TrackTimelines``).
* ``producer`` — kafka-python producer/admin calls (connect, create topics, close).
* ``sink`` — ``KafkaSink``: at-least-once delivery with a bounded re-send buffer.
* ``events`` — ``vis.event/1`` analytics events read back (``EventAssembler``).
* ``consumer`` — ``FrameReader``: frames of a topic, by partition or consumer group;
  ``EventReader``: the analytics events of an events topic.
* ``cli`` — ``python -m streams.kafka``: read a topic, print a per-stream summary.

See docs/kafka.md.
"""

from streams.kafka.cli import format_summary, main
from streams.kafka.config import KafkaSecurity, KafkaSinkConfig, load_kafka_config
from streams.kafka.consumer import ConsumedFrame, EventReader, FrameReader, parse_start
from streams.kafka.events import EventAssembler, parse_event
from streams.kafka.records import (
    RECORD_OVERHEAD,
    FrameAssembler,
    StreamCounts,
    coarsen_mask,
    dumps_json,
    fit_record,
)
from streams.kafka.sink import KafkaSink
from streams.kafka.tracks import (
    TRACK_SCHEMA,
    Timeline,
    TrackEvents,
    TrackTimelines,
    tracked_instances,
)

__all__ = [
    "RECORD_OVERHEAD",
    "TRACK_SCHEMA",
    "ConsumedFrame",
    "EventAssembler",
    "EventReader",
    "FrameAssembler",
    "FrameReader",
    "KafkaSecurity",
    "KafkaSink",
    "KafkaSinkConfig",
    "StreamCounts",
    "Timeline",
    "TrackEvents",
    "TrackTimelines",
    "coarsen_mask",
    "dumps_json",
    "fit_record",
    "format_summary",
    "load_kafka_config",
    "main",
    "parse_event",
    "parse_start",
    "tracked_instances",
]
