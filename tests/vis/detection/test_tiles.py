"""Tiled inference (``detector.tiles``): an object across tile borders comes out as one
instance with one mask, tiles run only on frames larger than the model's input, every engine
gives the same tiled result at f32, and a bad ``detector.tiles`` is one line and exit 2.

The merge tests use a scripted detector-under-test (it reports the red pixels it is shown):
their point is the merge, not a model. The border test with a model uses the shipped
``people`` model on a real Penn-Fudan person pasted across a tile border.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import cv2
import numpy as np
import pytest

from vis.detection.base import Detector
from vis.detection.config import TilesConfig
from vis.detection.factory import DetectorConfig, build_detector
from vis.detection.tiles import TiledDetector, tile_grid
from vis.ops.masks import BoxMask, pair_iou
from vis.types import Detections, Frame
from vis_pipeline.cli import main

ROOT = Path(__file__).resolve().parents[3]
PENNFUDAN = ROOT.parent / "shared" / "data" / "PennFudanPed"
BACKGROUND = ROOT.parent / "shared" / "data" / "coco128" / "train2017" / "000000000071.jpg"
RED = (0, 0, 255)


class RedPixels(Detector):
    """Detector-under-test: one instance per 8-connected blob of pure red pixels in each image
    it is shown (score 0.9, class 1), but only in images no larger than its "input" (the
    whole-frame pass of a big frame finds nothing): what the tiles find is all there is."""

    labels = ["__background__", "thing"]
    engine = "scripted"
    min_size, max_size = 300, 400

    def __init__(self) -> None:
        self.shown: list[tuple[int, int]] = []

    def detect_frames(self, frames):
        out = []
        for f in frames:
            self.shown.append(f.image.shape[:2])
            h, w = f.image.shape[:2]
            red = np.all(f.image == RED, axis=2)
            if min(h, w) > self.min_size or max(h, w) > self.max_size or not red.any():
                out.append(Detections.empty(h, w))
                continue
            n, lab = cv2.connectedComponents(red.astype(np.uint8), connectivity=8)
            masks = [BoxMask.from_full(lab == k) for k in range(1, n)]
            boxes = [(m.x0, m.y0, m.x1, m.y1) for m in masks]
            out.append(
                Detections(
                    xyxy=np.array(boxes, np.float32),
                    masks=masks,
                    scores=np.full(len(masks), 0.9, np.float32),
                    class_ids=np.ones(len(masks), np.int64),
                    image_size=(h, w),
                )
            )
        return out


def frame(image: np.ndarray) -> Frame:
    return Frame("test", 0, 0.0, image)


def test_an_object_across_four_tiles_is_one_instance_with_its_whole_mask():
    image = np.full((600, 800, 3), 90, np.uint8)
    truth = np.zeros((600, 800), np.uint8)
    # an ellipse over the corner where four tiles meet (x, y 230-256), wider than their
    # overlap, smaller than half a tile (larger ones are the whole-frame pass's)
    cv2.ellipse(truth, (243, 243), (60, 40), 20, 0, 360, 1, -1)
    image[truth > 0] = RED
    detector = TiledDetector(RedPixels(), size=256, overlap=0.1)
    grid = tile_grid(600, 800, 256, 0.1)
    crossing = [t for t in grid if truth[t.y0 : t.y1, t.x0 : t.x1].any()]
    assert len(crossing) >= 4  # the object is cut by tile borders in both directions
    (det,) = detector.detect_frames([frame(image)])
    assert len(det) == 1
    assert np.array_equal(det.full_masks()[0], truth > 0)
    # the same object twice the size is left to the whole-frame pass (here: none)
    big = np.full((600, 800, 3), 90, np.uint8)
    big[cv2.resize(truth, None, fx=2, fy=2, interpolation=cv2.INTER_NEAREST)[:600, :800] > 0] = RED
    assert len(detector.detect_frames([frame(big)])[0]) == 0
    x0, y0, x1, y1 = det.xyxy[0]
    ys, xs = np.nonzero(truth)
    assert (x0, y0, x1, y1) == (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1)


def test_tiles_without_overlap_join_parts_that_touch_across_the_border():
    image = np.full((512, 768, 3), 90, np.uint8)
    image[100:180, 200:320] = RED  # across the border at x = 256 of 256-px tiles
    (det,) = TiledDetector(RedPixels(), size=256, overlap=0.0).detect_frames([frame(image)])
    assert len(det) == 1
    assert (det.masks[0].x0, det.masks[0].x1, det.masks[0].area) == (200, 320, 80 * 120)


def test_two_objects_side_by_side_on_a_border_stay_two():
    image = np.full((512, 768, 3), 90, np.uint8)
    image[100:180, 200:252] = RED  # one ends 4 px before the border at x = 256 ...
    image[200:300, 260:330] = RED  # ... the other starts beyond it, lower down
    (det,) = TiledDetector(RedPixels(), size=256, overlap=0.0).detect_frames([frame(image)])
    assert sorted(m.area for m in det.masks) == [52 * 80, 70 * 100]


def test_an_object_seen_whole_by_two_overlapping_tiles_is_one_instance():
    image = np.full((600, 800, 3), 90, np.uint8)
    image[100:140, 210:240] = RED  # inside the strip tiles 0 and 1 share (x 192-256)
    (det,) = TiledDetector(RedPixels(), size=256, overlap=0.25).detect_frames([frame(image)])
    assert len(det) == 1 and det.masks[0].area == 40 * 30


def test_a_grid_over_the_tile_limit_loses_overlap_never_coverage():
    from vis.detection.tiles import MAX_TILES

    for size, overlap, fits in ((256, 0.9, True), (64, 0.5, False)):
        grid = tile_grid(2160, 3840, size, overlap)  # 0.9: ~15,000 tiles as asked
        assert (len(grid) <= MAX_TILES) == fits
        covered = np.zeros((2160, 3840), bool)
        for t in grid:
            assert (t.x1 - t.x0, t.y1 - t.y0) == (size, size)
            covered[t.y0 : t.y1, t.x0 : t.x1] = True
        assert covered.all()


def test_each_test_time_augmentation_pass_is_tiled():
    from vis.detection.tta import TTADetector, passes_of

    image = np.full((600, 800, 3), 90, np.uint8)
    image[100:180, 200:320] = RED  # across the tile border at x = 230..256
    inner = RedPixels()
    tiled = TiledDetector(inner, size=256, overlap=0.1)
    tta = TTADetector(tiled, passes=passes_of(True, [1.0]), score_threshold=0.1, max_detections=9)
    (det,) = tta.detect_frames([frame(image)])
    per_pass = len(tile_grid(600, 800, 256, 0.1))
    assert tiled.tiles_run == 2 * per_pass  # the plain and the mirrored pass, each tiled
    assert len(det) == 1 and det.masks[0].area == 80 * 120


def test_no_tiles_when_the_frame_is_not_larger_than_the_models_input():
    inner = RedPixels()
    detector = TiledDetector(inner, size=128, overlap=0.2)
    image = np.full((300, 400, 3), 90, np.uint8)  # exactly the model's input
    image[50:80, 60:90] = RED
    (det,) = detector.detect_frames([frame(image)])
    assert detector.tiles_run == 0 and inner.shown == [(300, 400)]
    assert len(det) == 1
    big = np.full((600, 800, 3), 90, np.uint8)
    detector.detect_frames([frame(big)])
    assert detector.tiles_run > 0 and set(inner.shown[2:]) == {(128, 128)}


def test_all_tiles_of_a_batch_go_to_the_engine_in_one_call():
    calls = []

    class Recording(RedPixels):
        def detect_frames(self, frames):
            calls.append(len(frames))
            return super().detect_frames(frames)

    detector = TiledDetector(Recording(), size=256, overlap=0.2)
    frames = [frame(np.full((600, 800, 3), 90, np.uint8)) for _ in range(2)]
    detector.detect_frames(frames)
    assert calls == [2, 2 * len(tile_grid(600, 800, 256, 0.2))]


# -- the shipped people model --------------------------------------------------------------
def pasted_person(border_x: int) -> tuple[np.ndarray, np.ndarray]:
    """A real Penn-Fudan pedestrian (150 px tall: the box around its true mask, with the
    photo's own background inside it) pasted across the vertical line ``border_x`` of a
    960x540 frame: a person-free COCO128 photo of a railway yard, stretched. Returns the
    frame and the person's true mask."""
    name = "FudanPed00001"
    photo = cv2.imread(str(PENNFUDAN / "PNGImages" / f"{name}.png"))
    labels = cv2.imread(str(PENNFUDAN / "PedMasks" / f"{name}_mask.png"), cv2.IMREAD_GRAYSCALE)
    ys, xs = np.nonzero(labels == 1)
    y0, y1, x0, x1 = ys.min() - 5, ys.max() + 6, xs.min() - 5, xs.max() + 6
    s = 150.0 / (ys.max() - ys.min() + 1)
    small = cv2.resize(photo[y0:y1, x0:x1], None, fx=s, fy=s, interpolation=cv2.INTER_AREA)
    mask = cv2.resize(
        (labels[y0:y1, x0:x1] == 1).astype(np.uint8),
        small.shape[1::-1],
        interpolation=cv2.INTER_NEAREST,
    )
    canvas = cv2.resize(cv2.imread(str(BACKGROUND)), (960, 540), interpolation=cv2.INTER_LINEAR)
    h, w = small.shape[:2]
    top, left = 380 - h // 2, border_x - w // 2
    canvas[top : top + h, left : left + w] = small
    truth = np.zeros((540, 960), bool)
    truth[top : top + h, left : left + w] = mask > 0
    return canvas, truth


@pytest.fixture(scope="module")
def people():
    if not (PENNFUDAN / "PNGImages").is_dir() or not BACKGROUND.is_file():
        pytest.skip(f"Penn-Fudan or COCO128 is absent ({PENNFUDAN}, {BACKGROUND})")
    return DetectorConfig(weights="people", engine="torch", threads=1)


@pytest.mark.slow
def test_a_real_person_across_a_tile_border_is_one_instance_with_one_mask(people):
    # 320-px tiles with 10 % overlap: the tiles meet at x = 288..320, narrower than the person
    image, truth = pasted_person(border_x=304)
    detector = build_detector(dataclasses.replace(people, tiles=TilesConfig(320, 0.1)))
    grid = detector.tiles_for(540, 960)
    crops = [frame(np.ascontiguousarray(image[t.y0 : t.y1, t.x0 : t.x1])) for t in grid]
    parts = detector.inner.detect_frames(crops)
    gt = BoxMask.from_full(truth)
    # the tiles on either side of the border each see a part of the person, cut by it
    cut_parts = 0
    for t, d in zip(grid, parts):
        seen = np.zeros_like(truth)
        seen[t.y0 : t.y1, t.x0 : t.x1] = truth[t.y0 : t.y1, t.x0 : t.x1]
        if not seen.any():
            continue
        part = BoxMask.from_full(seen)
        found = [
            m
            for m in d.masks
            if pair_iou(BoxMask(m.x0 + t.x0, m.y0 + t.y0, m.prob, (540, 960)), part) > 0.3
        ]
        inner = [truth[t.y0 : t.y1, t.x0].any() and t.x0 > 0, truth[t.y0 : t.y1, t.x1 - 1].any()]
        cut_parts += bool(found) and any(inner)  # the part reaches the tile's inner edge
    assert cut_parts >= 2, "the person was not found cut in two tiles: nothing to merge"
    # the tiles' parts alone (no whole-frame pass) merge into the whole person
    merged = detector.merge(image, Detections.empty(540, 960), grid, parts)
    on_person = [m for m in merged.masks if m.area and pair_iou(m, gt) > 0.1]
    assert len(on_person) == 1, [round(pair_iou(m, gt), 2) for m in on_person]
    assert pair_iou(on_person[0], gt) > 0.6
    # and with the whole-frame pass: still one
    (det,) = detector.detect_frames([frame(image)])
    on_person = [m for m in det.masks if m.area and pair_iou(m, gt) > 0.1]
    assert len(on_person) == 1, [round(pair_iou(m, gt), 2) for m in on_person]
    assert pair_iou(on_person[0], gt) > 0.6  # the whole person, not a half


@pytest.mark.slow
def test_the_people_model_runs_no_tiles_on_a_frame_no_larger_than_its_input(people):
    image, _ = pasted_person(border_x=304)
    small = np.ascontiguousarray(cv2.resize(image, (800, 450), interpolation=cv2.INTER_AREA))
    plain = build_detector(people)
    tiled = build_detector(dataclasses.replace(people, tiles=TilesConfig(320, 0.1)))
    assert tiled.tiles_for(450, 800) == [] and tiled.tiles_for(540, 960) != []
    (want,), (got,) = plain.detect_frames([frame(small)]), tiled.detect_frames([frame(small)])
    assert tiled.tiles_run == 0 and len(want) > 0
    assert np.array_equal(want.xyxy, got.xyxy) and np.array_equal(want.scores, got.scores)


def test_a_bad_tiles_setting_is_one_line_and_exit_2(tmp_path, capsys):
    video = tmp_path / "clip"
    video.mkdir()
    cv2.imwrite(str(video / "00000.png"), np.zeros((64, 64, 3), np.uint8))
    for bad, key in (
        ("detector.tiles.size=16", "detector.tiles.size"),
        ("detector.tiles.overlap=0.95", "detector.tiles.overlap"),
        ("detector.tiles.stride=3", "detector.tiles.stride"),
    ):
        code = main(["-c", str(ROOT / "configs" / "street.yaml"), "-s", str(video), "--set", bad])
        err = capsys.readouterr().err.strip()
        assert code == 2, bad
        assert len(err.splitlines()) == 1 and key in err, err


# -- every engine ---------------------------------------------------------------------------
@pytest.mark.slow
def test_tiles_give_the_same_instances_on_every_engine_at_f32(people):
    image, truth = pasted_person(border_x=304)
    cfg = dataclasses.replace(people, tiles=TilesConfig(320, 0.1))
    results = {}
    for engine in ("torch", "onnxruntime", "openvino"):
        detector = build_detector(dataclasses.replace(cfg, engine=engine))
        assert detector.precision == "f32"
        (results[engine],) = detector.detect_frames([frame(image)])
        assert detector.tiles_run > 0
    want = results["torch"]
    assert len(want) >= 2
    for engine in ("onnxruntime", "openvino"):
        got = results[engine]
        assert len(got) == len(want), engine
        assert np.array_equal(got.class_ids, want.class_ids), engine
        assert np.abs(got.scores - want.scores).max() < 1e-3, engine
        for a, b in zip(want.masks, got.masks):
            assert pair_iou(a, b) >= 0.99, engine
