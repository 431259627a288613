"""``detector.engine: onnxruntime | openvino``: the exported Mask R-CNN gives the same
detections as eager torch, batches frames, and is exported once per checkpoint + settings."""

import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from vis.config import ConfigError
from vis.detection.factory import DetectorConfig, build_detector
from vis.detection.models import DEMO_CHECKPOINT
from vis.detection.onnx_export import paste_masks, resized_size
from vis.ops.boxes import box_iou
from vis_eval.synthetic import SceneConfig, render_sequence
from vis_train.data import holdout_split, read_pennfudan

PENNFUDAN = Path(__file__).resolve().parents[3].parent / "shared" / "data" / "PennFudanPed"
ENGINES = ["onnxruntime", "openvino"]


def assert_same_detections(want, got, what):
    """The issue's equality test: same count; per instance (matched by box IoU) box IoU
    >= 0.98, mask IoU >= 0.97, score within 0.02, same class; embeddings nearly equal."""
    assert len(got) == len(want), f"{what}: {len(got)} detections, torch found {len(want)}"
    if len(want) == 0:
        return
    iou = box_iou(want.xyxy, got.xyxy)
    match = iou.argmax(axis=1)
    assert sorted(match.tolist()) == list(range(len(want))), f"{what}: ambiguous matching"
    for i, j in enumerate(match):
        a, b = want.masks[i].to_full(), got.masks[j].to_full()
        mask_iou = (a & b).sum() / max((a | b).sum(), 1)
        assert iou[i, j] >= 0.98, f"{what} #{i}: box IoU {iou[i, j]:.3f}"
        assert mask_iou >= 0.97, f"{what} #{i}: mask IoU {mask_iou:.3f}"
        assert abs(want.scores[i] - got.scores[j]) <= 0.02, f"{what} #{i}: scores"
        assert want.class_ids[i] == got.class_ids[j], f"{what} #{i}: class"
        assert float(want.embeddings[i] @ got.embeddings[j]) >= 0.999, f"{what} #{i}: embedding"


@pytest.fixture(scope="module")
def demo_copy(tmp_path_factory):
    """The shipped demo checkpoint copied to a temporary folder, so its export cache lands there."""
    path = tmp_path_factory.mktemp("ckpt") / "demo.pt"
    shutil.copy(DEMO_CHECKPOINT, path)
    return path


@pytest.fixture(scope="module")
def synthetic_frames():
    frames = render_sequence(SceneConfig(n_frames=9, seed=4242, n_objects=5, spawn_rate=0.0))
    return [f.image for i, f in enumerate(frames) if i % 4 == 0]


@pytest.mark.slow
@pytest.mark.parametrize("engine", ENGINES)
def test_demo_model_engine_equals_torch_with_batches(demo_copy, synthetic_frames, engine):
    base = dict(weights=str(demo_copy), threads=1, appearance="fused", score_threshold=0.3)
    torch_det = build_detector(DetectorConfig(**base, engine="torch"))
    onnx_det = build_detector(DetectorConfig(**base, engine=engine, batch_size=2))
    want = torch_det.detect(synthetic_frames)
    got = onnx_det.detect(synthetic_frames)  # 3 frames of one size: a batch of 2, then 1
    assert sum(len(d) for d in want) >= 6
    for k, (a, b) in enumerate(zip(want, got)):
        assert_same_detections(a, b, f"{engine} frame {k}")
    assert onnx_det.labels == torch_det.labels
    assert sorted(onnx_det._sessions) == [1, 2]


@pytest.mark.slow
def test_export_is_cached_per_checkpoint_and_settings(demo_copy, synthetic_frames):
    cache = demo_copy.parent / ".engine-cache"
    base = dict(weights=str(demo_copy), threads=1, engine="onnxruntime")
    build_detector(DetectorConfig(**base, score_threshold=0.3)).detect(synthetic_frames[:1])
    files = {p: p.stat().st_mtime_ns for p in cache.glob("*.onnx")}
    assert files, f"no export in {cache}"
    build_detector(DetectorConfig(**base, score_threshold=0.3)).detect(synthetic_frames[:1])
    assert {p: p.stat().st_mtime_ns for p in cache.glob("*.onnx")} == files  # reused
    det = build_detector(DetectorConfig(**base, score_threshold=0.3, rpn_post_nms_top_n=50))
    det.detect(synthetic_frames[:1])
    assert len(list(cache.glob("*.onnx"))) == len(files) + 1  # a setting baked in: new export
    # the same settings on a retrained checkpoint of the same name: a new key
    ckpt = torch.load(demo_copy, map_location="cpu", weights_only=True)
    state = ckpt.get("model", ckpt)
    key = next(k for k in state if k.endswith("box_predictor.cls_score.bias"))
    state[key] = state[key] + 0.01
    other = demo_copy.parent / "retrained" / "demo.pt"
    other.parent.mkdir()
    torch.save(ckpt, other)
    build_detector(DetectorConfig(**{**base, "weights": str(other)}, score_threshold=0.3)).detect(
        synthetic_frames[:1]
    )
    (new,) = (other.parent / ".engine-cache").glob("*.onnx")
    assert new.name not in {p.name for p in files}


def test_int8_needs_an_onnx_engine():
    with pytest.raises(ConfigError, match="detector.precision.*onnxruntime or openvino"):
        DetectorConfig(precision="int8", engine="torch", calibration_images="frames")


@pytest.mark.parametrize(
    ("shape", "bounds", "want"),
    [((536, 559), (480, 800), (480, 500)), ((720, 1280), (480, 800), (450, 800))],
)
def test_resized_size_matches_torchvision(shape, bounds, want):
    from torchvision.models.detection.transform import GeneralizedRCNNTransform

    t = GeneralizedRCNNTransform(bounds[0], bounds[1], [0.0] * 3, [1.0] * 3)
    batch, _ = t([torch.zeros(3, *shape)])
    assert resized_size(shape, *bounds) == tuple(batch.image_sizes[0]) == want


def test_paste_masks_matches_torchvision():
    from torchvision.models.detection.roi_heads import paste_masks_in_image

    rng = np.random.default_rng(1)
    masks = rng.random((4, 28, 28)).astype(np.float32)
    boxes = np.array(
        [[10, 5, 60, 90], [-8, -3, 20, 14], [70, 40, 130, 99.5], [33.3, 20.7, 35.1, 22.9]],
        np.float32,
    )
    want = paste_masks_in_image(
        torch.from_numpy(masks[:, None]), torch.from_numpy(boxes), (100, 120)
    )
    got = paste_masks(masks, boxes, (100, 120))  # box-local: no full frame is made
    full = np.stack([m.window(0, 0, 120, 100) for m in got])
    np.testing.assert_allclose(full, want[:, 0].numpy(), atol=1e-5)
    for m, w in zip(got, want[:, 0].numpy()):  # each crop covers its pasted box, no more
        assert m.prob.size < w.size
        assert (w[m.y0 : m.y1, m.x0 : m.x1] > 0).any() or not (w > 0).any()
    assert paste_masks(masks[:0], boxes[:0], (100, 120)) == []


@pytest.mark.slow
@pytest.mark.skipif(not PENNFUDAN.is_dir(), reason=f"real images absent: {PENNFUDAN}")
@pytest.mark.parametrize("engine", ENGINES)
def test_people_cars_engine_equals_torch_on_real_images(engine):
    """The shipped real model on real Penn-Fudan photographs (native sizes and one 720p)."""
    _, held = holdout_split(read_pennfudan(PENNFUDAN), fraction=0.2, seed=0)
    images = [cv2.imread(str(s.path)) for s in held[:4]]
    images.append(cv2.resize(images[0], (1280, 720)))
    base = dict(weights="people_cars", threads=1, appearance="fused")
    torch_det = build_detector(DetectorConfig(**base, engine="torch"))
    onnx_det = build_detector(DetectorConfig(**base, engine=engine))
    found = 0
    for k, img in enumerate(images):
        (want,) = torch_det.detect([img])
        (got,) = onnx_det.detect([img])
        assert_same_detections(want, got, f"{engine} {k}")
        found += len(want)
    assert found >= 5


@pytest.mark.slow
def test_int8_quantises_the_backbone_and_keeps_the_detections(demo_copy, tmp_path):
    import onnx

    calib = tmp_path / "calib"
    calib.mkdir()
    frames = render_sequence(SceneConfig(n_frames=40, seed=777, n_objects=5, spawn_rate=0.0))
    for i, f in enumerate(frames):
        if i % 5 == 0:
            cv2.imwrite(str(calib / f"{i:03d}.png"), f.image)
    held = render_sequence(SceneConfig(n_frames=9, seed=31337, n_objects=5, spawn_rate=0.0))
    held = [f.image for i, f in enumerate(held) if i % 4 == 0]
    base = dict(weights=str(demo_copy), threads=1, engine="onnxruntime", score_threshold=0.5)
    fp32 = build_detector(DetectorConfig(**base)).detect(held)
    int8_det = build_detector(
        DetectorConfig(**base, precision="int8", calibration_images=str(calib))
    )
    int8 = int8_det.detect(held)
    (path,) = (demo_copy.parent / ".engine-cache").glob("*-int8-*.onnx")
    quantised = {
        n.input[0] for n in onnx.load(str(path)).graph.node if n.op_type == "DequantizeLinear"
    }
    assert any("backbone" in name for name in quantised)
    assert not any("roi_heads" in name or "rpn" in name for name in quantised)
    matched = total = 0
    for a, b in zip(fp32, int8):
        for m in a.full_masks():
            total += 1
            ious = [(m & n).sum() / max((m | n).sum(), 1) for n in b.full_masks()]
            matched += bool(ious) and max(ious) >= 0.8
    assert total >= 6 and matched / total >= 0.8, f"{matched} of {total} kept"


def test_int8_calibration_folder_errors(tmp_path):
    from vis.detection.engines import EngineError
    from vis.detection.quantize import calibration_files

    with pytest.raises(ConfigError, match="calibration_images"):
        DetectorConfig(engine="onnxruntime", precision="int8")
    with pytest.raises(EngineError, match="holds no .jpg/.png images"):
        calibration_files(tmp_path)
    for i in range(40):
        (tmp_path / f"{i:02d}.jpg").touch()
    assert len(calibration_files(tmp_path)) == 32
