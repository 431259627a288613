"""Offline (bidirectional) processing against live (forward-only), on scripted scenes with
known masks: births carried back to an object's first frame, and the fused masks."""

import numpy as np
import pytest

from tests.conftest import disk_mask
from vis.offline import OfflineStreamProcessor
from vis.ops.boxes import mask_to_box
from vis.pipeline import KeyframeConfig, StreamProcessor
from vis.propagation import PropagationConfig
from vis.tracking.config import TrackerConfig
from vis.types import Detections, Frame
from vis_eval.synthetic import background_image, object_texture

H, W = 180, 240


def scene(n, objects):
    """Frames of textured disks over a textured background; ``objects`` maps a name to a
    function frame -> (cx, cy, r). Returns (BGR frames, {name: [mask per frame]})."""
    rng = np.random.default_rng(5)
    bg = background_image(rng, W, H).astype(np.float32)
    tex = {k: object_texture(rng, 96) for k in objects}
    frames, truth = [], {k: [] for k in objects}
    for i in range(n):
        img = bg.copy()
        for k, path in objects.items():
            cx, cy, r = path(i)
            m = disk_mask(H, W, cx, cy, r)
            ys, xs = np.nonzero(m)
            img[ys, xs] = tex[k][(ys - int(cy) + 48).clip(0, 95), (xs - int(cx) + 48).clip(0, 95)]
            truth[k].append(m)
        img = np.clip(img + rng.normal(0, 2, img.shape), 0, 255).astype(np.uint8)
        frames.append(Frame("s", i, i * 40.0, img))
    return frames, truth


def detections(masks):
    if not masks:
        return Detections.empty(H, W)
    return Detections(
        xyxy=np.stack([mask_to_box(m) for m in masks]),
        masks=np.stack(masks),
        scores=np.full(len(masks), 0.9, np.float32),
        class_ids=np.ones(len(masks), np.int64),
    )


def run(processor, frames, dets_at):
    """Feed every frame (detections where ``dets_at`` has them) and collect the results."""
    out = []
    for f in frames:
        assert processor.is_keyframe(f) == (f.index in dets_at)
        out += processor.emit(f, dets_at.get(f.index))
    out += processor.finish()
    assert [r.frame_index for r, _ in out] == [f.index for f in frames]
    return [r for r, _ in out]


def make(offline, interval, **kw):
    cls = OfflineStreamProcessor if offline else StreamProcessor
    return cls(
        stream_id="s",
        labels=["bg", "thing"],
        tracker=TrackerConfig(),
        propagation=PropagationConfig(**kw),
        keyframes=KeyframeConfig(interval=interval),
    )


def best_iou(result, truth):
    d = result.detections
    return max(((m & truth).sum() / max((m | truth).sum(), 1) for m in d.full_masks()), default=0.0)


def test_an_object_missed_at_the_first_keyframe_is_output_from_its_first_frame():
    paths = {"a": lambda i: (60 + 2 * i, 70, 20), "b": lambda i: (170 - 2 * i, 110, 18)}
    frames, truth = scene(9, paths)
    # the detector misses b on keyframe 0 and finds it on keyframe 5
    dets_at = {
        0: detections([truth["a"][0]]),
        5: detections([truth["a"][5], truth["b"][5]]),
    }
    live = run(make(False, 5, warp="dense"), frames, dets_at)
    offline_proc = make(True, 5, warp="dense")
    offline = run(offline_proc, frames, dets_at)
    for i in range(5):
        assert best_iou(live[i], truth["b"][i]) == 0.0  # live: b starts at keyframe 5
        assert best_iou(offline[i], truth["b"][i]) >= 0.7, i
        assert best_iou(offline[i], truth["a"][i]) >= 0.7, i
    ids = {int(t) for r in offline for t in r.detections.track_ids}
    assert len(ids) == 2  # b keeps the id it got at keyframe 5, backwards too
    assert offline_proc.backfilled == 5
    assert offline[0].keyframe and offline[0].propagated_from == (5,)
    assert offline[3].propagated_from == (0, 5)
    assert offline[7].propagated_from == (5,)  # after the last keyframe: forward only


def test_without_backfill_a_missed_object_waits_for_its_keyframe():
    paths = {"b": lambda i: (170 - 2 * i, 110, 18)}
    frames, truth = scene(6, paths)
    dets_at = {0: detections([]), 5: detections([truth["b"][5]])}
    proc = OfflineStreamProcessor(
        backfill=False,
        stream_id="s",
        labels=["bg", "thing"],
        tracker=TrackerConfig(),
        propagation=PropagationConfig(warp="dense"),
        keyframes=KeyframeConfig(interval=5),
    )
    out = run(proc, frames, dets_at)
    assert all(len(r.detections) == 0 for r in out[:5])
    assert len(out[5].detections) == 1


def test_a_backfilled_object_does_not_duplicate_one_already_tracked():
    """Keyframe 5 gives the object a second detection id (a new track); carried back, it would
    lie on the existing track's mask and is left out."""
    paths = {"a": lambda i: (60 + 2 * i, 70, 20)}
    frames, truth = scene(6, paths)
    shifted = np.roll(truth["a"][5], 1, axis=1)
    dets_at = {0: detections([truth["a"][0]]), 5: detections([truth["a"][5], shifted])}
    proc = make(True, 5, warp="dense")
    proc.tracker.config = TrackerConfig(duplicate_iou=1.0)  # both detections become tracks
    out = run(proc, frames, dets_at)
    assert len(out[5].detections) == 2
    assert all(len(r.detections) == 1 for r in out[:5])


@pytest.mark.parametrize("warp", ["dense", "ecc"])
def test_bidirectional_beats_forward_on_an_object_that_grows(warp):
    """A disk growing from radius 14 to 34 between keyframes: flow cannot see pixels that
    appear, so the forward mask lags; carried back from the next keyframe and fused, the
    frames in between get closer to the truth."""
    paths = {"a": lambda i: (120, 90, 14 + 2 * i)}
    frames, truth = scene(11, paths)
    dets_at = {0: detections([truth["a"][0]]), 10: detections([truth["a"][10]])}
    live = run(make(False, 10, warp=warp), frames, dets_at)
    offline = run(make(True, 10, warp=warp), frames, dets_at)
    j_live = [best_iou(live[i], truth["a"][i]) for i in range(1, 10)]
    j_off = [best_iou(offline[i], truth["a"][i]) for i in range(1, 10)]
    assert np.mean(j_off) >= np.mean(j_live) + 0.05
    assert j_off[-1] > j_live[-1]  # the frame next to the later keyframe most of all


def test_checkpoint_is_taken_before_a_keyframe_and_restores_to_one():
    paths = {"a": lambda i: (60 + 2 * i, 70, 20)}
    frames, truth = scene(12, paths)
    dets_at = {k: detections([truth["a"][k]]) for k in (0, 5, 10)}
    proc = make(True, 5, warp="dense")
    out = []
    point = None
    for f in frames:
        proc.is_keyframe(f)
        out += proc.emit(f, dets_at.get(f.index))
        if f.index == 6:
            proc.request_checkpoint()
        point = point or proc.take_checkpoint()
        if f.index == 6:
            assert point is None  # frames 5 and 6 are held: not a consistent point yet
    index, state = point
    assert index == 9 and [r.frame_index for r, _ in out] == list(range(10))
    again = make(True, 5, warp="dense")
    again.load_state_dict(state)
    assert again.is_keyframe(frames[10])  # a restored offline stream starts on a keyframe
    resumed = again.emit(frames[10], dets_at[10]) + again.emit(frames[11], None)
    resumed += again.finish()
    first = run(make(True, 5, warp="dense"), frames, dets_at)
    for (r, _), expected in zip(resumed, first[10:]):
        assert r.detections.track_ids.tolist() == expected.detections.track_ids.tolist()
        assert np.array_equal(r.detections.full_masks(), expected.detections.full_masks())


def test_a_birth_the_flow_cannot_follow_is_not_carried_back_onto_the_background():
    """A bright disk on a dark floor jumps 90 px between two keyframes and gets a new track
    there; carried back, its mask stays where it landed, on the dark floor, and is left out
    by the brightness check (one instance a frame)."""
    masks = [disk_mask(H, W, 60, 90, 18), disk_mask(H, W, 150, 90, 18)]
    frames = []
    for i, m in enumerate(masks):
        img = np.full((H, W, 3), 30, np.uint8)
        img[m] = 220
        frames.append(Frame("s", i, i * 40.0, img))
    dets_at = {0: detections([masks[0]]), 1: detections([masks[1]])}
    out = run(make(True, 1, warp="dense"), frames, dets_at)
    assert [len(r.detections) for r in out] == [1, 1]
    assert out[0].detections.track_ids.tolist() != out[1].detections.track_ids.tolist()


@pytest.mark.parametrize("offline", [False, True])
def test_flow_is_computed_only_for_the_tracks_live_and_offline(offline):
    """Nothing tracked: no flow at all; one object: one flow per frame pair and direction
    (where: tests/vis/ops/test_flow.py)."""
    paths = {"a": lambda i: (60 + 2 * i, 70, 14)}
    frames, truth = scene(11, paths)
    proc = make(offline, 5, warp="dense")
    stats = proc.propagator.flow.stats
    run(proc, frames[:5], {0: detections([])})
    assert stats["calls"] == 0
    proc = make(offline, 5, warp="dense")
    stats = proc.propagator.flow.stats
    out = run(proc, frames, {i: detections([truth["a"][i]]) for i in (0, 5, 10)})
    assert stats["calls"] == (20 if offline else 10)  # 10 pairs forward (+ 10 backward)
    assert all(best_iou(r, truth["a"][r.frame_index]) > 0.8 for r in out)


# -- interactions detected after the fact (keyframes.policy: interaction) --------------------


def drive(processor, frames, truth):
    """Every frame through ``vis.offline.advance`` (the loops' code path), the detector played
    by ``truth`` -> (results in the order returned, frames the detector ran on)."""
    from vis.offline import advance

    ran = []

    def detect(batch):
        ran.extend(f.index for f in batch)
        return [detections([m[f.index] for m in truth.values() if m[f.index].any()]) for f in batch]

    out = []
    for f in frames:
        d = detect([f])[0] if processor.is_keyframe(f) else None
        out += advance(processor, f, d, detect)
    out += processor.finish()
    return [r for r, _ in out], ran


def make_policy(policy, interval=10):
    return OfflineStreamProcessor(
        stream_id="s",
        labels=["bg", "thing"],
        tracker=TrackerConfig(),
        propagation=PropagationConfig(),
        keyframes=KeyframeConfig(interval=interval, policy=policy),
    )


def test_offline_interaction_is_the_fixed_schedule_where_no_tracks_meet():
    frames, truth = scene(
        34, {"a": lambda i: (50 + 2 * i, 50, 16), "b": lambda i: (190 - 2 * i, 130, 16)}
    )
    fixed, fixed_ran = drive(make_policy("fixed"), frames, truth)
    inter, inter_ran = drive(make_policy("interaction"), frames, truth)
    assert [r.frame_index for r in inter] == list(range(34))
    assert inter_ran == fixed_ran == [0, 10, 20, 30]
    for a, b in zip(fixed, inter):
        assert a.keyframe == b.keyframe
        assert a.detections.track_ids.tolist() == b.detections.track_ids.tolist()
        assert np.array_equal(a.detections.xyxy, b.detections.xyxy)
        for ma, mb in zip(a.detections.full_masks(), b.detections.full_masks()):
            assert np.array_equal(ma, mb)


def crossing_scene(n=40):
    """Two disks walking at each other; they touch at frame 17 (between keyframes 10 and 20
    of the fixed interval 10) and cross."""
    return scene(n, {"a": lambda i: (40 + 4 * i, 90, 14), "b": lambda i: (200 - 4 * i, 90, 14)})


def test_offline_interaction_detects_the_held_frame_where_a_crossing_begins():
    frames, truth = crossing_scene()
    fixed, fixed_ran = drive(make_policy("fixed"), frames, truth)
    assert fixed_ran == [0, 10, 20, 30]  # the fixed interval misses it
    proc = make_policy("interaction")
    out, ran = drive(proc, frames, truth)
    # where the two tracks met, then the saved call paid back: the next keyframe a frame later
    assert ran[:3] == [0, 10, 20] and 14 <= ran[3] <= 18 and ran[4:] == [31]  # 20 asks
    assert [r.frame_index for r in out] == list(range(40))  # in order, each once
    assert [r.frame_index for r in out if r.keyframe] == sorted(ran)
    assert proc.schedule.reasons["interaction_held"] == 1
    assert len(ran) <= len(fixed_ran) + 1  # paid from the saved call


@pytest.mark.slow
def test_offline_interaction_keeps_the_budget_over_a_long_stream_of_crossings():
    n, interval = 200, 5
    frames, truth = scene(
        n,
        {
            "a": lambda i: (120 + 70 * np.sin(i / 5), 90, 14),
            "b": lambda i: (120 - 70 * np.sin(i / 5), 90, 14),
        },
    )
    proc = make_policy("interaction", interval)
    out, ran = drive(proc, frames, truth)
    assert [r.frame_index for r in out] == list(range(n))
    assert proc.schedule.reasons["interaction_held"] >= 5  # the crossings did ask
    assert len(ran) <= n / interval + 2


# -- boxes between keyframes (propagation.boxes) ----------------------------------------------


def behind_a_wall(n=21):
    """A disk walking right behind a wall that hides its lower half, detected with its whole
    box (as a detector boxes a person whose legs are hidden) and its visible mask.
    Returns (frames, visible masks, whole boxes)."""
    frames, truth = scene(n, {"a": lambda i: (40 + 7 * i, 80, 24)})
    wall = np.zeros((H, W), bool)
    wall[84:, :] = True
    rng = np.random.default_rng(9)
    bricks = rng.integers(0, 255, (H, W, 3), dtype=np.uint8)
    for f in frames:
        f.image[wall] = bricks[wall]
    visible = [m & ~wall for m in truth["a"]]
    whole = [mask_to_box(m).astype(np.float32) for m in truth["a"]]
    return frames, visible, whole


def detected_whole(mask, box):
    return Detections(
        xyxy=box[None].copy(),
        masks=mask[None],
        scores=np.full(1, 0.9, np.float32),
        class_ids=np.ones(1, np.int64),
    )


def box_iou1(a, b):
    x0, y0 = np.maximum(a[:2], b[:2])
    x1, y1 = np.minimum(a[2:], b[2:])
    inter = max(x1 - x0, 0) * max(y1 - y0, 0)
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def test_offline_boxes_between_keyframes_are_the_keyframe_boxes_interpolated():
    """Between keyframes 10 and 20 the detector's box survives (interpolated; the hidden half
    is in it), where the carried mask's box holds only the visible half; masks are the
    same either way."""
    frames, visible, whole = behind_a_wall()
    dets_at = {k: detected_whole(visible[k], whole[k]) for k in (0, 10, 20)}
    interp = run(make(True, 10, warp="dense"), frames, dets_at)
    masked = run(make(True, 10, warp="dense", boxes="mask"), frames, dets_at)
    assert np.allclose(interp[10].detections.xyxy[0], whole[10])  # keyframe: the detector's
    for i in range(11, 20):
        got = interp[i].detections.xyxy[0]
        w = (i - 10) / 10
        assert np.allclose(got, (1 - w) * whole[10] + w * whole[20], atol=1e-3), i
        assert box_iou1(got, whole[i]) > 0.95
        assert box_iou1(masked[i].detections.xyxy[0], whole[i]) < 0.8  # the visible half
        assert np.array_equal(interp[i].detections.full_masks(), masked[i].detections.full_masks())


def test_offline_boxes_of_a_track_one_keyframe_lacks_stay_the_masks():
    """Only tracks that both keyframes hold are interpolated: for a track the later keyframe
    lost, and after the last keyframe, the box is the carried mask's."""
    frames, visible, whole = behind_a_wall(25)
    found = {k: detected_whole(visible[k], whole[k]) for k in (0, 10)}
    lost = run(make(True, 10, warp="dense"), frames, {**found, 20: detections([])})
    for i in range(11, 20):  # still carried, to be lost at keyframe 20
        assert len(lost[i].detections) == 1
        assert box_iou1(lost[i].detections.xyxy[0], whole[i]) < 0.8, i
    found[20] = detected_whole(visible[20], whole[20])
    out = run(make(True, 10, warp="dense"), frames, found)
    for i in range(21, 25):  # after the last keyframe: forward only
        assert box_iou1(out[i].detections.xyxy[0], whole[i]) < 0.8, i
