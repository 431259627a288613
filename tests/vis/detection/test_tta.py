"""``detector.tta``: flip TTA is mirror-invariant on a real photo, fusion's uncertainty is 0
where passes agree and grows with their disagreement, the record carries it (old records
still read), the tracker hands it to the keyframe's output, and every engine gives the same
result at f32 with Soft-NMS and TTA on."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import cv2
import jsonschema
import numpy as np
import pytest

from tests.conftest import ROOT
from vis.detection.config import TtaConfig
from vis.detection.factory import DetectorConfig, build_detector
from vis.detection.models import SHIPPED_CHECKPOINTS
from vis.detection.tta import Pass, TTADetector, fuse_passes, mirror
from vis.ops.boxes import box_iou, mask_to_box
from vis.ops.masks import BoxMask, pair_iou
from vis.schema import SchemaError, decode_record, encode_record, validate_record
from vis.tracking.tracker import Tracker
from vis.types import Detections, FrameResult

PENNFUDAN = Path(__file__).resolve().parents[3].parent / "shared" / "data" / "PennFudanPed"
SCHEMA_V2 = json.loads((ROOT / "docs" / "vis.frame.v2.schema.json").read_text())


def photo(name: str) -> np.ndarray:
    img = cv2.imread(str(PENNFUDAN / "PNGImages" / f"{name}.png"))
    if img is None:
        pytest.skip(f"Penn-Fudan is absent: {PENNFUDAN}")
    return img


def true_people(name: str) -> Detections:
    """A Penn-Fudan photo's pedestrians from its ground truth (real masks), scores 0.9, 0.8 ..."""
    ids = cv2.imread(str(PENNFUDAN / "PedMasks" / f"{name}_mask.png"), cv2.IMREAD_GRAYSCALE)
    if ids is None:
        pytest.skip(f"Penn-Fudan is absent: {PENNFUDAN}")
    masks = np.stack([ids == k for k in range(1, int(ids.max()) + 1)])
    n = len(masks)
    return Detections(
        xyxy=np.stack([mask_to_box(m) for m in masks]),
        masks=masks,
        scores=np.linspace(0.9, 0.9 - 0.1 * (n - 1), n).astype(np.float32),
        class_ids=np.ones(n, np.int64),
        embeddings=np.eye(n, 4, dtype=np.float32),
    )


@pytest.fixture(scope="module")
def people_model():
    return build_detector(DetectorConfig(weights="people", engine="torch", threads=1))


def same_instances(a: Detections, b: Detections, what: str, tol: float = 1e-3) -> None:
    """Same count; each of ``a``'s instances has one in ``b`` with box IoU >= 0.99, mask IoU
    >= 0.99, score and uncertainty within ``tol``, same class."""
    assert len(a) == len(b), f"{what}: {len(a)} vs {len(b)} instances"
    iou = box_iou(a.xyxy, b.xyxy)
    for i, j in enumerate(iou.argmax(axis=1)):
        assert iou[i, j] >= 0.99, f"{what} #{i}: box IoU {iou[i, j]:.3f}"
        assert pair_iou(a.masks[i], b.masks[j]) >= 0.99, f"{what} #{i}: mask"
        assert abs(a.scores[i] - b.scores[j]) <= tol, f"{what} #{i}: score"
        assert abs(a.uncertainty[i] - b.uncertainty[j]) <= tol, f"{what} #{i}: uncertainty"
        assert a.class_ids[i] == b.class_ids[j]


@pytest.mark.slow
def test_flip_tta_on_a_mirror_symmetric_scene_is_invariant(people_model):
    half = cv2.resize(photo("FudanPed00001"), (320, 320))
    scene = np.concatenate([half, half[:, ::-1]], axis=1)  # a real photo and its mirror
    tta = TTADetector(
        people_model,
        passes=[Pass(1.0, False), Pass(1.0, True)],
        score_threshold=0.1,
        max_detections=50,
    )
    (plain,) = people_model.detect([scene])
    (fused,) = tta.detect([scene])
    assert len(fused) >= 4  # two people on each side
    same_instances(fused, mirror(fused), "TTA vs its mirror")
    # the model alone is not mirror-invariant (a person and its mirror score differently)
    pairs = box_iou(plain.xyxy, mirror(plain).xyxy).argmax(axis=1)
    assert not np.allclose(plain.scores, plain.scores[pairs], atol=1e-6, rtol=0)
    # and on any photo, flip TTA of the mirrored photo is the mirror of flip TTA of the photo
    other = photo("FudanPed00002")
    (a,) = tta.detect([other])
    (b,) = tta.detect([np.ascontiguousarray(other[:, ::-1])])
    same_instances(a, mirror(b), "TTA(mirror) vs mirror(TTA)")


def test_uncertainty_is_zero_when_passes_agree_and_grows_with_disagreement():
    people = true_people("FudanPed00001")  # two pedestrians, real masks
    agree = fuse_passes([people, people, people])
    assert len(agree) == 2
    np.testing.assert_array_equal(agree.uncertainty, 0.0)
    assert pair_iou(agree.masks[0], people.masks[0]) == 1.0

    missing = fuse_passes([people, people[[0]]])  # the second pass missed the second person
    assert missing.uncertainty[0] == 0.0
    assert missing.uncertainty[1] == pytest.approx(0.5)
    assert missing.scores[1] == pytest.approx(people.scores[1] / 2)  # a missed pass counts 0

    def eroded(d: Detections, px: int) -> Detections:
        kernel = np.ones((2 * px + 1, 2 * px + 1), np.uint8)
        full = np.stack([cv2.erode(m.astype(np.uint8), kernel) > 0 for m in d.full_masks()])
        return dataclasses.replace(d, masks=[BoxMask.crop_or_empty(m) for m in full])

    small = fuse_passes([people, eroded(people, 1)]).uncertainty
    large = fuse_passes([people, eroded(people, 4)]).uncertainty
    assert (small > 0).all() and (large > small).all()
    unsure = dataclasses.replace(people, scores=people.scores - 0.3)
    spread = fuse_passes([people, unsure]).uncertainty
    np.testing.assert_allclose(spread, 0.3, atol=1e-5)
    assert ((0 <= large) & (large <= 1)).all()


def keyframe_result(dets: Detections) -> FrameResult:
    h, w = dets.image_size
    return FrameResult("cam", 3, 120.0, True, w, h, dets, ["__background__", "person"])


def test_the_record_round_trips_uncertainty_and_old_records_still_read():
    people = fuse_passes([true_people("FudanPed00001"), true_people("FudanPed00001")[[0]]])
    people.track_ids = np.array([1, 2])
    rec = encode_record(keyframe_result(people))
    assert [i["uncertainty"] for i in rec["instances"]] == [0.0, 0.5]
    jsonschema.validate(rec, SCHEMA_V2)
    back = decode_record(json.loads(json.dumps(rec))).detections
    np.testing.assert_allclose(back.uncertainty, [0.0, 0.5])

    old = json.loads(json.dumps(rec))
    for inst in old["instances"]:
        del inst["uncertainty"]
    assert decode_record(old).detections.uncertainty is None
    plain = dataclasses.replace(people, uncertainty=None)
    assert "uncertainty" not in json.dumps(encode_record(keyframe_result(plain)))
    for bad in (1.5, -0.1, float("nan"), "0.3", True):
        broken = json.loads(json.dumps(rec))
        broken["instances"][0]["uncertainty"] = bad
        with pytest.raises(SchemaError, match="uncertainty"):
            validate_record(broken)


def test_the_tracker_hands_a_keyframes_uncertainty_to_its_tracked_output():
    people = true_people("FudanPed00001")
    people.uncertainty = np.array([0.25, 0.5], np.float32)
    tracker = Tracker(fps=10)
    out = tracker.update(people, frame_index=0)
    assert len(out) == 2
    by_box = box_iou(out.xyxy, people.xyxy).argmax(axis=1)
    np.testing.assert_array_equal(out.uncertainty, people.uncertainty[by_box])
    between = tracker.update(None, frame_index=1)
    assert between.uncertainty is None  # measured on keyframes only
    again = tracker.update(dataclasses.replace(people, uncertainty=None), frame_index=2)
    assert again.uncertainty is None


@pytest.mark.slow
@pytest.mark.parametrize("engine", ["onnxruntime", "openvino"])
def test_every_engine_at_f32_gives_torchs_result_with_the_levers_on(tmp_path, engine):
    from tests.vis.detection.test_engines import assert_same_detections

    weights = tmp_path / "people.pt"  # its export cache lands in tmp_path
    shutil.copy(SHIPPED_CHECKPOINTS["people"], weights)
    cfg = DetectorConfig(
        weights=str(weights),
        threads=1,
        nms="soft",
        tta=TtaConfig(flip=True, scales=(1.0, 0.75)),
        engine="torch",
    )
    # 640x480, as the engine-equality test (on some other sizes the exported graph and eager
    # torch differ by a pixel of resize already without the levers)
    images = [cv2.resize(photo(f"FudanPed0000{k}"), (640, 480)) for k in (1, 2, 4, 5)]
    want = build_detector(cfg).detect(images)
    got = build_detector(dataclasses.replace(cfg, engine=engine)).detect(images)
    assert sum(len(d) for d in want) >= 6
    for k, (a, b) in enumerate(zip(want, got)):
        assert_same_detections(a, b, f"{engine} photo {k}")
        iou = box_iou(a.xyxy, b.xyxy).argmax(axis=1)
        np.testing.assert_allclose(a.uncertainty, b.uncertainty[iou], atol=0.02)


def test_yolo_seg_with_the_levers_gives_one_result_on_both_engines(tmp_path):
    from tests.vis.detection import tiny_yolo_seg
    from tests.vis.detection.test_yolo_seg import GREEN_BOX, RED_BOX, scene

    path = tiny_yolo_seg.export(tmp_path / "tiny_seg.onnx")
    img, _ = scene([(RED_BOX, (0, 0, 255)), (GREEN_BOX, (0, 255, 0))])
    got = {}
    for engine in ("onnxruntime", "openvino"):
        cfg = DetectorConfig(
            type="yolo_seg_onnx",
            weights=str(path),
            engine=engine,
            threads=1,
            nms="soft",
            tta=TtaConfig(flip=True, scales=(1.0,)),
        )
        (got[engine],) = build_detector(cfg).detect([img])
    a, b = got["onnxruntime"], got["openvino"]
    assert sorted(a.class_ids.tolist()) == [1, 2]
    same_instances(a, b, "onnxruntime vs openvino")
