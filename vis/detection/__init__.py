"""Detectors: torchvision Mask R-CNN with box-head Re-ID embeddings, in eager torch or an ONNX
engine; Ultralytics YOLO-seg ONNX exports; precomputed detections. ``factory.build_detector``
makes the one a ``DetectorConfig`` describes."""
