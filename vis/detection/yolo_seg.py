"""Single-stage instance segmentation from an ONNX export with the Ultralytics YOLO-seg layout.

Contract: ``YoloSegDetector(session=..., ...)`` takes a loaded ``Session`` (see
``engines.py``) of a graph with one input ``[1, 3, S_h, S_w]`` (RGB in [0, 1]) and two
outputs: ``[1, 4 + C + 32, A]`` (per anchor: box centre x, y, width, height in input pixels,
C class scores, 32 mask coefficients) and ``[1, 32, S_h / 4, S_w / 4]`` (mask prototypes).
``detect_frames`` letterboxes each frame to the input size (grey 114 padding), keeps anchors
whose best class score passes ``score_threshold``, runs per-class NMS, and decodes each kept
instance's mask (coefficients x prototypes, sigmoid) to a full-frame mask cropped to its box.
Re-ID embeddings come from a ``HistogramEmbedder`` (the graph has no RoI features).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import cv2
import numpy as np

from vis.detection.base import Detector
from vis.detection.engines import Session, class_names
from vis.detection.models import WeightsError
from vis.ops.boxes import nms
from vis.ops.masks import BoxMask, at_threshold
from vis.types import Detections, Frame

PAD_VALUE = 114
MASK_DIM = 32


class YoloSegError(WeightsError):
    """The ONNX graph does not have the YOLO-seg layout, or its labels do not fit."""


@dataclasses.dataclass(frozen=True)
class Letterbox:
    """How an (h, w) image maps into the model input: ``input = image * scale + (left, top)``."""

    scale: float
    left: int
    top: int
    width: int  # resized image width inside the input (unpadded)
    height: int
    input_size: tuple[int, int]  # (h, w) of the model input

    def to_image(self, xyxy: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
        """(N, 4) input-pixel boxes -> image pixels, clipped to ``shape`` (h, w)."""
        out = (xyxy - np.array([self.left, self.top, self.left, self.top])) / self.scale
        out[:, 0::2] = out[:, 0::2].clip(0, shape[1])
        out[:, 1::2] = out[:, 1::2].clip(0, shape[0])
        return out.astype(np.float32)


def letterbox(image: np.ndarray, size: tuple[int, int]) -> tuple[np.ndarray, Letterbox]:
    """Resize ``image`` (H, W, 3) to fit ``size`` (h, w) keeping its aspect ratio and pad the
    rest with grey, the way Ultralytics does (padding split between both sides)."""
    h, w = image.shape[:2]
    scale = min(size[0] / h, size[1] / w)
    nw, nh = round(w * scale), round(h * scale)
    dw, dh = (size[1] - nw) / 2, (size[0] - nh) / 2
    top, left = round(dh - 0.1), round(dw - 0.1)
    resized = image
    if (nh, nw) != (h, w):
        resized = cv2.resize(image, (nw, nh), interpolation=cv2.INTER_LINEAR)
    out = np.full((size[0], size[1], 3), PAD_VALUE, np.uint8)
    out[top : top + nh, left : left + nw] = resized
    return out, Letterbox(
        scale=scale, left=left, top=top, width=nw, height=nh, input_size=(size[0], size[1])
    )


@dataclasses.dataclass(frozen=True)
class YoloSegThresholds:
    """score: minimum class score; iou: per-class NMS IoU; max_detections: kept per frame
    (highest scores); mask: soft-mask threshold of the binary masks."""

    score: float = 0.25
    iou: float = 0.7
    max_detections: int = 50
    mask: float = 0.5


class YoloSegDetector(Detector):
    """Ultralytics-layout YOLO segmentation model run by an ONNX engine.

    Args:
        session: the loaded graph (``engines.open_session``).
        labels: class names (first class first); None = the graph's ``names`` metadata,
            else ``class_<k>``.
        thresholds: score, NMS IoU, detections per frame, mask threshold.
        classes: allow-list of class names or 1-based class ids (None = all).
        embedder: appearance embedder (``HistogramEmbedder``-like: ``dim``, ``embed``).
    """

    def __init__(
        self,
        *,
        session: Session,
        labels: Sequence[str] | None = None,
        thresholds: YoloSegThresholds = YoloSegThresholds(),
        classes: Sequence[str | int] | None = None,
        embedder=None,
    ) -> None:
        self.session = session
        self.engine = session.engine
        self.precision = session.precision
        if len(session.input_names) != 1 or len(session.output_names) != 2:
            raise YoloSegError(
                f"a YOLO-seg graph has 1 input and 2 outputs, this one has "
                f"{len(session.input_names)} and {len(session.output_names)}: export the "
                "model with Ultralytics' segmentation head"
            )
        shape = session.input_shapes[0]
        if len(shape) != 4 or shape[2] is None or shape[3] is None:
            raise YoloSegError(f"the graph input must be [1, 3, H, W] with a fixed size: {shape}")
        self.input_size = (int(shape[2]), int(shape[3]))
        # a graph exported with a dynamic batch axis takes all pending keyframes in one call
        self.batched = shape[0] is None
        names = list(labels) if labels else class_names(session.metadata)
        self._names = names
        self.labels = ["__background__", *names] if names else []
        self.score_threshold = thresholds.score
        self.iou_threshold = thresholds.iou
        self.max_detections = thresholds.max_detections
        self.mask_threshold = thresholds.mask
        self.embedder = embedder
        self._classes = list(classes) if classes else None
        self._allowed: np.ndarray | None = None
        # one grey frame now: a wrong output layout or label count fails at start, not later
        self.detect(np.full((*self.input_size, 3), PAD_VALUE, np.uint8))

    def detect_frames(self, frames: Sequence[Frame]) -> list[Detections]:
        if not self.batched or len(frames) < 2:
            return [self.detect(f.image) for f in frames]
        boxed = [letterbox(f.image, self.input_size) for f in frames]
        x = np.stack([b[:, :, ::-1].transpose(2, 0, 1) for b, _ in boxed]).astype(np.float32)
        preds, protos = self.session.run({self.session.input_names[0]: x / 255.0})
        return [
            self.decode(preds[i : i + 1], protos[i : i + 1], lb, f.image)
            for i, ((_, lb), f) in enumerate(zip(boxed, frames))
        ]

    def detect(self, image: np.ndarray) -> Detections:
        """Detections in one (H, W, 3) uint8 BGR image."""
        boxed, lb = letterbox(image, self.input_size)
        x = boxed[:, :, ::-1].transpose(2, 0, 1)[None].astype(np.float32) / 255.0
        preds, protos = self.session.run({self.session.input_names[0]: x})
        return self.decode(preds, protos, lb, image)

    def decode(
        self, preds: np.ndarray, protos: np.ndarray, lb: Letterbox, image: np.ndarray
    ) -> Detections:
        """The raw outputs of one image -> ``Detections`` in ``image``'s pixels."""
        preds, protos = preds[0], protos[0]
        n_classes = preds.shape[0] - 4 - MASK_DIM
        if n_classes < 1 or protos.shape[0] != MASK_DIM:
            raise YoloSegError(
                f"outputs {list(preds.shape)} / {list(protos.shape)} are not the YOLO-seg "
                f"layout [4 + classes + {MASK_DIM}, anchors] / [{MASK_DIM}, H/4, W/4]"
            )
        self._check_labels(n_classes)
        h, w = image.shape[:2]
        cls_scores = preds[4 : 4 + n_classes]
        class_idx = cls_scores.argmax(axis=0)
        score = cls_scores[class_idx, np.arange(preds.shape[1])]
        cand = np.flatnonzero(score > self.score_threshold)
        cxcywh = preds[:4, cand].T
        boxes = np.concatenate(
            [cxcywh[:, :2] - cxcywh[:, 2:] / 2, cxcywh[:, :2] + cxcywh[:, 2:] / 2], 1
        )
        if self._allowed is not None:
            ok = np.isin(class_idx[cand] + 1, self._allowed)
            cand, boxes = cand[ok], boxes[ok]
        keep = nms(boxes, score[cand], self.iou_threshold, class_idx[cand])[: self.max_detections]
        cand, boxes = cand[keep], boxes[keep]
        masks = self._masks(
            preds[4 + n_classes :, cand].T, protos, lb, lb.to_image(boxes, (h, w)), (h, w)
        )
        det = Detections(
            xyxy=lb.to_image(boxes, (h, w)),
            masks=at_threshold(masks, self.mask_threshold),
            scores=score[cand],
            class_ids=class_idx[cand] + 1,
            image_size=(h, w),
        )
        if self.embedder is not None:
            det.embeddings = self.embedder.embed(image, det)
        return det

    def _check_labels(self, n_classes: int) -> None:
        if not self._names:
            self._names = [f"class_{k}" for k in range(n_classes)]
            self.labels = ["__background__", *self._names]
        if len(self._names) != n_classes:
            raise YoloSegError(
                f"detector.labels has {len(self._names)} names but the model has {n_classes} "
                "classes: give one name per class"
            )
        if self._classes is not None and self._allowed is None:
            ids = []
            for c in self._classes:
                if isinstance(c, int) and 1 <= c <= n_classes:
                    ids.append(c)
                elif isinstance(c, str) and c in self._names:
                    ids.append(self._names.index(c) + 1)
                else:
                    raise YoloSegError(
                        f"detector.classes entry {c!r} is not a class of this model "
                        f"(labels: {', '.join(self._names[:5])}, ...)"
                    )
            self._allowed = np.asarray(ids, np.int64)

    @staticmethod
    def _masks(
        coeffs: np.ndarray,
        protos: np.ndarray,
        lb: Letterbox,
        boxes: np.ndarray,
        shape: tuple[int, int],
    ) -> list[BoxMask]:
        """(N, 32) coefficients x (32, mh, mw) prototypes -> N soft masks in image pixels,
        each inside its instance's box (image pixels, ``boxes``)."""
        n = len(coeffs)
        out = [BoxMask.empty(shape)] * n
        if n == 0:
            return out
        _, mh, mw = protos.shape
        logits = (coeffs @ protos.reshape(MASK_DIM, -1)).reshape(n, mh, mw).astype(np.float32)
        # image pixel centre (x + 0.5) -> input pixel (x + 0.5) * scale + left -> prototype
        # cell (that / stride - 0.5); sampled bilinearly inside the box only
        sy, sx = lb.input_size[0] / mh, lb.input_size[1] / mw  # prototype strides
        ay, ax = lb.scale / sy, lb.scale / sx
        for i in range(n):
            x1, y1, x2, y2 = boxes[i]
            xa, ya = max(int(np.floor(x1)), 0), max(int(np.floor(y1)), 0)
            xb, yb = min(int(np.ceil(x2)), shape[1]), min(int(np.ceil(y2)), shape[0])
            if xb <= xa or yb <= ya:
                continue
            m = np.array(
                [
                    [ax, 0, (xa + 0.5) * ax + lb.left / sx - 0.5],
                    [0, ay, (ya + 0.5) * ay + lb.top / sy - 0.5],
                ],
                np.float64,
            )
            region = cv2.warpAffine(
                logits[i],
                m,
                (xb - xa, yb - ya),
                flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                borderMode=cv2.BORDER_REPLICATE,
            )
            prob = 1.0 / (1.0 + np.exp(-np.clip(region, -50, 50)))
            out[i] = BoxMask.from_window(prob, xa, ya, shape)
        return out
