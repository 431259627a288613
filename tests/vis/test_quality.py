"""``vis.quality``: scripted multi-frame stories, each doubt signal from the case that raises it."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from tests.conftest import disk_mask
from vis.quality import WEIGHTS, QualityPass, Signals, review_score
from vis.types import Detections, FrameResult

H, W = 60, 80


def _frame(f, objs, keyframe=False):
    """objs: (track id, class id, score, (cx, cy, r))."""
    masks = np.stack([disk_mask(H, W, *c) for *_, c in objs]) if objs else np.zeros((0, H, W), bool)
    xyxy = [[c[0] - c[2], c[1] - c[2], c[0] + c[2], c[1] + c[2]] for *_, c in objs]
    d = Detections(
        xyxy=np.array(xyxy, np.float32).reshape(-1, 4),
        masks=masks,
        scores=np.array([s for _, _, s, _ in objs], np.float32),
        class_ids=np.array([c for _, c, _, _ in objs], np.int64),
        track_ids=np.array([t for t, *_ in objs], np.int64),
    )
    return FrameResult("s", f, f * 40.0, keyframe, W, H, d, ["bg", "a", "b"])


def _run(frames):
    q = QualityPass()
    for fr in frames:
        q.observe(fr, collect=True)
    tracks = q.finish()
    return tracks, [q.observe(fr, collect=False) for fr in frames]


def test_a_steady_confident_track_has_little_doubt_and_an_empty_frame_is_fine():
    frames = [_frame(f, [(1, 1, 0.95, (20 + f, 30, 8))], keyframe=f % 5 == 0) for f in range(20)]
    frames.append(_frame(20, []))
    tracks, out = _run(frames)
    assert tracks[1].frames == 20 and tracks[1].class_margin == 1.0
    assert tracks[1].switch_frames == ()
    first, later = out[0][0], out[7][0]
    assert first.mask_iou_prev is None  # nothing to compare with
    assert later.mask_iou_prev == pytest.approx(0.87, abs=0.05)
    assert [o[0].propagation_age for o in out[:7]] == [0, 1, 2, 3, 4, 0, 1]
    assert all(0 <= o[0].review_score < 0.25 for o in out[:20]) and out[20] == []


def _moving(speed_kf, speed_prop, score=0.9, flip=False, radius=lambda f: 8):
    """Keyframes every 5 frames put the disk at ``speed_kf * f``; the frames between move it
    ``speed_prop`` per frame from there (0: the propagated mask is stuck)."""
    frames = []
    for f in range(21):
        k = f - f % 5
        x = 15 + speed_kf * k + speed_prop * (f - k)
        cls = 2 if flip and f % 3 == 0 else 1
        frames.append(_frame(f, [(1, cls, score, (x, 30, radius(f)))], keyframe=f % 5 == 0))
    return _run(frames)


def test_a_mask_the_next_keyframe_has_to_move_has_drifted():
    _, good = _moving(2, 2)  # propagation keeps up with the object
    _, stuck = _moving(2, 0)  # the object moves on, the propagated mask does not
    assert good[3][0].keyframe_iou_next > 0.65 > 0.3 > stuck[3][0].keyframe_iou_next
    assert good[5][0].propagation_age == 0  # a keyframe: the detector's own mask
    assert stuck[20][0].keyframe_iou_next is None  # no keyframe after the last one
    assert (
        np.mean([o[0].review_score for o in stuck])
        > np.mean([o[0].review_score for o in good]) + 0.05
    )


def test_a_changing_shape_a_low_score_and_class_flips_raise_the_score():
    steady_tracks, steady = _moving(1, 1)
    tracks, shaky = _moving(1, 1, score=0.5, flip=True, radius=lambda f: 8 if f % 2 else 4)
    assert shaky[5][0].shape_iou_prev < 0.3 < 0.9 < steady[5][0].shape_iou_prev
    assert tracks[1].class_margin == pytest.approx((14 - 7) / 21)
    assert steady_tracks[1].class_margin == 1.0
    assert (
        np.mean([o[0].review_score for o in shaky])
        > np.mean([o[0].review_score for o in steady]) + 0.2
    )


def test_a_new_track_where_another_just_ended_is_a_suspected_switch():
    frames = [_frame(f, [(1, 1, 0.9, (20 + f, 30, 8))], keyframe=True) for f in range(10)]
    frames += [_frame(f, [(2, 1, 0.9, (20 + f, 30, 8))], keyframe=True) for f in range(11, 20)]
    frames += [_frame(f, [(3, 1, 0.9, (70, 10, 4))], keyframe=True) for f in range(30, 40)]
    tracks, out = _run(frames)
    assert tracks[1].switch_frames == (9,) and tracks[2].switch_frames == (11,)
    assert tracks[3].switch_frames == ()  # far away and long after: a new object
    assert out[9][0].id_switch_suspect and not out[-1][0].id_switch_suspect


def test_a_track_back_far_from_where_it_was_lost_is_a_suspected_switch():
    frames = [_frame(f, [(1, 1, 0.9, (15, 30, 6))], keyframe=True) for f in range(5)]
    frames += [_frame(f, [(1, 1, 0.9, (65, 30, 6))], keyframe=True) for f in range(10, 15)]
    tracks, _ = _run(frames)
    assert tracks[1].switch_frames == (10,)


@pytest.mark.parametrize(
    ("signals", "switch"),
    [
        (Signals(0.0, 0.0, 0.0, 0.0, 10**6), True),
        (Signals(1.0, 1.0, 1.0, 1.0, 0), False),
        (Signals(0.5, None, None, None, 3), False),
    ],
)
def test_review_score_stays_in_unit_interval(signals, switch):
    tracks, _ = _run([_frame(0, [(1, 1, 0.9, (20, 30, 8))])])
    assert abs(sum(WEIGHTS.values()) - 1.0) < 1e-9
    assert 0.0 <= review_score(signals, tracks[1], switch) <= 1.0


def _with_uncertainty(frames, values):
    """``frames`` with ``uncertainty`` set on the keyframes: track id -> value."""
    out = []
    for fr in frames:
        d = fr.detections
        if fr.keyframe:
            u = np.array([values.get(int(t), np.nan) for t in d.track_ids], np.float32)
            d = dataclasses.replace(d, uncertainty=u)
        out.append(dataclasses.replace(fr, detections=d))
    return out


def test_test_time_augmentation_uncertainty_ranks_the_uncertain_track_first():
    def objs(f):
        return [(1, 1, 0.9, (20 + f, 20, 6)), (2, 1, 0.9, (55 + f, 40, 6))]

    plain = [_frame(f, objs(f), keyframe=f % 5 == 0) for f in range(12)]
    _, before = _run(plain)
    _, after = _run(_with_uncertainty(plain, {1: 0.05, 2: 0.8}))
    # the same two tracks, identical without it; with it the one the passes disagreed on
    # is ranked first, on its keyframes and on the frames propagated from them
    assert before[3][0].review_score == pytest.approx(before[3][1].review_score)
    assert before[3][0].uncertainty is None and "uncertainty" not in before[3][0].to_json(0.1)
    for k in (0, 3, 5, 11):
        one, two = after[k]
        assert (one.uncertainty, two.uncertainty) == pytest.approx((0.05, 0.8))
        assert two.review_score > before[k][1].review_score > one.review_score
        assert two.to_json(0.5)["uncertainty"] == pytest.approx(0.8)
