"""Flow on the tracks' regions: same masks as whole-frame flow, much less of the frame."""

import cv2
import numpy as np
import pytest

from vis.ops.flow import FlowEstimator, FlowField, Region, RegionFlow, auto_scale, plan_regions
from vis.ops.masks import BoxMask
from vis.propagation import PropagationConfig, Propagator


def _texture(rng, h, w, cell):
    small = rng.integers(0, 255, (max(h // cell, 2), max(w // cell, 2)), np.uint8)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)


def scene(size, objects, seed=0):
    """Two grey frames and each object's mask in the first one. ``objects``: (cx, cy, r, dx,
    dy) per textured disk, moving by (dx, dy) over a static textured background."""
    h, w = size
    rng = np.random.default_rng(seed)
    bg = _texture(rng, h, w, 12)
    frames, first = [], []
    for t in (0, 1):
        img = bg.copy()
        for cx, cy, r, dx, dy in objects:
            tex = _texture(np.random.default_rng(int(r)), h, w, 3)
            yy, xx = np.mgrid[0:h, 0:w]
            x, y = cx + dx * t, cy + dy * t
            disk = (xx - x) ** 2 + (yy - y) ** 2 <= r * r
            # the texture moves with the disk
            moved = np.roll(tex, (round(dy * t), round(dx * t)), axis=(0, 1))
            img[disk] = moved[disk]
            if t == 0:
                first.append(BoxMask.from_full(disk))
        frames.append(img)
    return frames, first


def truth(size, cx, cy, r):
    h, w = size
    yy, xx = np.mgrid[0:h, 0:w]
    return (xx - cx) ** 2 + (yy - cy) ** 2 <= r * r


def iou(a, b):
    return (a & b).sum() / max((a | b).sum(), 1)


def warped(cfg, frames, masks):
    prop = Propagator(PropagationConfig(**cfg))
    warp = prop.warp_fn(frames[0], frames[1], masks)
    return [warp(m) for m in masks], prop.flow.stats


FRAME = {"region": "frame", "downscale": 1.0}
OBJECTS = {"region": "objects", "downscale": 1.0}


def test_regions_give_the_masks_whole_frame_flow_gives():
    """An object moving inside its window: the flow of its region alone moves its mask as
    the whole frame's flow does (and where the object really went)."""
    size = (720, 1280)
    frames, masks = scene(size, [(900, 300, 24, 5, -3)])
    (full,), _ = warped(FRAME, frames, masks)
    (roi,), stats = warped(OBJECTS, frames, masks)
    assert stats["pixels"] < 0.2 * size[0] * size[1]
    assert iou(roi.to_full(), full.to_full()) > 0.9
    moved = truth(size, 905, 297, 24)
    assert iou(roi.to_full(), moved) >= iou(full.to_full(), moved) - 0.03
    assert iou(roi.to_full(), moved) > iou(masks[0].to_full(), moved) + 0.08  # it followed


def test_an_object_at_the_frame_border_keeps_its_region_inside_the_frame():
    size = (720, 1280)
    frames, masks = scene(size, [(10, 700, 30, 4, -2)])  # partly outside, left and bottom
    prop = Propagator(PropagationConfig(**OBJECTS))
    (region,) = prop.regions(masks, size)
    assert region.x0 == 0 and region.y1 == size[0]
    assert region.x1 - region.x0 >= prop.flow.min_side  # grown into the frame, not out of it
    (full,), _ = warped(FRAME, frames, masks)
    (roi,), _ = warped(OBJECTS, frames, masks)
    assert iou(roi.to_full(), full.to_full()) > 0.9


def test_two_objects_far_apart_do_not_pay_for_the_pixels_between_them():
    size = (720, 1280)
    objs = [(100, 100, 20, 3, 2), (1180, 620, 20, -3, 1)]
    frames, masks = scene(size, objs)
    prop = Propagator(PropagationConfig(**OBJECTS))
    regions = prop.regions(masks, size)
    assert len(regions) == 2
    fulls, _ = warped(FRAME, frames, masks)
    rois, stats = warped(OBJECTS, frames, masks)
    assert stats["pixels"] < 0.35 * size[0] * size[1]  # each region: DIS's minimum side
    for (cx, cy, r, dx, dy), a, b in zip(objs, rois, fulls):
        assert iou(a.to_full(), b.to_full()) > 0.9
        assert iou(a.to_full(), truth(size, cx + dx, cy + dy, r)) > 0.8


@pytest.mark.parametrize("downscale", [1.0, "auto"])
def test_no_track_no_flow(downscale):
    frames, _ = scene((120, 160), [(60, 60, 15, 2, 0)])
    prop = Propagator(PropagationConfig(region="objects", downscale=downscale))
    warp = prop.warp_fn(frames[0], frames[1], [])
    assert prop.flow.stats["calls"] == 0 and prop.flow.stats["pixels"] == 0
    assert prop.flow.stats["resize_s"] == 0.0
    # a mask it was not told about stays where it was (no flow is zero flow)
    m = BoxMask.from_full(truth((120, 160), 60, 60, 15))
    assert iou(warp(m).to_full(), m.to_full()) > 0.95


def test_a_tiny_object_in_a_large_frame_is_tracked_at_full_resolution_on_a_small_region():
    size = (1080, 1920)
    frames, masks = scene(size, [(900, 500, 9, 3, 2), (1500, 300, 120, 2, 1)])
    prop = Propagator(PropagationConfig(region="objects", downscale="auto"))
    regions = prop.regions(masks, size)
    scales = sorted(r.scale for r in regions)
    assert scales == [1.0, 4.0]  # the tiny one at full resolution, the big one shrunk
    warp = prop.warp_fn(frames[0], frames[1], masks)
    tiny = warp(masks[0])
    assert prop.flow.stats["pixels"] < 0.08 * size[0] * size[1]
    assert iou(tiny.to_full(), truth(size, 903, 502, 9)) > 0.6


def test_auto_scale_keeps_the_smallest_side_and_the_cap():
    size = (720, 1280)
    masks = [BoxMask(0, 0, np.ones((h, 2 * h), np.float32), size) for h in (10, 30, 60, 200)]
    assert auto_scale(masks, min_size=24, max_scale=4).tolist() == [1.0, 1.0, 2.0, 4.0]


def test_plan_merges_overlapping_windows_and_covers_most_of_the_frame_with_one():
    size = (100, 200)
    near = np.array([[10, 10, 60, 60], [40, 20, 90, 70]])
    (r,) = plan_regions(near, np.array([1.0, 1.0]), size)
    assert (r.x0, r.y0, r.x1, r.y1, r.scale) == (10, 10, 90, 70, 1.0)
    spread = np.array([[0, 0, 90, 50], [110, 50, 200, 100]])  # far apart, 45 % of the frame
    assert len(plan_regions(spread, np.ones(2), size, cover=0.6)) == 2
    assert len(plan_regions(spread, np.ones(2), size, cover=0.4)) == 1
    assert plan_regions(np.zeros((0, 4), np.int64), np.zeros(0), size) == []


def test_window_of_a_shrunk_region_matches_resizing_the_whole_flow():
    """Sampling the reduced flow per window reads what upsampling the whole flow would."""
    rng = np.random.default_rng(0)
    small = rng.normal(0, 2, (45, 80, 2)).astype(np.float32)
    full = cv2.resize(small, (320, 180), interpolation=cv2.INTER_LINEAR) * 4
    crop = small[10:30, 20:60]
    field = FlowField((180, 320), [RegionFlow(crop, u0=20, v0=10, sx=4.0, sy=4.0)])
    got = field.window(100, 50, 200, 100)
    assert np.abs(got[2:-2, 2:-2] - full[52:98, 102:198]).max() < 1e-3


def test_regions_keep_enough_of_the_frame_for_the_coarse_to_fine_search():
    """A small object's region is grown to DIS's minimum side (shorter, DIS drops the coarse
    levels that follow large motions), never past the frame."""
    prop = Propagator(PropagationConfig(**OBJECTS))
    side = prop.flow.min_side
    assert 150 < side < 200  # dis_ultrafast: 1 level above its finest (1/4)
    m = BoxMask(500, 400, np.ones((20, 20), np.float32), (1080, 1920))
    (r,) = prop.regions([m], (1080, 1920))
    assert r.x1 - r.x0 >= side and r.y1 - r.y0 >= side
    m = BoxMask(500, 80, np.ones((20, 20), np.float32), (160, 640))
    (r,) = prop.regions([m], (160, 640))  # a frame lower than that: its whole height
    assert (r.y0, r.y1) == (0, 160) and r.x1 - r.x0 >= side


def test_estimator_keeps_one_dis_per_region_size():
    est = FlowEstimator()
    a = np.zeros((64, 64), np.uint8)
    for n in (32, 48, 64, 48):
        est.field(a, a, [Region(0, 0, n, n)])
    assert len(est._dis) == 3
