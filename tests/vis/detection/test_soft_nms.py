"""``detector.nms: soft``: Gaussian Soft-NMS keeps a person half hidden behind another, which
the model's hard NMS deletes; its configuration errors are one line and exit 2."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from torchvision.ops import batched_nms

from vis.detection.base import Detector
from vis.detection.soft_nms import SoftNMSDetector, candidates, soft_nms
from vis.ops.boxes import box_iou, mask_to_box
from vis.ops.masks import pair_iou
from vis.types import Detections, Frame
from vis_pipeline.cli import main

PENNFUDAN = Path(__file__).resolve().parents[3].parent / "shared" / "data" / "PennFudanPed"
#: torchvision Mask R-CNN's box NMS IoU (``box_nms_thresh``), the shipped models' hard NMS
MODEL_NMS_IOU = 0.5


class Scripted(Detector):
    """The candidates a model with loose NMS returns for one frame, given."""

    def __init__(self, dets: Detections) -> None:
        self.dets = dets
        self.labels = ["__background__", "person"]

    def detect_frames(self, frames):
        return [self.dets for _ in frames]


def person_mask(name: str, k: int) -> np.ndarray:
    masks = cv2.imread(str(PENNFUDAN / "PedMasks" / f"{name}_mask.png"), cv2.IMREAD_GRAYSCALE)
    if masks is None:
        pytest.skip(f"Penn-Fudan is absent: {PENNFUDAN}")
    return masks == k


@pytest.fixture(scope="module")
def occluded_pair() -> tuple[Detections, np.ndarray, np.ndarray]:
    """Two real Penn-Fudan pedestrians, the second standing behind the first and shifted a
    third of its width to the left: the front one's mask, the visible part of the one behind,
    and the candidates (front 0.98, behind 0.9) the model gives before its NMS."""
    front = person_mask("FudanPed00001", 1)
    other = person_mask("FudanPed00002", 1)
    x0, y0, x1, y1 = (int(v) for v in mask_to_box(other))
    fx0, fy0, fx1, fy1 = (int(v) for v in mask_to_box(front))
    crop = cv2.resize(
        other[y0:y1, x0:x1].astype(np.uint8), (fx1 - fx0, fy1 - fy0), cv2.INTER_NEAREST
    )
    behind = np.zeros_like(front)
    shift = (fx1 - fx0) // 3
    behind[fy0:fy1, fx0 - shift : fx1 - shift] = crop > 0
    visible = behind & ~front
    dets = Detections(
        xyxy=np.stack([mask_to_box(front), mask_to_box(visible)]),
        masks=np.stack([front, visible]),
        scores=np.array([0.98, 0.9], np.float32),
        class_ids=np.array([1, 1]),
    )
    return dets, front, visible


def test_soft_nms_keeps_the_occluded_second_person_that_hard_nms_removes(occluded_pair):
    dets, front, visible = occluded_pair
    iou = float(box_iou(dets.xyxy[:1], dets.xyxy[1:])[0, 0])
    assert iou > MODEL_NMS_IOU  # the boxes overlap as a queue's do
    hard = batched_nms(
        torch.from_numpy(dets.xyxy), torch.from_numpy(dets.scores), torch.ones(2), MODEL_NMS_IOU
    )
    assert hard.tolist() == [0]  # the model's own NMS deletes the one behind

    frame = Frame("s", 0, 0.0, np.zeros((*front.shape, 3), np.uint8))
    (out,) = SoftNMSDetector(
        Scripted(dets), sigma=0.5, min_score=0.1, max_detections=50
    ).detect_frames([frame])
    assert len(out) == 2
    assert pair_iou(out.masks[0], dets.masks[0]) == 1.0
    assert pair_iou(out.masks[1], dets.masks[1]) == 1.0  # its own mask, untouched
    assert out.scores[0] == pytest.approx(0.98)
    assert out.scores[1] == pytest.approx(0.9 * np.exp(-(iou**2) / 0.5), rel=1e-5)
    assert out.scores[1] < out.scores[0]


def test_soft_nms_decays_by_the_gaussian_and_never_across_classes():
    boxes = np.array([[0, 0, 10, 10], [1, 0, 11, 10], [0, 0, 10, 10], [50, 50, 60, 60]], float)
    scores = np.array([0.9, 0.8, 0.7, 0.6])
    keep, decayed = soft_nms(boxes, scores, np.array([1, 1, 2, 1]), sigma=0.5, min_score=0.0)
    iou = box_iou(boxes[:1], boxes[1:2])[0, 0]
    assert keep.tolist() == [0, 2, 3, 1]  # the other class and the far box are not decayed
    np.testing.assert_allclose(decayed, [0.9, 0.7, 0.6, 0.8 * np.exp(-(iou**2) / 0.5)], 1e-6)
    keep, _ = soft_nms(boxes, scores, np.array([1, 1, 2, 1]), sigma=0.5, min_score=0.5)
    assert keep.tolist() == [0, 2, 3]  # the decayed one falls below the floor


def test_the_models_nms_runs_loose_and_keeps_more_candidates():
    assert candidates(50) == 200 and candidates(400) == 1000 and candidates(1000) == 1000


@pytest.mark.parametrize(
    "setting, needle",
    [
        ("detector.nms=fuzzy", "detector.nms='fuzzy'"),
        ("detector.soft_nms_sigma=0", "detector.soft_nms_sigma=0.0"),
        ("detector.soft_nms_min_score=2", "detector.soft_nms_min_score=2.0"),
        ("detector.tta={flip: false}", "detector.tta="),
        ("detector.tta={scales: [1, 9]}", "detector.tta.scales=[1.0, 9.0]"),
        ("detector.tta={scales: [1, 1]}", "must not repeat"),
        ("detector.tta={flip: 2}", "detector.tta.flip=2"),
        ("detector.tta={mirror: true}", "unknown key detector.tta.mirror"),
        ("detector.tiles={size: 8}", "detector.tiles.size=8"),
        ("detector.tiles={overlap: 1.5}", "detector.tiles.overlap=1.5"),
        ("detector.tiles=3", "detector.tiles=3"),
    ],
)
def test_lever_config_errors_are_one_line_and_exit_2(setting, needle, capsys):
    code = main(["--config", "configs/demo.yaml", "--set", setting, "--no-progress"])
    _, err = capsys.readouterr()
    assert code == 2
    assert needle in err and len(err.strip().splitlines()) == 1, err


def test_levers_refused_for_precomputed_detections(capsys):
    code = main(
        [
            "--config",
            "configs/demo.yaml",
            "--set",
            "detector.type=precomputed",
            "--set",
            "detector.path=dets.jsonl",
            "--set",
            "detector.nms=soft",
            "--no-progress",
        ]
    )
    _, err = capsys.readouterr()
    assert code == 2 and "detector.nms='soft' runs a model" in err
    assert len(err.strip().splitlines()) == 1


def test_the_levers_off_leave_an_output_folders_digest_as_it_was():
    from vis_pipeline import load_config
    from vis_pipeline.resume import config_digest

    def digest(*settings: str) -> str:
        cfg = load_config(Path("configs/street.yaml"), list(settings), sources=["clip.mp4"])
        return config_digest(cfg)

    plain = digest()
    assert digest("detector.nms=hard", "detector.tta=null", "detector.tiles=null") == plain
    assert digest("detector.nms=soft") != plain
    assert digest("detector.tta={flip: true}") != plain
