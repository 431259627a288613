"""Scripted multi-frame stories for the tracker (detections every frame, no flow)."""

import numpy as np
import pytest

from tests.conftest import disk_mask
from vis.tracking import tracker as tracker_module
from vis.tracking.tracker import Tracker, TrackerConfig, TrackState
from vis.types import Detections

H, W = 120, 200
rng = np.random.default_rng(0)
APPEARANCE = {k: v / np.linalg.norm(v) for k, v in ((k, rng.normal(size=32)) for k in "abcdef")}


# the look of "a" after a lighting change: cosine distance 0.4 from "a", between the
# re-identification gate (0.3) and the gate for tracks still in view (0.5)
_u = rng.normal(size=32)
_u -= (_u @ APPEARANCE["a"]) * APPEARANCE["a"]
APPEARANCE["a_relit"] = 0.6 * APPEARANCE["a"] + 0.8 * _u / np.linalg.norm(_u)


def dets(objs: list[tuple[str, float, float, float]], cls: int | list[int] = 1) -> Detections:
    """objs: (appearance key, cx, cy, radius); cls: one class for all or one per object."""
    n = len(objs)
    masks = (
        np.stack([disk_mask(H, W, cx, cy, r) for _, cx, cy, r in objs])
        if n
        else np.zeros((0, H, W), bool)
    )
    emb = (
        np.stack([APPEARANCE[k] + rng.normal(scale=0.05, size=32) for k, *_ in objs])
        if n
        else np.zeros((0, 32))
    )
    emb = emb / np.maximum(np.linalg.norm(emb, axis=1, keepdims=True), 1e-9)
    return Detections(
        xyxy=[[cx - r, cy - r, cx + r + 1, cy + r + 1] for _, cx, cy, r in objs],
        masks=masks,
        scores=np.full(n, 0.9),
        class_ids=np.broadcast_to(np.asarray(cls), (n,)).copy(),
        embeddings=emb,
    )


def step(tr: Tracker, i: int, objs, cls: int | list[int] = 1) -> dict[int, tuple[float, float]]:
    """Run frame i; return {track_id: mask centre}."""
    out = tr.update(dets(objs, cls), frame_index=i, image_size=(H, W))
    centres = {}
    for tid, m in zip(out.track_ids, out.full_masks()):
        ys, xs = np.nonzero(m)
        centres[int(tid)] = (xs.mean(), ys.mean())
    return centres


def owner(centres, x, y):
    return min(centres, key=lambda t: np.hypot(centres[t][0] - x, centres[t][1] - y))


def test_empty_frames_are_fine():
    tr = Tracker()
    for i in range(3):
        out = tr.update(Detections.empty(H, W, 32), frame_index=i, image_size=(H, W))
        assert len(out) == 0 and out.full_masks().shape == (0, H, W)
    assert len(tr.update(None, frame_index=3, image_size=(H, W))) == 0


def test_two_objects_crossing_keep_their_ids():
    tr = Tracker(TrackerConfig(confirm_hits=2))
    ids_a, ids_b = set(), set()
    for i in range(40):
        xa, xb = 20 + 4 * i, 180 - 4 * i  # they cross around frame 20
        c = step(tr, i, [("a", xa, 60, 12), ("b", xb, 64, 12)])
        if i >= 2 and abs(xa - xb) > 12:  # unambiguous frames
            ids_a.add(owner(c, xa, 60))
            ids_b.add(owner(c, xb, 64))
    assert len(ids_a) == 1 and len(ids_b) == 1 and ids_a != ids_b


def test_occluded_ten_frames_reappears_with_same_id():
    tr = Tracker(TrackerConfig(max_lost_s=2.0))
    seen = []
    for i in range(40):
        x = 30 + 3 * i
        objs = [("c", 150, 30, 10)]
        if not 15 <= i < 25:  # hidden for 10 frames
            objs.append(("a", x, 80, 12))
        c = step(tr, i, objs)
        if not 15 <= i < 25 and i >= 2:
            seen.append(owner({k: v for k, v in c.items() if v[1] > 55}, x, 80))
        if 15 <= i < 25:
            assert len(c) == 1  # the hidden object is not reported while lost
    assert len(set(seen)) == 1
    assert tr.total_started == 2


def test_object_leaving_ends_cleanly_and_ids_are_never_reused():
    tr = Tracker(TrackerConfig(max_lost_s=0.2))
    first_id = None
    for i in range(20):
        objs = [("b", 40, 40, 10)]
        if i < 8:
            objs.append(("a", 100 + 10 * i, 80, 10))
        c = step(tr, i, objs)
        if i == 5:
            first_id = owner(c, 150, 80)
    assert all(t.state is not TrackState.REMOVED for t in tr.tracks)
    assert len(tr.tracks) == 1  # the leaver was removed once its prediction left the image
    # a new object with the old appearance far away gets a fresh id
    c = step(tr, 20, [("b", 40, 40, 10), ("a", 20, 100, 10)])
    c = step(tr, 21, [("b", 40, 40, 10), ("a", 22, 100, 10)])
    new_id = owner(c, 22, 100)
    assert new_id != first_id and new_id > first_id


def test_tentative_tracks_need_hits_and_low_scores_start_nothing():
    tr = Tracker(  # scores as given (score_reference would read this 0.6 detector's 0.3 as 0.4)
        TrackerConfig(confirm_hits=3, confirm_score=1.01, new_track_score=0.5, score_reference=0)
    )
    d = dets([("a", 50, 50, 10)])
    d.scores[:] = 0.6
    for i in range(3):
        out = tr.update(d, frame_index=i, image_size=(H, W))
        assert len(out) == (1 if i == 2 else 0)
    low = dets([("b", 150, 50, 10)])
    low.scores[:] = 0.3
    tr.update(low, frame_index=3, image_size=(H, W))
    assert tr.total_started == 1


@pytest.mark.parametrize("use_kalman", [True, False])
def test_propagated_frames_keep_ids_and_collapsed_masks_are_lost(use_kalman):
    tr = Tracker(TrackerConfig(use_kalman=use_kalman), min_mask_area=20)
    step(tr, 0, [("a", 50, 50, 10), ("b", 150, 50, 10)])
    shift = lambda m: type(m)(m.x0 + 2, m.y0, m.prob, m.image_size)  # noqa: E731
    for i in range(1, 6):
        out = tr.update(None, frame_index=i, image_size=(H, W), warp=shift)
        assert sorted(out.track_ids.tolist()) == [1, 2]
        assert out.xyxy[0, 0] == pytest.approx(40 + 2 * i)
    assert (
        len(tr.update(None, frame_index=6, image_size=(H, W), warp=lambda m: None)) == 0
    )  # every mask collapsed
    assert all(t.state is TrackState.LOST for t in tr.tracks)


@pytest.mark.parametrize("class_penalty", [0.2, -1.0])
def test_a_one_frame_class_flip_keeps_the_id_and_the_voted_class(class_penalty):
    tr = Tracker(TrackerConfig(class_penalty=class_penalty))
    ids, classes = set(), set()
    for i in range(12):
        out = tr.update(
            dets([("a", 40 + 3 * i, 60, 12)], cls=2 if i == 6 else 1),
            frame_index=i,
            image_size=(H, W),
        )
        if i >= 1:
            ids.update(out.track_ids.tolist())
            classes.update(out.class_ids.tolist())
    if class_penalty >= 0:
        assert ids == {1} and classes == {1}  # the detector's slip changes nothing
    else:
        assert len(ids) > 1  # classes gated: the flip started another track


def test_a_missed_keyframe_is_bridged_by_the_motion_model():
    """Missed on one keyframe, then seen again where it was heading, looking different
    (distance 0.4: too far for re-identification by appearance alone, close enough for a
    track whose predicted place fits): the id is kept. Far from its prediction, it is not."""
    for x_back, same in ((63, True), (160, False)):
        tr = Tracker(TrackerConfig())
        for i in range(4):
            c = step(tr, i, [("a", 60 + i, 60, 14)])
        assert list(c) == [1]
        assert step(tr, 4, []) == {}  # missed: not reported
        step(tr, 5, [("a_relit", x_back, 60, 14)])
        c = step(tr, 6, [("a_relit", x_back + 1, 60, 14)])
        assert list(c) == ([1] if same else [2])


def test_a_held_detection_continues_a_track_and_starts_or_brings_back_none(monkeypatch):
    """``held`` detections (a box that may be a second detection of a better-scoring one)
    continue a confirmed track nothing else matched; they never start a track, and a lost
    track is not re-identified from one. (Which detections are held is
    ``split_duplicates``'s decision, tested on its own; here it is scripted.)"""
    held = {}
    monkeypatch.setattr(
        tracker_module,
        "split_duplicates",
        lambda d, scale, cfg: (d, held.get(len(d), np.zeros(len(d), bool))),
    )
    tr = Tracker(TrackerConfig())
    for i in range(3):
        step(tr, i, [("a", 40 + 2 * i, 50, 10), ("b", 150, 50, 10)])
    ids = {t.track_id for t in tr.tracks}
    # "a" detected only as a held detection: its track goes on with it
    held[2] = np.array([True, False])
    out = tr.update(dets([("a", 46, 50, 10), ("b", 150, 50, 10)]), frame_index=3, image_size=(H, W))
    assert len(out) == 2 and set(out.track_ids.tolist()) == ids
    # a held detection far from every track starts nothing
    held[3] = np.array([False, False, True])
    out = tr.update(
        dets([("a", 48, 50, 10), ("b", 150, 50, 10), ("c", 100, 100, 10)]),
        frame_index=4,
        image_size=(H, W),
    )
    assert len(out) == 2 and tr.total_started == 2
    # "b" lost, then seen again only as a held detection: it stays lost
    for i in (5, 6):
        step(tr, i, [("a", 40 + 2 * i, 50, 10)])
    held[2] = np.array([False, True])
    tr.update(dets([("a", 54, 50, 10), ("b", 150, 50, 10)]), frame_index=7, image_size=(H, W))
    b = [t for t in tr.tracks if t.track_id in ids and t.track_id != min(ids)]
    assert b and b[0].state is TrackState.LOST and tr.total_started == 2


def boxes(objs: list[tuple[str, float, float, float]], scores: list[float]) -> Detections:
    """``dets`` whose masks fill their boxes (a detector of boxes), one score per object."""
    d = dets(objs)
    full = np.zeros((len(objs), H, W), bool)
    for k, (x0, y0, x1, y1) in enumerate(d.xyxy.astype(int)):
        full[k, y0:y1, x0:x1] = True
    return Detections(
        xyxy=d.xyxy, masks=full, scores=scores, class_ids=d.class_ids, embeddings=d.embeddings
    )


def test_update_returns_tracked_detections_with_box_local_masks():
    """The whole contract: ``Detections`` in, the frame's confirmed instances out as
    ``Detections`` in track-id order, ``track_ids`` set, masks kept inside their boxes (the
    full frame only on ``full_masks()``), ``mask_confidence`` and ``agreement`` set."""
    tr = Tracker(TrackerConfig())
    objs = [("b", 150, 50, 10), ("a", 50, 60, 12)]
    for i in range(3):
        out = tr.update(dets(objs), frame_index=i, image_size=(H, W))
    assert isinstance(out, Detections) and out.image_size == (H, W)
    assert out.track_ids.tolist() == [1, 2]  # track-id order, not the detections' order
    b, a = out.masks
    assert (b.x0, b.y0, b.x1, b.y1) == (140, 40, 161, 61)  # box-local: a 21 x 21 crop
    assert (a.x0, a.y0, a.x1, a.y1) == (38, 48, 63, 73)
    assert b.prob.shape == (21, 21) and a.prob.shape == (25, 25)
    full = out.full_masks()
    assert full.shape == (2, H, W) and full[0, 50, 150] and not full[0, 60, 50]
    assert out.xyxy[1].tolist() == pytest.approx([38, 48, 63, 73])
    assert out.mask_confidence.tolist() == pytest.approx([1.0, 1.0])  # binary masks: certain
    assert np.isnan(out.agreement).all()  # live tracking fuses nothing
    assert out.embeddings.shape == (2, 32) and out.scores.tolist() == pytest.approx([0.9, 0.9])
    # between keyframes: the propagated masks, the same ids; image_size defaults to the last
    out = tr.update(None, frame_index=3)
    assert out.track_ids.tolist() == [1, 2] and out.image_size == (H, W)
    with pytest.raises(ValueError, match="image_size"):
        Tracker().update(None, frame_index=0)


def test_update_splits_duplicates_itself():
    """One person detected twice as boxes (a second class let through by per-class NMS): the
    second box is held, so it starts no track of its own; drawn as silhouettes, the second
    one is dropped. Either way: one track."""
    for two in (
        boxes([("a", 60, 60, 12), ("a", 61, 60, 12)], [0.9, 0.7]),
        dets([("a", 60, 60, 12), ("a", 61, 60, 12)]),
    ):
        tr = Tracker(TrackerConfig())
        for i in range(4):
            out = tr.update(two, frame_index=i, image_size=(H, W))
        assert out.track_ids.tolist() == [1] and tr.total_started == 1


def test_reset_forgets_every_track_and_score():
    tr = Tracker(TrackerConfig(score_reference=0.8))
    for i in range(12):
        tr.update(dets([("a", 40 + 2 * i, 50, 10)]), frame_index=i, image_size=(H, W))
    assert tr.tracks and tr.total_started == 1 and tr.state_dict()["kept_scores"]
    tr.reset()
    assert tr.tracks == [] and tr.total_started == 0
    assert tr.state_dict() == Tracker(TrackerConfig(score_reference=0.8)).state_dict()
    out = tr.update(dets([("b", 150, 50, 10)]), frame_index=0, image_size=(H, W))
    assert out.track_ids.tolist() == [1]  # ids count from 1 again
