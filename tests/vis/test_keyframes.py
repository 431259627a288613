"""The keyframe policies: the fixed interval, and the adaptive one's budget and triggers."""

import numpy as np
import pytest

from tests.vis.test_offline import detections, scene
from vis.config import ConfigError
from vis.keyframes import AdaptiveSchedule, KeyframeConfig, KeyframeSchedule, make_schedule
from vis.pipeline import StreamProcessor
from vis.propagation import PropagationConfig
from vis.tracking.config import TrackerConfig
from vis.types import Frame


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
