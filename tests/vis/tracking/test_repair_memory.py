"""Identity repair's memory budget: the frames a stream holds stay within ``repair.max_held_mb``
(images and an estimate of their results), never fewer than 2 nor more than ``window``."""

import logging

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.mutations import PROPERTY_SETTINGS
from vis.config import ConfigError
from vis.ops.masks import BoxMask
from vis.tracking.repair import (
    IdentityRepair,
    RepairConfig,
    held_bytes,
    held_frames,
)
from vis.types import Detections, Frame, FrameResult

#: a second person beside the first for this many frames out of every ``CYCLE``
BESIDE, CYCLE = 5, 60


def ghost_stream(n: int, height: int, width: int):
    """``n`` frames of ``height`` x ``width`` (one image shared): one person stands still; for
    ``BESIDE`` frames of every ``CYCLE`` a second stands apart from them and then leaves the
    results inside the image (a ghost: an interaction open until it is back or ``window``
    frames have passed)."""
    image = np.full((height, width, 3), 90, np.uint8)
    a = np.array([0.1 * width, 0.2 * height, 0.3 * width, 0.8 * height], np.float32)
    b = np.array([0.6 * width, 0.2 * height, 0.8 * width, 0.8 * height], np.float32)
    for t in range(n):
        boxes = [a, b] if t % CYCLE < BESIDE else [a]
        det = Detections(
            xyxy=np.stack(boxes),
            masks=[BoxMask.from_box(x, (height, width)) for x in boxes],
            scores=np.full(len(boxes), 0.9, np.float32),
            class_ids=np.ones(len(boxes), np.int64),
            track_ids=np.arange(1, len(boxes) + 1),
        )
        result = FrameResult("s", t, t * 100.0, True, width, height, det, ["bg", "person"])
        yield result, Frame("s", t, t * 100.0, image)


def most_held(rep: IdentityRepair, pairs) -> tuple[int, list[int]]:
    """Push ``pairs`` one by one: the most frames held after any push, and the frame indices
    written (every frame once, in order, is checked by the caller)."""
    most, out = 0, []
    for pair in pairs:
        out += [r.frame_index for r, _ in rep.push([pair])]
        most = max(most, len(rep.held))
    out += [r.frame_index for r, _ in rep.finish()]
    return most, out


def test_without_the_budget_binding_a_ghost_holds_the_whole_window():
    rep = IdentityRepair(RepairConfig(window=48))
    most, out = most_held(rep, ghost_stream(200, 120, 160))
    assert most == 48 and rep.held_cap == 48  # what the budget is there to bound
    assert out == list(range(200)) and rep.budget_window is None
    assert "budget_window" not in rep.summary()


def test_large_frames_hold_no_more_than_the_budget_allows(caplog):
    height, width = 600, 800  # 1.44 MB image + 0.6 MB result estimate a frame
    cfg = RepairConfig(window=48, max_held_mb=16)
    image = np.zeros((height, width, 3), np.uint8)
    cap = (16 << 20) // held_bytes(image)
    assert cap == 8 == held_frames(48, 16, image)
    rep = IdentityRepair(cfg)
    with caplog.at_level(logging.WARNING, logger="vis.tracking.repair"):
        most, out = most_held(rep, ghost_stream(400, height, width))
    assert most == cap  # the ghost's interaction decided on what is known at the cap
    assert out == list(range(400))
    assert rep.held_cap == rep.budget_window == cap and rep.summary()["budget_window"] == cap
    (line,) = [r.getMessage() for r in caplog.records]  # said once, in one line
    assert "800x600" in line and f"at most {cap} frames, not 48" in line and "\n" not in line


def test_the_cap_follows_the_frame_size_when_it_changes():
    rep = IdentityRepair(RepairConfig(window=48, max_held_mb=16))
    small = list(ghost_stream(70, 120, 160))
    large = [
        (
            FrameResult("s", t + 70, (t + 70) * 100.0, True, 800, 600, r.detections, r.labels),
            Frame("s", t + 70, (t + 70) * 100.0, f.image),
        )
        for t, (r, f) in enumerate(ghost_stream(130, 600, 800))
    ]
    most, out = most_held(rep, small)
    assert most == 48 and rep.held_cap == 48
    rep = IdentityRepair(RepairConfig(window=48, max_held_mb=16))
    out = []
    for i, pair in enumerate(small + large):
        out += [r.frame_index for r, _ in rep.push([pair])]
        assert len(rep.held) <= (48 if i < 70 else 8)
    assert out + [r.frame_index for r, _ in rep.finish()] == list(range(200))
    assert rep.budget_window == 8


def test_the_default_budget_leaves_the_window_whole_up_to_1080p():
    for height, width in ((576, 768), (480, 854), (1080, 1920)):
        image = np.broadcast_to(np.zeros(1, np.uint8), (height, width, 3))
        assert held_frames(48, RepairConfig().max_held_mb, image) == 48
    uhd = np.broadcast_to(np.zeros(1, np.uint8), (2160, 3840, 3))
    assert held_frames(48, RepairConfig().max_held_mb, uhd) == 15


@settings(PROPERTY_SETTINGS, max_examples=60)
@given(
    st.integers(1, 4320),
    st.integers(1, 8192),
    st.sampled_from([1, 3]),
    st.sampled_from([np.uint8, np.uint16, np.float32]),
    st.integers(1, 4096),
    st.integers(2, 1000),
)
def test_the_cap_is_within_the_budget_and_the_window(height, width, channels, dtype, mb, window):
    image = np.broadcast_to(np.zeros(1, dtype), (height, width, channels))
    cap = held_frames(window, mb, image)
    each = held_bytes(image)
    assert 2 <= cap <= window
    assert cap == 2 or cap * each <= mb << 20  # within the budget unless at the floor
    assert cap == window or (cap + 1) * each > mb << 20  # and no smaller than it must be


@settings(PROPERTY_SETTINGS, max_examples=12)
@given(st.integers(40, 320), st.integers(40, 320), st.integers(1, 3), st.integers(5, 40))
def test_a_stream_never_holds_more_than_its_cap(height, width, mb, window):
    cfg = RepairConfig(window=window, max_held_mb=mb, apart=min(4, window - 1))
    rep = IdentityRepair(cfg)
    cap = held_frames(window, mb, np.zeros((height, width, 3), np.uint8))
    pairs = list(ghost_stream(window + 20, height, width))
    out = []
    for pair in pairs:
        out += [r.frame_index for r, _ in rep.push([pair])]
        assert len(rep.held) <= cap
    assert rep.held_cap == cap
    assert out + [r.frame_index for r, _ in rep.finish()] == list(range(len(pairs)))


@pytest.mark.parametrize("value", [0, -1, (1 << 20) + 1, 1.5, "lots"])
def test_an_out_of_range_budget_is_refused_in_one_line(value):
    from vis_pipeline import load_config

    with pytest.raises(ConfigError) as err:
        load_config(None, [f"repair.max_held_mb={value}"])
    assert "repair.max_held_mb" in str(err.value) and "\n" not in str(err.value)


def test_an_output_folder_made_before_the_budget_resumes(monkeypatch):
    """The key is in ``ADDED_AT_DEFAULT`` (the repair section is, whole): at its default a
    configuration's digest is the one it had before the key existed."""
    from vis_pipeline import load_config
    from vis_pipeline import resume

    def digest(*settings: str, before: bool = False) -> str:
        cfg = load_config(None, list(settings), sources=["clip.mp4"])
        if not before:
            return resume.config_digest(cfg)
        mapping = resume.to_mapping

        def old_mapping(obj):  # what the configuration was before the key existed
            data = mapping(obj)
            data["repair"].pop("max_held_mb")
            return data

        with monkeypatch.context() as m:
            m.setattr(resume, "to_mapping", old_mapping)
            return resume.config_digest(cfg)

    assert resume.ADDED_AT_DEFAULT["repair"]["max_held_mb"] == 512
    assert digest() == digest(before=True)
    assert digest("repair.window=24") == digest("repair.window=24", before=True)
    assert digest("repair.window=24", "repair.max_held_mb=512") == digest("repair.window=24")
    assert digest("repair.max_held_mb=64") != digest()  # it can change the results
