"""``detector.type: yolo_seg_onnx`` on a tiny model of the Ultralytics segmentation layout that
the test builds itself (``tiny_yolo_seg.py``): its hand-set weights say exactly which boxes,
classes and masks a frame must produce, through both ONNX engines."""

import numpy as np
import pytest

from tests.vis.detection import tiny_yolo_seg
from vis.config import ConfigError
from vis.detection.detector import HistogramEmbedder
from vis.detection.engines import EngineError, open_session
from vis.detection.factory import DetectorConfig, build_detector
from vis.detection.yolo_seg import YoloSegDetector, YoloSegError, letterbox
from vis.ops.boxes import nms
from vis.types import Frame

GREY = 120
RED_BOX = (24, 12, 36, 24)  # x1 y1 x2 y2 in a 96x48 frame: the grid cell (3, 2) once boxed
GREEN_BOX = (60, 24, 72, 36)  # cell (4, 5)


@pytest.fixture(scope="module")
def model_path(tmp_path_factory):
    return tiny_yolo_seg.export(tmp_path_factory.mktemp("yolo") / "tiny_seg.onnx")


def scene(boxes_colours, h=48, w=96):
    img = np.full((h, w, 3), GREY, np.uint8)
    truth = []
    for (x1, y1, x2, y2), bgr in boxes_colours:
        img[y1:y2, x1:x2] = bgr
        m = np.zeros((h, w), bool)
        m[y1:y2, x1:x2] = True
        truth.append(m)
    return img, truth


@pytest.mark.parametrize("engine", ["onnxruntime", "openvino"])
def test_decodes_the_boxes_classes_and_masks_the_weights_imply(model_path, engine):
    det = build_detector(
        DetectorConfig(type="yolo_seg_onnx", weights=str(model_path), engine=engine, threads=1)
    )
    assert isinstance(det, YoloSegDetector)
    assert det.labels == ["__background__", "red", "green"]  # from the graph's metadata
    img, (red, green) = scene([(RED_BOX, (0, 0, 255)), (GREEN_BOX, (0, 255, 0))])
    (d,) = det.detect_frames([Frame("s", 0, 0.0, img)])
    assert len(d) == 2
    order = np.argsort(d.class_ids)
    assert d.class_ids[order].tolist() == [1, 2]
    np.testing.assert_allclose(d.xyxy[order], [RED_BOX, GREEN_BOX], atol=1e-3)
    assert (d.scores > 0.999).all()
    for got, want in zip(d.full_masks()[order], (red, green)):
        # the square, less what bilinear upsampling of a 2x2-cell prototype rounds off
        # at its four corners (as Ultralytics' own decoding does); nothing outside it
        assert not (got & ~want).any()
        assert (got & want).sum() / want.sum() >= 0.9
    assert d.image_size == (48, 96) and all(m.prob.dtype == np.float32 for m in d.masks)
    # Re-ID comes from the colour histogram inside each mask (no RoI features here)
    assert d.embeddings.shape == (2, HistogramEmbedder().dim)
    np.testing.assert_array_equal(d.embeddings, HistogramEmbedder().embed(img, d))
    assert float(d.embeddings[0] @ d.embeddings[1]) < 0.9


@pytest.mark.parametrize("engine", ["onnxruntime", "openvino"])
def test_a_dynamic_batch_graph_takes_all_frames_in_one_call(tmp_path, engine):
    path = tiny_yolo_seg.export(tmp_path / "batched.onnx", dynamic_batch=True)
    det = YoloSegDetector(session=open_session(path, engine=engine))
    assert det.batched
    calls = []
    run = det.session.run
    det.session.run = lambda feeds: calls.append(len(feeds["images"])) or run(feeds)
    images = [
        scene([(RED_BOX, (0, 0, 255))])[0],
        scene([(GREEN_BOX, (0, 255, 0))])[0],
        np.full((48, 96, 3), GREY, np.uint8),
    ]
    got = det.detect_frames([Frame("s", i, 0.0, im) for i, im in enumerate(images)])
    assert calls == [3]
    for im, d in zip(images, got):
        want = det.detect(im)
        np.testing.assert_allclose(d.xyxy, want.xyxy, atol=1e-4)
        np.testing.assert_array_equal(d.class_ids, want.class_ids)
        np.testing.assert_array_equal(d.full_masks(), want.full_masks())
    assert [len(d) for d in got] == [1, 1, 0]


def test_grey_frame_and_partly_covered_cells_give_nothing(model_path):
    det = YoloSegDetector(session=open_session(model_path))
    img, _ = scene([((30, 12, 42, 24), (0, 0, 255))])  # half of each of two cells
    assert len(det.detect(np.full((48, 96, 3), GREY, np.uint8))) == 0
    assert len(det.detect(img)) == 0


def test_labels_from_config_and_class_filter(model_path):
    img, _ = scene([(RED_BOX, (0, 0, 255)), (GREEN_BOX, (0, 255, 0))])
    det = YoloSegDetector(session=open_session(model_path), labels=["a", "b"], classes=["b"])
    d = det.detect(img)
    assert det.labels == ["__background__", "a", "b"]
    assert d.class_ids.tolist() == [2]
    with pytest.raises(YoloSegError, match="has 3 names but the model has 2"):
        YoloSegDetector(session=open_session(model_path), labels=["a", "b", "c"]).detect(img)


def test_without_names_metadata_classes_are_numbered(tmp_path):
    path = tiny_yolo_seg.export(tmp_path / "plain.onnx", names=None)
    det = YoloSegDetector(session=open_session(path))
    det.detect(np.full((64, 64, 3), GREY, np.uint8))
    assert det.labels == ["__background__", "class_0", "class_1"]


@pytest.mark.parametrize("shape", [(48, 96), (96, 48), (64, 64), (37, 150), (720, 1280)])
def test_letterbox_round_trip(shape):
    h, w = shape
    img = np.random.default_rng(0).integers(0, 255, (h, w, 3), dtype=np.uint8)
    boxed, lb = letterbox(img, (64, 64))
    assert boxed.shape == (64, 64, 3)
    # the image is centred; the rest is grey 114
    assert lb.width == 64 or lb.height == 64
    pad = np.ones((64, 64), bool)
    pad[lb.top : lb.top + lb.height, lb.left : lb.left + lb.width] = False
    assert (boxed[pad] == 114).all()
    assert (
        abs(lb.left - (64 - lb.width - lb.left)) <= 1
        and abs(lb.top - (64 - lb.height - lb.top)) <= 1
    )
    boxes = np.array([[0, 0, w, h], [w * 0.25, h * 0.5, w * 0.5, h * 0.75]], np.float32)
    in_input = boxes * lb.scale + np.array([lb.left, lb.top, lb.left, lb.top])
    np.testing.assert_allclose(lb.to_image(in_input, (h, w)), boxes, atol=1e-3)


@pytest.mark.parametrize(
    ("boxes", "scores", "classes", "kept"),
    [
        (np.zeros((0, 4)), np.zeros(0), None, []),
        ([[0, 0, 10, 10], [1, 1, 11, 11], [20, 20, 30, 30]], [0.9, 0.8, 0.7], None, [0, 2]),
        ([[0, 0, 10, 10], [1, 1, 11, 11]], [0.6, 0.8], None, [1]),  # highest score wins
        ([[0, 0, 10, 10], [1, 1, 11, 11]], [0.9, 0.8], [0, 1], [0, 1]),  # other class survives
        ([[0, 0, 10, 10], [5, 0, 15, 10]], [0.9, 0.8], None, [0, 1]),  # IoU 1/3 <= 0.5
    ],
)
def test_nms(boxes, scores, classes, kept):
    assert nms(np.asarray(boxes), np.asarray(scores), 0.5, classes).tolist() == kept


def test_bad_inputs_are_one_line_errors(tmp_path, model_path):
    with pytest.raises(ConfigError, match="detector.weights.*an .onnx file"):
        DetectorConfig(type="yolo_seg_onnx", weights="demo", engine="onnxruntime")
    with pytest.raises(ConfigError, match="detector.engine.*onnxruntime or openvino"):
        DetectorConfig(type="yolo_seg_onnx", weights=str(model_path), engine="torch")
    with pytest.raises(EngineError, match="not found"):
        open_session(tmp_path / "missing.onnx")
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not a graph")
    with pytest.raises(EngineError, match="cannot load"):
        open_session(bad)


def test_pipeline_runs_the_yolo_model(model_path, tmp_path, capsys):
    """The whole CLI with ``detector.type: yolo_seg_onnx`` on a square jumping one grid cell
    per frame: one red detection per frame, where the square is, with a track id."""
    import json

    import cv2

    from vis.schema import decode_record
    from vis_pipeline.cli import main

    frames = tmp_path / "frames"
    frames.mkdir()
    for i, x in enumerate(range(0, 84, 12)):  # 12 px steps stay on the model's 8 px grid
        img, _ = scene([((x, 12, x + 12, 24), (0, 0, 255))])
        cv2.imwrite(str(frames / f"{i}.png"), img)
    args = ["--config", "configs/demo.yaml", "--source", str(frames), "--stream-id", "s"]
    args += ["--output", str(tmp_path / "out"), "--no-progress"]
    for setting in (
        "detector.type=yolo_seg_onnx",
        f"detector.weights={model_path}",
        "detector.engine=onnxruntime",
        "keyframes.interval=1",
        "sinks.overlay=false",
    ):
        args += ["--set", setting]
    assert main(args) == 0, capsys.readouterr().err
    lines = (tmp_path / "out" / "s.jsonl").read_text().splitlines()
    records = [decode_record(json.loads(line)) for line in lines]
    assert len(records) == 7
    assert all(len(r.detections) == 1 for r in records)
    assert all(int(r.detections.track_ids[0]) >= 0 for r in records)
    assert all(int(r.detections.class_ids[0]) == 1 for r in records)  # red
    xs = [float(r.detections.xyxy[0, 0]) for r in records]
    np.testing.assert_allclose(xs, list(range(0, 84, 12)), atol=1.0)


def test_cli_names_a_missing_onnx_file_and_exits_2(tmp_path, capsys):
    from vis_pipeline.cli import main

    missing = tmp_path / "none.onnx"
    args = ["--config", "configs/demo.yaml", "--output", str(tmp_path), "--no-progress"]
    for setting in ("detector.type=yolo_seg_onnx", f"detector.weights={missing}"):
        args += ["--set", setting]
    args += ["--set", "detector.engine=onnxruntime"]
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert str(missing) in err and "not found" in err and len(err.splitlines()) == 1
