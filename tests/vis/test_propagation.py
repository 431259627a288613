from pathlib import Path

import cv2
import numpy as np
import pytest

from tests.conftest import disk_mask
from vis_eval.synthetic import background_image, object_texture
from vis.ops.masks import BoxMask
from vis.ops.masks import smooth_mask
from vis.config import ConfigError
from vis.propagation import PropagationConfig, Propagator
from vis_pipeline import load_config

H, W = 180, 240


def checker(size: int, cell: int = 5) -> np.ndarray:
    yy, xx = np.mgrid[0:size, 0:size]
    on = ((yy // cell + xx // cell) % 2).astype(np.float32)
    return np.stack([40 + 180 * on, 200 - 150 * on, 90 + 60 * on], axis=2)


def textured_scene(
    n_frames: int, velocity=(3.0, 1.5), radius=22.0, strong_texture=False, start=(60.0, 60.0)
):
    """A textured disk translating over a static textured background."""
    rng = np.random.default_rng(3)
    bg = background_image(rng, W, H).astype(np.float32)
    size = 2 * int(radius) + 8
    tex = checker(size) if strong_texture else object_texture(rng, size)
    frames, masks = [], []
    for i in range(n_frames):
        cx, cy = start[0] + velocity[0] * i, start[1] + velocity[1] * i
        m = disk_mask(H, W, cx, cy, radius)
        img = bg.copy()
        ys, xs = np.nonzero(m)
        ty = (ys - int(cy - radius) + 4).clip(0, tex.shape[0] - 1)
        tx = (xs - int(cx - radius) + 4).clip(0, tex.shape[1] - 1)
        img[ys, xs] = tex[ty, tx]
        frames.append(np.clip(img + rng.normal(0, 2, img.shape), 0, 255).astype(np.uint8))
        masks.append(m)
    return [f.mean(axis=2).astype(np.uint8) for f in frames], masks


def iou(a, b):
    return (a & b).sum() / max((a | b).sum(), 1)


@pytest.mark.parametrize("method", ["dis_ultrafast", "dis_medium", "farneback"])
def test_known_translation_iou_after_ten_frames(method):
    """The default warp (ECC) holds IoU >= 0.9 after 10 frames, even on weak texture."""
    grays, masks = textured_scene(11)
    prop = Propagator(PropagationConfig(warp="ecc", method=method))
    m = BoxMask.from_full(masks[0])
    for i in range(1, 11):
        m = prop.warp_fn(grays[i - 1], grays[i])(m)
        assert m is not None
    assert iou(m.to_full(), masks[10]) >= 0.9


@pytest.mark.parametrize("warp", ["affine", "dense"])
def test_flow_only_warps_follow_a_strongly_textured_object(warp):
    grays, masks = textured_scene(6, strong_texture=True)
    prop = Propagator(PropagationConfig(warp=warp, method="dis_medium"))
    m = BoxMask.from_full(masks[0])
    for i in range(1, 6):
        m = prop.warp_fn(grays[i - 1], grays[i])(m)
    assert iou(m.to_full(), masks[5]) > iou(masks[0], masks[5]) + 0.2


@pytest.mark.parametrize("warp, frames", [("ecc", 14), ("dense", 18)])
def test_mask_of_an_object_leaving_the_frame_shrinks_then_ends(warp, frames):
    """The object is gone by frame 11; the dense warp, whose flow underestimates the motion,
    slides its mask out a few frames later (without the border rule it stays stuck)."""
    grays, masks = textured_scene(
        frames, velocity=(-6.0, 0.0), start=(40.0, 90.0), strong_texture=True
    )
    prop = Propagator(PropagationConfig(warp=warp))
    m = BoxMask.from_full(masks[0])
    areas = []
    for i in range(1, frames):
        m = prop.warp_fn(grays[i - 1], grays[i])(m) if m is not None else None
        areas.append(0 if m is None else m.area)
        if m is not None:
            assert m.x0 >= 0  # never wraps or leaks outside the image
    assert areas[0] > 1000 and areas[-1] < 20  # gone (or a collapsed sliver)
    peak = int(np.argmax(areas))  # the disk reaches the border at frame 3
    assert peak <= 4
    assert all(b <= a + 30 for a, b in zip(areas[peak:], areas[peak + 1 :]))  # on the way out


def test_smoothing_settles_uncertain_boundary_pixels_from_the_previous_mask():
    prev_full = disk_mask(H, W, 100, 90, 20)
    prev = BoxMask.from_full(prev_full)
    det = np.where(disk_mask(H, W, 100, 90, 16), 0.95, 0.0).astype(np.float32)
    det[prev_full & (det == 0)] = 0.45  # the detector is unsure about the rim it had before
    spur = disk_mask(H, W, 124, 90, 5) & ~prev_full
    det[spur] = 0.6  # and mildly sure about a bump that was never there
    box = np.array([79, 69, 130, 111], np.float32)
    soft = BoxMask.from_window(det, 0, 0, (H, W))  # the soft values below 0.5 count too
    raw = smooth_mask(soft, box, prev, weight=1.0, min_area=10).to_full()
    smoothed = smooth_mask(soft, box, prev, weight=0.7, min_area=10).to_full()
    assert raw[prev_full & (det == 0.45)].sum() == 0 and raw[spur].all()
    assert smoothed[prev_full].all()  # rim kept: 0.7 * 0.45 + 0.3 * 1 >= 0.5
    assert not smoothed[spur].any()  # bump dropped: 0.7 * 0.6 < 0.5


def test_column_medians_equal_numpy_medians():
    """The partial-sort median each dense warp takes of its flow equals ``np.median``, for
    odd and even counts and a single point."""
    from vis.propagation import column_medians

    rng = np.random.default_rng(1)
    for n in (1, 2, 3, 10, 11, 500):
        a = rng.normal(size=(n, 2)).astype(np.float32)
        assert np.array_equal(column_medians(a), np.median(a, axis=0))


SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "data"
PERSON = SHARED / "PennFudanPed" / "PNGImages" / "FudanPed00001.png"
PERSON_MASK = SHARED / "PennFudanPed" / "PedMasks" / "FudanPed00001_mask.png"
STREET = SHARED / "davis2016" / "DAVIS" / "JPEGImages" / "480p" / "car-roundabout" / "00000.jpg"


def walking_person(step: int, n_frames: int = 9):
    """A real pedestrian (Penn-Fudan, cut out by its mask) moved ``step`` px per frame to the
    right over a real street (a DAVIS frame): (grey frames, true masks)."""
    missing = [p for p in (PERSON, PERSON_MASK, STREET) if not p.is_file()]
    if missing:
        pytest.skip(f"{missing[0]} is absent (the shared real-data folder beside the project)")
    img = cv2.imread(str(PERSON), cv2.IMREAD_GRAYSCALE)
    mask = cv2.imread(str(PERSON_MASK), cv2.IMREAD_GRAYSCALE) == 1
    ys, xs = np.nonzero(mask)
    patch = img[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]
    cut = mask[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]
    bg = cv2.imread(str(STREET), cv2.IMREAD_GRAYSCALE)
    h, w = cut.shape
    frames, masks = [], []
    for i in range(n_frames):
        x, y = 40 + step * i, 150
        frame, full = bg.copy(), np.zeros(bg.shape, bool)
        frame[y : y + h, x : x + w][cut] = patch[cut]
        full[y : y + h, x : x + w] = cut
        frames.append(frame)
        masks.append(full)
    return frames, masks


def carried_j(frames, masks, keys: dict) -> tuple[list[float], BoxMask]:
    """J of the first mask carried through ``frames`` by the dense warp with ``keys``, per
    later frame, and the last carried mask."""
    prop = Propagator(PropagationConfig(warp="dense", **keys))
    m = BoxMask.from_full(masks[0].astype(np.float32))
    js = []
    for i in range(1, len(frames)):
        m = prop.warp_fn(frames[i - 1], frames[i], [m])(m)
        assert m is not None
        js.append(iou(m.to_full(), masks[i]))
    return js, m


@pytest.mark.slow
def test_flow_at_half_resolution_keeps_more_of_a_fast_walker():
    """40 px per frame: DIS's quarter-resolution preset averages the legs and arms with the
    street (mean J 0.33 over 8 frames); computed down to half resolution it keeps them."""
    frames, masks = walking_person(40)
    js, _ = carried_j(frames, masks, {"finest_scale": 1})
    assert np.mean(js) >= 0.42


@pytest.mark.parametrize("value", [-1, 5, True, 1.5, "fine"])
def test_finest_scale_out_of_range_is_refused_in_one_line(value):
    with pytest.raises(ConfigError) as err:
        load_config(None, [f"propagation.finest_scale={str(value).lower()}"])
    assert "propagation.finest_scale" in str(err.value) and "\n" not in str(err.value)
