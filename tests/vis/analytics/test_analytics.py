"""Scripted multi-frame stories for ``Analytics``: people as real masks crossing lines and
walking through zones (a "person" is a filled ellipse body; its foot is the mask's bottom)."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.mutations import JSON, PROPERTY_SETTINGS, paths, replaced
from vis.analytics import Analytics, AnalyticsConfig, LineSpec, ZoneSpec
from vis.analytics.geometry import ground_point, polygon_area, side_of_line
from vis.types import Detections, FrameResult

H, W = 240, 320
LABELS = ["background", "person", "car"]
FPS = 10.0


def person(cx: float, foot_y: float, height: float = 60.0, width: float = 20.0) -> np.ndarray:
    """(H, W) bool: an upright ellipse whose lowest pixels are at row ``foot_y``."""
    yy, xx = np.mgrid[0:H, 0:W]
    cy = foot_y - height / 2
    return ((xx - cx) / (width / 2)) ** 2 + ((yy - cy) / (height / 2)) ** 2 <= 1.0


def frame(
    index: int, people: list[tuple], *, boxes: dict[int, list[float]] | None = None
) -> FrameResult:
    """people: (track_id, cx, foot_y[, class_id]); ``boxes`` replaces a track's box."""
    masks = np.stack([person(p[1], p[2]) for p in people]) if people else np.zeros((0, H, W))
    xyxy = []
    for p, m in zip(people, masks):
        ys, xs = np.nonzero(m)
        xyxy.append((boxes or {}).get(p[0], [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]))
    d = Detections(
        xyxy=np.array(xyxy, np.float32).reshape(-1, 4),
        masks=masks.astype(bool) if people else [],
        scores=np.ones(len(people)),
        class_ids=[p[3] if len(p) > 3 else 1 for p in people],
        track_ids=[p[0] for p in people],
        image_size=(H, W),
    )
    return FrameResult("cam", index, index * 1000.0 / FPS, False, W, H, d, LABELS)


# a horizontal line across the middle, drawn left to right: walking down is "in"
LINE = LineSpec("door", ((40.0, 120.0), (280.0, 120.0)))
ZONE = ZoneSpec("lawn", ((160.0, 20.0), (310.0, 20.0), (310.0, 220.0), (160.0, 220.0)))


def run(cfg: AnalyticsConfig, frames: list[FrameResult]) -> list[dict]:
    a = Analytics(cfg, stream_id="cam")
    return [e.to_dict() for f in frames for e in a.update(f)]


def crossings(events: list[dict]) -> list[tuple]:
    return [
        (e["frame_index"], e["track_id"], e["direction"])
        for e in events
        if e["event"] == "line_cross"
    ]


def test_geometry_basics():
    assert polygon_area([(0, 0), (10, 0), (10, 10), (0, 10)]) == pytest.approx(100.0)
    assert polygon_area([(0, 0), (5, 5), (10, 10)]) == 0.0
    d, t = side_of_line(((0, 0), (10, 0)), (5, 3))  # below a left-to-right line: positive
    assert d == pytest.approx(3.0) and t == pytest.approx(0.5)
    m = Detections(np.zeros((1, 4)), person(100, 150)[None], [1], [1]).masks[0]
    x, y = ground_point(m)
    assert abs(x - 100.5) < 1.0 and y == pytest.approx(150.5, abs=1.0)


@pytest.mark.parametrize("frames", [[], [frame(0, [])], [frame(i, []) for i in range(5)]])
def test_nothing_happens_without_tracks(frames):
    assert run(AnalyticsConfig(lines=(LINE,), zones=(ZONE,)), frames) == []


def test_walking_across_counts_once_with_the_direction():
    cfg = AnalyticsConfig(lines=(LINE,), min_track_frames=1)
    down = [frame(i, [(7, 100, 90 + 5 * i)]) for i in range(13)]  # foot 90 -> 150
    events = run(cfg, down)
    assert crossings(events) == [(7, 7, "in")]  # foot at 125: past the 3 px margin
    e = events[0]
    assert e["schema"] == "vis.event/1" and e["line"] == "door" and e["label"] == "person"
    assert e["count"] == 1 and e["timestamp_ms"] == pytest.approx(700.0)
    up = [frame(i, [(8, 100, 150 - 5 * i)]) for i in range(13)]
    assert crossings(run(cfg, up)) == [(7, 8, "out")]


def test_jitter_on_the_line_counts_once():
    # the foot wanders around the line within the margin, then crosses for good, then
    # wobbles back across by less than the margin and returns
    feet = [100, 110, 118, 121, 119, 122, 118, 121, 126, 130, 124, 121, 126, 132]
    cfg = AnalyticsConfig(lines=(LINE,), min_track_frames=1, line_margin_px=4.0)
    cfg = AnalyticsConfig(**{**cfg.__dict__, "line_margin_height": 0.0})
    events = run(cfg, [frame(i, [(1, 100, y)]) for i, y in enumerate(feet)])
    assert crossings(events) == [(8, 1, "in")]


def test_going_back_and_forth_counts_each_direction_once_per_track():
    feet = [100, 140, 100, 140, 100, 140]
    cfg = AnalyticsConfig(lines=(LINE,), min_track_frames=1)
    events = run(cfg, [frame(i, [(3, 100, y)]) for i, y in enumerate(feet)])
    assert crossings(events) == [(1, 3, "in"), (2, 3, "out")]


def test_a_flickering_box_does_not_count_when_the_foot_stays_put():
    # the foot stands 10 px above the line; the box's bottom edge jumps across it
    box = lambda y2: [90.0, 50.0, 110.0, y2]  # noqa: E731
    frames = [
        frame(i, [(2, 100, 110)], boxes={2: box(110.0 if i % 2 else 140.0)}) for i in range(10)
    ]
    masks = AnalyticsConfig(lines=(LINE,), min_track_frames=1)
    assert crossings(run(masks, frames)) == []
    boxes = AnalyticsConfig(lines=(LINE,), min_track_frames=1, ground="box")
    assert len(crossings(run(boxes, frames))) == 2  # the box point counts it in and out


def test_crossing_beyond_the_segment_does_not_count():
    short = LineSpec("gate", ((40.0, 120.0), (80.0, 120.0)))
    cfg = AnalyticsConfig(lines=(short,), min_track_frames=1)
    assert crossings(run(cfg, [frame(i, [(1, 200, 90 + 10 * i)]) for i in range(6)])) == []


def test_a_track_lost_and_reidentified_is_not_counted_again():
    cfg = AnalyticsConfig(lines=(LINE,), min_track_frames=1)
    feet = [100, 140, None, None, None, 100, None, 140, 150]  # None: missing (lost)
    frames = [frame(i, [] if y is None else [(4, 100, y)]) for i, y in enumerate(feet)]
    assert crossings(run(cfg, frames)) == [(1, 4, "in"), (5, 4, "out")]


def test_tracks_younger_than_the_minimum_never_count():
    cfg = AnalyticsConfig(lines=(LINE,), zones=(ZONE,), min_track_frames=4)
    # a 3-frame track crossing the line and standing in the zone: nothing
    short = [frame(i, [(9, 200, 100 + 20 * i)]) for i in range(3)]
    assert run(cfg, short) == []
    # the same walk one frame longer: the zone counts it from its 4th frame; its crossing
    # happened while it was young and stays uncounted
    longer = [frame(i, [(9, 200, 100 + 20 * i)]) for i in range(4)]
    assert [e["event"] for e in run(cfg, longer)] == ["zone_enter", "zone_occupancy"]


def test_classes_filter():
    cars = LineSpec("road", LINE.points, classes=("car",))
    cfg = AnalyticsConfig(lines=(cars,), min_track_frames=1)
    walk = [frame(i, [(1, 100, 90 + 10 * i), (2, 60, 90 + 10 * i, 2)]) for i in range(6)]
    assert crossings(run(cfg, walk)) == [(4, 2, "in")]


def test_zone_enter_exit_dwell_and_occupancy_on_change():
    cfg = AnalyticsConfig(zones=(ZONE,), min_track_frames=1)
    xs = [60, 120, 200, 210, 220, 230, 230, 150, 80]  # in at x=200, out at x=150
    frames = [frame(i, [(5, x, 150)]) for i, x in enumerate(xs)]
    frames += [frame(9 + i, [(5, 80, 150)]) for i in range(3)]  # stays out: no events
    events = run(cfg, frames)
    kinds = [(e["frame_index"], e["event"]) for e in events]
    assert kinds == [
        (2, "zone_enter"),
        (2, "zone_occupancy"),
        (7, "zone_exit"),
        (7, "zone_occupancy"),
    ]
    assert events[2]["dwell_ms"] == pytest.approx(400.0)  # inside from frame 2 to 6
    assert events[2]["reason"] == "left"
    assert [e["count"] for e in events if e["event"] == "zone_occupancy"] == [1, 0]
    assert events[1]["track_ids"] == [5] and events[3]["track_ids"] == []


def test_partial_overlap_hysteresis():
    # a body half in the zone: enters at >= 0.5 of its mask inside, stays until < 0.3
    cfg = AnalyticsConfig(zones=(ZONE,), min_track_frames=1)
    xs = [140, 162, 158, 155, 150, 145]  # edge at x=160: fractions ~0, 0.6, 0.4, 0.25, ...
    events = run(cfg, [frame(i, [(1, x, 150)]) for i, x in enumerate(xs)])
    assert [(e["frame_index"], e["event"]) for e in events if e["event"] != "zone_occupancy"] == [
        (1, "zone_enter"),
        (3, "zone_exit"),
    ]


def test_max_occupancy_sets_overcrowded():
    zone = ZoneSpec("queue", ZONE.polygon, max_occupancy=1)
    cfg = AnalyticsConfig(zones=(zone,), min_track_frames=1)
    frames = [
        frame(0, [(1, 200, 150)]),
        frame(1, [(1, 200, 150), (2, 260, 150)]),
        frame(2, [(1, 200, 150), (2, 260, 150)]),
        frame(3, [(1, 80, 150), (2, 260, 150)]),  # 1 walks out
    ]
    occ = [e for e in run(cfg, frames) if e["event"] == "zone_occupancy"]
    assert [(e["frame_index"], e["count"], e["overcrowded"]) for e in occ] == [
        (0, 1, False),
        (1, 2, True),
        (3, 1, False),
    ]
    assert occ[1]["max_occupancy"] == 1


def test_a_missing_track_leaves_its_zone_after_absent_exit_s():
    cfg = AnalyticsConfig(zones=(ZONE,), min_track_frames=1, absent_exit_s=0.3)
    seen = [True, True, False, False, True, False, False, False, False]
    frames = [frame(i, [(6, 200, 150)] if s else []) for i, s in enumerate(seen)]
    events = run(cfg, frames)
    # a 2-frame gap (200 ms) keeps it inside; gone from frame 5: exits at frame 7 (300 ms)
    assert [(e["frame_index"], e["event"]) for e in events] == [
        (0, "zone_enter"),
        (0, "zone_occupancy"),
        (7, "zone_exit"),
        (7, "zone_occupancy"),
    ]
    assert events[2]["reason"] == "absent" and events[2]["dwell_ms"] == pytest.approx(400.0)


def test_finish_closes_every_zone_still_occupied_at_the_last_frame():
    cfg = AnalyticsConfig(zones=(ZONE,), min_track_frames=1)
    a = Analytics(cfg, stream_id="cam")
    assert a.finish() == []  # no frame yet: nothing to close
    for i in range(4):
        a.update(frame(i, [(1, 200, 150), (2, 80, 150)] if i < 3 else [(1, 210, 150)]))
    events = [e.to_dict() for e in a.finish()]
    assert [(e["event"], e["frame_index"]) for e in events] == [
        ("zone_exit", 3),
        ("zone_occupancy", 3),
    ]
    assert events[0]["track_id"] == 1 and events[0]["reason"] == "end"
    assert events[0]["dwell_ms"] == pytest.approx(300.0)  # inside from frame 0 to 3
    assert events[1]["count"] == 0 and a.finish() == []  # closed once


def test_box_ground_zones_use_the_bottom_centre():
    cfg = AnalyticsConfig(zones=(ZONE,), min_track_frames=1, ground="box")
    events = run(cfg, [frame(0, [(1, 170, 150)]), frame(1, [(1, 150, 150)])])
    assert [e["event"] for e in events] == [
        "zone_enter",
        "zone_occupancy",
        "zone_exit",
        "zone_occupancy",
    ]


def test_state_dict_round_trip_continues_the_same_story():
    cfg = AnalyticsConfig(lines=(LINE,), zones=(ZONE,), min_track_frames=2)
    frames = [frame(i, [(1, 150 + 10 * i, 90 + 8 * i)]) for i in range(12)]
    whole = run(cfg, frames)
    first = Analytics(cfg, stream_id="cam")
    head = [e.to_dict() for f in frames[:5] for e in first.update(f)]
    second = Analytics(cfg, stream_id="cam")
    second.load_state_dict(first.state_dict())
    tail = [e.to_dict() for f in frames[5:] for e in second.update(f)]
    assert head + tail == whole and len(crossings(whole)) == 1


# -- a checkpoint's analytics state is untrusted ---------------------------------------------------
STORY = AnalyticsConfig(lines=(LINE,), zones=(ZONE,), min_track_frames=2)
#: two people walking in the zone, one of them across the line (a count, sides, two stays)
WALK = [frame(i, [(1, 150 + 10 * i, 90 + 8 * i), (4, 200, 60 + 3 * i)]) for i in range(12)]


def _checkpointed() -> dict:
    a = Analytics(STORY, stream_id="cam")
    for f in WALK[:8]:
        a.update(f)
    state = a.state_dict()
    assert state["line_counts"] == [["door", 1, 0]] and state["occupancy"] == [["lawn", 2]]
    return state


CHECKPOINTED = _checkpointed()
#: what ``decode_state`` may also put anywhere in a state: arrays and numpy scalars
ARRAYS = st.sampled_from(
    [
        np.zeros(3),
        np.zeros((3, 4)),  # its repr spans lines: a refusal quoting it must not
        np.array([np.nan]),
        np.float32(np.inf),
        np.int64(-1),
        np.array(1.0),
    ]
)


@PROPERTY_SETTINGS
@given(st.data())
def test_any_checkpointed_state_is_refused_in_one_line_or_goes_on_with_finite_events(data):
    """Whatever a checkpoint holds as the analytics state (up to three values replaced by any
    JSON, an array or an integer no float holds, or removed), loading it raises one-line
    ``ValueError`` and changes nothing, or the story goes on to its end with events a JSON
    writer takes (finite numbers)."""
    state = CHECKPOINTED
    for _ in range(data.draw(st.integers(1, 3))):
        path = data.draw(st.sampled_from(paths(state)))
        remove = bool(path) and data.draw(st.booleans())
        value = None if remove else data.draw(JSON | ARRAYS | st.just(10**400))
        state = replaced(state, path, value, remove=remove)
    a = Analytics(STORY, stream_id="cam")
    before = a.state_dict()
    try:
        a.load_state_dict(state)
    except ValueError as exc:
        assert str(exc).startswith("analytics state: ") and "\n" not in str(exc)
        assert len(str(exc)) < 300 and a.state_dict() == before
        return
    events = [e.to_dict() for f in WALK[8:] for e in a.update(f)] + [
        e.to_dict() for e in a.finish()
    ]
    json.dumps(events, allow_nan=False)


def test_a_checkpointed_state_of_too_many_tracks_or_an_unknown_line_is_refused():
    from vis.analytics.analytics import MAX_STATE_TRACKS

    track = CHECKPOINTED["tracks"][1]
    many = [{**track, "id": i} for i in range(MAX_STATE_TRACKS + 1)]
    for bad, says in [
        ({**CHECKPOINTED, "tracks": many}, f"at most {MAX_STATE_TRACKS} tracks"),
        ({**CHECKPOINTED, "line_counts": [["gate", 1, 0]]}, "line_counts names ['gate']"),
        ({**CHECKPOINTED, "last": [7, 10**400]}, "last is"),
        ({**CHECKPOINTED, "last": np.zeros((3, 4))}, "last is array([[0., 0., 0., 0.], [0."),
    ]:
        with pytest.raises(ValueError, match=re.escape(says)) as refused:
            Analytics(STORY, stream_id="cam").load_state_dict(bad)
        assert "\n" not in str(refused.value)
    Analytics(STORY, stream_id="cam").load_state_dict(CHECKPOINTED)  # the real one loads
