"""The analytics sinks: the events JSONL file and lines/zones on the overlay."""

from __future__ import annotations

import json

import numpy as np

from streams.sinks import EventsJsonlSink, events_path, render_overlay
from streams.sinks.overlay import LINE_COLOUR, ZONE_COLOUR, AnalyticsCounts
from vis.analytics import AnalyticsConfig, LineCross, LineSpec, ZoneOccupancy, ZoneSpec
from vis.types import Detections, FrameResult

CFG = AnalyticsConfig(
    lines=(LineSpec("door", ((20.0, 100.0), (300.0, 100.0))),),
    zones=(ZoneSpec("lawn", ((200.0, 120.0), (300.0, 120.0), (300.0, 180.0)), max_occupancy=0),),
)


def test_events_jsonl_one_file_per_stream_in_order(tmp_path):
    sink = EventsJsonlSink(tmp_path)
    a = LineCross("a", 3, 120.0, "door", "in", 1, 1, "person", 1)
    b = LineCross("b", 4, 160.0, "door", "out", 2, 1, "person", 1)
    sink.write_events([a, b])
    sink.write_events([LineCross("a", 9, 360.0, "door", "out", 1, 1, "person", 1)])
    sink.close()
    lines = [json.loads(x) for x in events_path(tmp_path, "a").read_text().splitlines()]
    assert [e["frame_index"] for e in lines] == [3, 9] and lines[0] == a.to_dict()
    assert events_path(tmp_path, "b").read_text().count("\n") == 1
    assert sink.stats() == {"events": 3}


def test_overlay_draws_lines_zones_and_counts():
    image = np.zeros((200, 320, 3), np.uint8)
    result = FrameResult("a", 0, 0.0, True, 320, 200, Detections.empty(200, 320), ["bg"])
    plain = render_overlay(image, result)
    counts = AnalyticsCounts()
    counts.add(LineCross("a", 0, 0.0, "door", "in", 1, 1, "person", 3))
    counts.add(ZoneOccupancy("a", 0, 0.0, "lawn", 1, (1,), 0, True))
    drawn = render_overlay(image, result, analytics=CFG, counts=counts)
    assert not plain[100, 150].any()
    assert tuple(drawn[100, 150]) == LINE_COLOUR  # on the line
    assert counts.lines["door"] == {"in": 3, "out": 0} and counts.zones["lawn"] == (1, True)
    b, g, r = (int(v) for v in drawn[130, 280])  # inside the zone: tinted red (overcrowded)
    assert r > 20 and r > 3 * b and tuple(drawn[130, 280]) != ZONE_COLOUR
