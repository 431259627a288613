"""Merged identities (``box_scoring.merges``) and the pure parts of ``bench.real_tracking``:
the 30-line box IoU tracker and the report table."""

import numpy as np

from bench.real_tracking import IouTracker, best_peer, render_kind
from vis_eval.box_scoring import merges


def box(x: float, y: float, w: float = 20, h: float = 40) -> np.ndarray:
    return np.array([x, y, x + w, y + h], np.float32)


def test_merges_finds_a_track_that_covered_two_people():
    # GT ids 1 and 2 walk apart; track 7 follows 1 for 6 frames, then 2 for 6 frames;
    # track 8 follows 2 throughout the first half (5+ frames on one person only)
    gt = {f: [(1, box(10 + f, 10)), (2, box(200 - f, 10))] for f in range(12)}
    tracks = {f: [(7, box(10 + f, 10) if f < 6 else box(200 - f, 10))] for f in range(12)}
    for f in range(6):
        tracks[f].append((8, box(200 - f, 10)))
    assert merges(gt, tracks) == {7: [1, 2]}
    assert merges(gt, tracks, min_frames=7) == {}
    assert merges(gt, {}) == {}


def test_iou_tracker_keeps_ids_of_moving_boxes_and_starts_one_for_a_newcomer():
    tr = IouTracker()
    seen = []
    for f in range(10):
        boxes = [box(10 + 4 * f, 10), box(300 - 4 * f, 100)]
        if f >= 5:
            boxes.append(box(150, 300))  # a newcomer
        out = tr.update(np.stack(boxes), np.full(len(boxes), 0.9), f)
        seen.append([t for t, _ in out])
    assert seen[:5] == [[1, 2]] * 5
    assert seen[5:] == [[1, 2, 3]] * 5


def test_iou_tracker_bridges_empty_frames_and_drops_low_scores():
    tr = IouTracker(max_lost=4)
    assert [t for t, _ in tr.update(box(10, 10)[None], np.array([0.9]), 0)] == [1]
    assert tr.update(np.zeros((0, 4)), np.zeros(0), 1) == []
    assert [t for t, _ in tr.update(box(12, 10)[None], np.array([0.9]), 4)] == [1]
    assert tr.update(box(14, 10)[None], np.array([0.3]), 5) == []  # below min_score
    assert [t for t, _ in tr.update(box(14, 10)[None], np.array([0.9]), 9)] == [2]  # lost > 4


def test_report_marks_the_best_peer_and_ours_against_it():
    def row(hota, assa=50.0, idf1=60.0, idsw=10, ms=1.0):
        return {
            "HOTA": hota,
            "AssA": assa,
            "IDF1": idf1,
            "IDSW": idsw,
            "ids": 12,
            "merged_ids": 1,
            "ms_per_frame": ms,
        }

    runs = {
        "N1": {
            "ours": row(40.0, idsw=14),
            "iou": row(90.0),
            "boxmot_ocsort": row(37.0),
            "rf_bytetrack": row(48.9, 38.6, 67.2, 9),
            "norfair": {"error": "exit 1: ImportError"},
        },
        "N5": {"ours": row(28.4), "boxmot_ocsort": row(30.0), "rf_bytetrack": row(20.0)},
    }
    assert best_peer(runs["N1"]) == "rf_bytetrack"  # not the IoU baseline, not a failed peer
    md = render_kind("foreign", runs)
    assert "| Roboflow ByteTrack **(best peer)** | 48.9 | 38.6 | 67.2 | 9 |" in md
    assert "norfair (IoU) (failed: exit 1: ImportError) | - |" in md
    assert (
        "N=1: HOTA -8.9, AssA +11.4, IDF1 -7.2, IDSW +5; N=5: HOTA -1.6 "
        "(best peer at N=5: boxmot OC-SORT, 30.0)"
    ) in md
    assert best_peer({}) is None
