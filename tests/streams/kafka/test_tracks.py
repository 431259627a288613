"""TrackEvents and tracked_instances: tracks derived from a stream's records (no broker)."""

from __future__ import annotations

import pytest

from streams.kafka import TrackEvents, tracked_instances


def _rec(frame: int, tids: list[int], stream: str = "s") -> dict:
    return {
        "stream_id": stream,
        "frame_index": frame,
        "timestamp_ms": frame * 40.0,
        "instances": [{"track_id": t, "class_id": 1, "label": "disk"} for t in tids],
    }


def _story(frames: list[list[int]], end_after: int) -> list[tuple]:
    te = TrackEvents(end_after)
    out = []
    for i, tids in enumerate(frames):
        out += [
            (i, e["event"], e["track_id"], e["first_frame"], e["last_frame"], e["frame_count"])
            for e in te.update(_rec(i, tids))
        ]
    out += [
        ("close", e["event"], e["track_id"], e["first_frame"], e["last_frame"], e["frame_count"])
        for e in te.end_all()
    ]
    return out


@pytest.mark.parametrize(
    "frames,end_after,expected",
    [
        ([], 2, []),
        ([[], []], 2, []),
        ([[-1, -1]], 2, []),  # unassigned instances are not tracks
        ([[1]], 2, [(0, "started", 1, 0, 0, 1), ("close", "ended", 1, 0, 0, 1)]),
        # 2 disappears for two records -> ended (last seen frame 0); 1 runs to the close
        (
            [[1, 2], [1], [1]],
            2,
            [
                (0, "started", 1, 0, 0, 1),
                (0, "started", 2, 0, 0, 1),
                (2, "ended", 2, 0, 0, 1),
                ("close", "ended", 1, 0, 2, 3),
            ],
        ),
        # a one-record gap shorter than end_after keeps the track alive
        ([[5], [], [5]], 2, [(0, "started", 5, 0, 0, 1), ("close", "ended", 5, 0, 2, 2)]),
        # comes back after ending: a new track life starts
        (
            [[5], [], [], [5]],
            2,
            [
                (0, "started", 5, 0, 0, 1),
                (2, "ended", 5, 0, 0, 1),
                (3, "started", 5, 3, 3, 1),
                ("close", "ended", 5, 3, 3, 1),
            ],
        ),
        ([[7, 7]], 1, [(0, "started", 7, 0, 0, 1), ("close", "ended", 7, 0, 0, 1)]),
    ],
)
def test_track_event_stories(frames, end_after, expected):
    assert _story(frames, end_after) == expected


def test_streams_are_independent_and_end_stream():
    te = TrackEvents(3)
    assert [e["event"] for e in te.update(_rec(0, [1], "a"))] == ["started"]
    assert [e["event"] for e in te.update(_rec(0, [1], "b"))] == ["started"]
    for i in range(1, 3):  # stream b's records do not age stream a's tracks
        assert te.update(_rec(i, [1], "b")) == []
    ended = te.end_stream("a")
    assert [(e["stream_id"], e["event"], e["reason"]) for e in ended] == [
        ("a", "ended", "stream_end")
    ]
    assert te.end_stream("a") == []
    assert [e["stream_id"] for e in te.end_all()] == ["b"]


@pytest.mark.parametrize(
    "tids,expected",
    [
        ([], []),
        ([-1, -1], []),  # unassigned instances are not tracks
        ([3, -1, 3, 1], [3, 1]),  # record order; a repeated id keeps its first instance
    ],
)
def test_tracked_instances(tids, expected):
    rec = _rec(0, tids)
    got = tracked_instances(rec)
    assert list(got) == expected
    for tid, inst in got.items():
        assert inst is next(i for i in rec["instances"] if i["track_id"] == tid)
