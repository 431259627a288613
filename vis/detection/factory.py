"""Detector configuration and construction.

Contract: ``build_detector(DetectorConfig(...))`` returns a ``Detector`` (``labels``,
``detect_frames(frames) -> list[Detections]``, ``close()``; see ``base.py``), or raises
``WeightsError`` / ``PrecomputedError`` with a one-line message naming the file and the fix.
"""

from __future__ import annotations

from vis.config import require
from vis.detection.base import Detector
from vis.detection.config import LIMITS, DetectorConfig
from vis.detection.precision import float_part

__all__ = ["LIMITS", "DetectorConfig", "build_detector"]


def build_detector(cfg: DetectorConfig) -> Detector:
    """Construct the detector ``cfg`` describes, with its opt-in levers around the model:
    Soft-NMS (``soft_nms.py``), then tiles (``tiles.py``), then test-time augmentation
    (``tta.py``) wrap the model's detector; each works on any engine's output."""
    detector = _build_model_detector(cfg)
    if cfg.nms == "soft":  # the model's own NMS runs loose (see _build_model_detector)
        from vis.detection.soft_nms import SoftNMSDetector

        floor = cfg.score_threshold if cfg.soft_nms_min_score is None else cfg.soft_nms_min_score
        detector = SoftNMSDetector(
            detector,
            sigma=cfg.soft_nms_sigma,
            min_score=floor,
            max_detections=cfg.max_detections,
        )
    if cfg.tiles is not None:
        from vis.detection.tiles import TiledDetector

        detector = TiledDetector(
            detector,
            size=cfg.tiles.size,
            overlap=cfg.tiles.overlap,
            max_detections=cfg.max_detections,
        )
    if cfg.tta is not None:
        from vis.detection.tta import TTADetector, passes_of

        detector = TTADetector(
            detector,
            passes=passes_of(cfg.tta.flip, cfg.tta.scales),
            score_threshold=cfg.score_threshold,
            max_detections=cfg.max_detections,
        )
    return detector


def _build_model_detector(cfg: DetectorConfig) -> Detector:
    """The detector of the configured model (or file), without the opt-in levers."""
    import torch

    from vis.detection.detector import BoxHeadEmbedder, HistogramEmbedder, build_torch_maskrcnn
    from vis.detection.precomputed import PrecomputedDetector

    torch.set_num_threads(cfg.threads)
    if cfg.type == "yolo_seg_onnx":
        return _build_yolo_seg(cfg)
    if cfg.type == "maskrcnn" and cfg.engine != "torch":
        from vis.detection.onnx_maskrcnn import build_onnx_maskrcnn

        return build_onnx_maskrcnn(cfg)
    model = None
    if cfg.type == "maskrcnn" or cfg.embedder == "box_head":
        model = build_torch_maskrcnn(cfg, device=cfg.device, precision=float_part(cfg.precision))
    if cfg.type == "maskrcnn":
        return model
    embedder = BoxHeadEmbedder(model) if cfg.embedder == "box_head" else HistogramEmbedder()
    labels = (
        model.labels
        if model is not None
        else (["__background__", *cfg.labels] if cfg.labels else None)
    )
    return PrecomputedDetector(
        path=cfg.path,
        embedder=embedder,
        labels=labels,
        score_threshold=cfg.score_threshold,
        max_detections=cfg.max_detections,
    )


def _build_yolo_seg(cfg: DetectorConfig) -> Detector:
    from vis.detection.detector import HistogramEmbedder
    from vis.detection.engines import open_session
    from vis.detection.yolo_seg import YoloSegDetector

    require(
        cfg.precision != "int8",
        "detector.precision",
        cfg.precision,
        "int8 is for type maskrcnn: quantise the YOLO-seg export with its own tools",
    )
    return YoloSegDetector(
        session=open_session(
            cfg.weights, engine=cfg.engine, threads=cfg.threads, precision=float_part(cfg.precision)
        ),
        labels=cfg.labels,
        thresholds=_yolo_thresholds(cfg),
        classes=cfg.classes,
        embedder=HistogramEmbedder(),
    )


def _yolo_thresholds(cfg: DetectorConfig):
    """YOLO-seg's score, NMS IoU and detections per frame (``nms: soft``: its NMS loose)."""
    from vis.detection.soft_nms import LOOSE_NMS_IOU, candidates
    from vis.detection.yolo_seg import YoloSegThresholds

    if cfg.nms == "soft":
        return YoloSegThresholds(
            score=cfg.score_threshold,
            iou=LOOSE_NMS_IOU,
            max_detections=candidates(cfg.max_detections),
        )
    return YoloSegThresholds(
        score=cfg.score_threshold, iou=cfg.nms_iou, max_detections=cfg.max_detections
    )
