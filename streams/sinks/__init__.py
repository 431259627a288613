"""Result sinks: where ``FrameResult``s go.

Every sink implements ``Sink`` (``base.py``): ``write(result, image=None)``,
``write_events(events)`` (analytics events; ignored by default),
``end_stream(stream_id)``, ``flush()``, ``close()`` (flushes, idempotent) and ``stats()``.
``write`` may block (back-pressure) but never silently drops a result; a sink that cannot
deliver raises ``SinkError`` naming the destination. The Kafka sink lives in
``streams.kafka``.
"""

from streams.sinks.base import Sink, SinkError
from streams.sinks.events import EventsJsonlSink
from streams.sinks.jsonl import JsonlSink
from streams.sinks.memory import MemorySink
from streams.sinks.overlay import OverlayVideoSink, render_overlay, track_colour
from streams.sinks.paths import events_path, jsonl_path, overlay_path, safe_name

__all__ = [
    "EventsJsonlSink",
    "JsonlSink",
    "MemorySink",
    "OverlayVideoSink",
    "Sink",
    "SinkError",
    "events_path",
    "jsonl_path",
    "overlay_path",
    "render_overlay",
    "safe_name",
    "track_colour",
]
