"""The keyframe policies: the fixed interval, and the adaptive one's budget and triggers."""

import numpy as np
import pytest

from tests.vis.test_offline import detections, scene
from vis.config import ConfigError
from vis.keyframes import (
    AdaptiveSchedule,
    InteractionSchedule,
    KeyframeConfig,
    KeyframeSchedule,
    contacts,
    make_schedule,
)
from vis.ops.masks import BoxMask
from vis.pipeline import StreamProcessor
from vis.propagation import PropagationConfig
from vis.tracking.config import TrackerConfig
from vis.types import Detections, Frame


def still_frames(n, h=90, w=120):
    rng = np.random.default_rng(0)
    img = rng.integers(0, 255, (h, w, 3), np.uint8)
    return [Frame("s", i, i * 40.0, img) for i in range(n)]


def test_make_schedule_follows_the_policy_and_bad_values_are_refused():
    assert type(make_schedule(KeyframeConfig())) is KeyframeSchedule
    assert type(make_schedule(KeyframeConfig(policy="adaptive"))) is AdaptiveSchedule
    with pytest.raises(ConfigError, match="keyframes.policy"):
        KeyframeConfig(policy="sometimes")
    with pytest.raises(ConfigError, match="keyframes.max_interval"):
        KeyframeConfig(max_interval=-1)


def test_adaptive_spends_the_fixed_budget_on_a_quiet_stream():
    s = make_schedule(KeyframeConfig(interval=10, policy="adaptive"))
    keys = [f.index for f in still_frames(200) if s.is_keyframe(f)]
    assert abs(len(keys) - 200 / 10) <= 1.5
    assert max(np.diff(keys)) <= 30  # max_interval 0 = 3 x interval


def motion_scene():
    """Quiet for 24 frames, then a disk enters from the right edge."""
    return scene(40, {"a": lambda i: (240 + 22 - 6 * max(i - 23, 0), 90, 18)})


def run(policy):
    frames, truth = motion_scene()
    proc = StreamProcessor(
        stream_id="s",
        labels=["bg", "thing"],
        tracker=TrackerConfig(),
        propagation=PropagationConfig(warp="dense"),
        keyframes=KeyframeConfig(interval=10, policy=policy),
    )
    keys = []
    for f in frames:
        if proc.is_keyframe(f):
            keys.append(f.index)
            proc.process(f, detections([m for m in [truth["a"][f.index]] if m.any()]))
        else:
            proc.process(f, None)
    return keys, proc


def test_adaptive_detects_an_entering_object_at_once_where_fixed_waits():
    fixed, _ = run("fixed")
    adaptive, proc = run("adaptive")
    entered = 24  # first frame with the disk's pixels inside the image
    assert min(k for k in fixed if k >= entered) == 30
    first = min(k for k in adaptive if k >= entered)
    assert first <= entered + 2
    assert proc.schedule.reasons["motion"] + proc.schedule.reasons["border"] >= 1
    assert len(adaptive) <= len(fixed) + 1  # within the same budget


# -- interaction: keyframes where tracks meet or part ----------------------------------------


def tracked(centres, r=12.0, size=(180, 240)):
    """Scripted tracked instances: {track id: (cx, cy)} -> ``Detections`` of boxes 2r wide,
    with track ids."""
    ids = sorted(centres)
    boxes = np.array([[x - r, y - r, x + r, y + r] for x, y in (centres[t] for t in ids)])
    return Detections(
        xyxy=boxes.astype(np.float32).reshape(-1, 4),
        masks=[BoxMask.from_box(b, size) for b in boxes],
        scores=np.full(len(ids), 0.9, np.float32),
        class_ids=np.ones(len(ids), np.int64),
        track_ids=np.array(ids, np.int64),
    )


def schedule_run(policy, paths, n, interval=10):
    """Frames 0..n-1 through a schedule fed the scripted tracks ``paths`` (id -> frame ->
    centre) -> (keyframe indices, schedule)."""
    s = make_schedule(KeyframeConfig(interval=interval, policy=policy))
    img = np.zeros((4, 4, 3), np.uint8)
    keys = []
    for i in range(n):
        key = s.is_keyframe(Frame("s", i, i * 40.0, img))
        keys += [i] if key else []
        s.observe(tracked({t: p(i) for t, p in paths.items()}), key)
    return keys, s


def crossing(speed=4.0):
    """Two tracks 200 px apart walking at each other (``speed`` px/frame each): their boxes
    overlap on frames 23-27."""
    return {1: lambda i: (20 + speed * i, 90), 2: lambda i: (220 - speed * i, 90)}


def test_interaction_spends_a_keyframe_on_a_crossing_the_fixed_interval_misses():
    contact = range(23, 28)
    fixed, _ = schedule_run("fixed", crossing(), 40)
    assert not set(fixed) & set(range(21, 30))  # keyframes 20 and 30: the crossing between
    keys, s = schedule_run("interaction", crossing(), 40)
    caught = [k for k in keys if contact.start - 2 <= k <= contact.stop]
    assert caught and caught[0] < contact.start  # predicted: before the boxes meet
    assert s.reasons["interaction"] >= 1
    assert len(keys) <= len(fixed) + 1  # within the same budget


def test_interaction_without_contacts_keeps_the_fixed_keyframes():
    apart = {1: lambda i: (40 + i, 40), 2: lambda i: (200 - i, 140)}
    assert schedule_run("interaction", apart, 95)[0] == schedule_run("fixed", apart, 95)[0]


def test_interaction_keeps_the_budget_over_a_long_stream_of_crossings():
    n, interval = 3000, 5
    swing = {
        1: lambda i: (120 + 80 * np.sin(i / 6), 90),
        2: lambda i: (120 - 80 * np.sin(i / 6), 90),
    }
    keys, s = schedule_run("interaction", swing, n, interval)
    assert s.reasons["interaction"] > n / 100  # the crossings did ask
    assert len(keys) <= n / interval + 2


def test_interaction_settings_are_checked_at_load():
    assert type(make_schedule(KeyframeConfig(policy="interaction"))) is InteractionSchedule
    with pytest.raises(ConfigError, match="keyframes.interaction_margin"):
        KeyframeConfig(interaction_margin=-0.1)
    with pytest.raises(ConfigError, match="keyframes.interaction_lookahead"):
        KeyframeConfig(interaction_lookahead=-1)
    with pytest.raises(ConfigError, match="keyframes.interaction_at"):
        KeyframeConfig(interaction_at="middle")


def test_contacts_are_pairs_whose_grown_boxes_overlap():
    boxes = np.array([[0, 0, 10, 10], [14, 0, 24, 10], [5, 5, 7, 7], [50, 50, 60, 60]], float)
    ids = np.array([4, 2, 7, 1])
    assert contacts(ids, boxes, 0) == {(4, 7)}  # 4 and 2 are 4 px apart
    assert contacts(ids, boxes, 0.25) == {(2, 4), (4, 7)}  # grown by 2.5 px each side
    assert contacts(ids[:1], boxes[:1], 0.25) == set()


def test_a_lower_starting_credit_moves_the_interaction_keyframes_to_another_phase():
    """How a benchmark averages the schedule over keyframe phases (``pets09.run_ours``)."""
    s = make_schedule(KeyframeConfig(interval=5, policy="interaction"))
    s.credit -= 2 / 5
    img = np.zeros((4, 4, 3), np.uint8)
    keys = [i for i in range(30) if s.is_keyframe(Frame("s", i, i * 40.0, img))]
    assert keys == [0, 6, 12, 17, 22, 27]  # two keyframes a frame late, then phase 2
