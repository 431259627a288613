"""Mask R-CNN run by an ONNX engine (``detector.engine: onnxruntime | openvino``).

Contract: ``build_onnx_maskrcnn(cfg)`` loads the configured model with torch once, exports it
(``onnx_export.cached_export``; reused from the cache on later runs) and returns an
``OnnxMaskRCNNDetector``: the same ``Detections`` as ``MaskRCNNDetector`` (boxes, soft masks
resized into their boxes (box-local, never a full-frame array), scores, class ids, box-head
Re-ID embeddings, fused with the colour histogram when ``appearance`` is ``fused``),
computed by ONNX Runtime or OpenVINO. Frames of one size
go through the engine together, up to ``batch_size`` per call (one graph per batch size).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from vis.detection.base import Detector
from vis.detection.engines import Session, open_session
from vis.detection.onnx_export import paste_masks, resized_size
from vis.detection.precision import float_part
from vis.ops.masks import at_threshold
from vis.types import Detections, Frame


class OnnxMaskRCNNDetector(Detector):
    """Args:
    sessions: ``batch -> Session`` for the exported graph of that batch size (called
        lazily; the result is kept).
    labels: label per class index (index 0 = background).
    sizes: the model's (min_size, max_size) resize bounds.
    batch_size: most frames per engine call.
    allowed: class ids to keep (None = all).
    mask_threshold: soft-mask threshold for the binary masks.
    histogram: colour-histogram embedder fused with the box-head embedding, or None.
    """

    def __init__(
        self,
        *,
        sessions: Callable[[int], Session],
        labels: Sequence[str],
        sizes: tuple[int, int],
        batch_size: int = 1,
        allowed: set[int] | None = None,
        mask_threshold: float = 0.5,
        histogram=None,
    ) -> None:
        self._open = sessions
        self._sessions: dict[int, Session] = {}
        self.labels = list(labels)
        self.min_size, self.max_size = sizes
        self.batch_size = batch_size
        self.allowed = allowed
        self.mask_threshold = mask_threshold
        self._histogram = histogram

    def set_input_scale(self, scale: float) -> None:
        """Run the network at ``scale`` times its resize bounds (``min_size``, ``max_size``)
        until told otherwise (1 = the model's own); for test-time augmentation."""
        if not hasattr(self, "_sizes"):
            self._sizes = (self.min_size, self.max_size)
        self.min_size = int(round(self._sizes[0] * scale))
        self.max_size = int(round(self._sizes[1] * scale))

    def session(self, batch: int) -> Session:
        if batch not in self._sessions:
            self._sessions[batch] = self._open(batch)
        return self._sessions[batch]

    def detect_frames(self, frames: Sequence[Frame]) -> list[Detections]:
        return self.detect([f.image for f in frames])

    def detect(self, images: Sequence[np.ndarray]) -> list[Detections]:
        """One ``Detections`` per (H, W, 3) uint8 BGR image, in order."""
        out: list[Detections | None] = [None] * len(images)
        by_shape: dict[tuple[int, ...], list[int]] = {}
        for i, im in enumerate(images):
            if im.ndim != 3 or im.shape[2] != 3 or im.dtype != np.uint8:
                raise ValueError(f"image must be (H, W, 3) uint8 BGR, got {im.shape} {im.dtype}")
            by_shape.setdefault(im.shape, []).append(i)
        for idx in by_shape.values():
            for start in range(0, len(idx), self.batch_size):
                chunk = idx[start : start + self.batch_size]
                for i, det in zip(chunk, self._run([images[i] for i in chunk])):
                    out[i] = det
        return out  # type: ignore[return-value]

    def _run(self, images: list[np.ndarray]) -> list[Detections]:
        x = np.stack([im[:, :, ::-1].transpose(2, 0, 1) for im in images]).astype(np.float32)
        x /= 255.0
        h, w = images[0].shape[:2]
        rh, rw = resized_size((h, w), self.min_size, self.max_size)
        feeds = {"images": x, "resized": np.zeros((0, rh, rw), np.uint8)}
        boxes, scores, labels, masks, emb, index = self.session(len(images)).run(feeds)
        dets = []
        for i, img in enumerate(images):
            # label 0 (background) is no detection: OpenVINO returns one such row, with a
            # stale score, where the graph's outputs are empty
            keep = (index == i) & (labels > 0)
            if self.allowed is not None:
                keep &= np.isin(labels, list(self.allowed))
            pasted = paste_masks(masks[keep, 0], boxes[keep], (h, w))
            det = Detections(
                xyxy=boxes[keep],
                masks=at_threshold(pasted, self.mask_threshold),
                scores=scores[keep],
                class_ids=labels[keep],
                embeddings=emb[keep],
                image_size=(h, w),
            )
            if self._histogram is not None:
                from vis.detection.detector import fuse

                det.embeddings = fuse(det.embeddings, self._histogram.embed(img, det))
            dets.append(det)
        return dets


def build_onnx_maskrcnn(cfg) -> OnnxMaskRCNNDetector:
    """``cfg`` (a ``DetectorConfig`` with ``engine`` onnxruntime or openvino) -> detector.

    The model is built and loaded with torch exactly as for ``engine: torch`` (same
    thresholds, sizes and proposal counts), then exported per batch size on first use.
    """
    from vis.detection.detector import build_torch_maskrcnn
    from vis.detection.models import SHIPPED_CHECKPOINTS, coco_weights_file
    from vis.detection.onnx_export import cached_export

    torch_det = build_torch_maskrcnn(cfg)  # f32: the export traces float32 graphs
    if cfg.weights in ("coco", "coco_v2"):
        arch = "resnet50_fpn_v2" if cfg.weights == "coco_v2" else cfg.arch
        weights_file = coco_weights_file(arch)
    else:
        weights_file = SHIPPED_CHECKPOINTS.get(cfg.weights) or Path(cfg.weights).expanduser()

    def open_batch(batch: int) -> Session:
        path = cached_export(torch_det.model, weights_file=weights_file, batch=batch)
        if cfg.precision == "int8":
            from vis.detection.quantize import quantized

            sizes = (torch_det.min_size, int(torch_det.model.transform.max_size))
            path = quantized(path, calibration=cfg.calibration_images, sizes=sizes, batch=batch)
        return open_session(
            path,
            engine=cfg.engine,
            threads=cfg.threads,
            precision=float_part(cfg.precision),
        )

    detector = OnnxMaskRCNNDetector(
        sessions=open_batch,
        labels=torch_det.labels,
        sizes=(torch_det.min_size, int(torch_det.model.transform.max_size)),
        batch_size=cfg.batch_size,
        allowed=torch_det.allowed,
        mask_threshold=torch_det.mask_threshold,
        histogram=torch_det._histogram,
    )
    # export / load now, not at the first keyframe of a live stream
    for batch in sorted({1, cfg.batch_size}):
        detector.session(batch)
    detector.engine = cfg.engine
    ran = detector.session(1).precision  # as the engine reports it
    detector.precision = f"int8+{ran}" if cfg.precision == "int8" else ran
    return detector
