"""Mask R-CNN detector that also returns Re-ID embeddings from the model's own box head.

Contract: ``MaskRCNNDetector.detect(images)`` takes a batch of (H, W, 3) uint8 BGR images and
returns one ``Detections`` per image with boxes, binary and soft masks, scores, class ids and
L2-normalised embeddings: each final detection's RoI-aligned features passed through the
box head (``TwoMLPHead``: 1024-d for the COCO models). Torch stays inside this module.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol

import numpy as np
import torch
import torch.nn.functional as F
from torchvision.models.detection import MaskRCNN

from vis.detection.base import Detector
from vis.detection.models import WeightsError, load_model, set_rpn_top_n
from vis.detection.onnx_export import paste_masks
from vis.detection.precision import autocast_dtype, pin_torch_f32, torch_autocast
from vis.ops.masks import at_threshold
from vis.types import Detections, Frame

if TYPE_CHECKING:
    from vis.detection.config import DetectorConfig

log = logging.getLogger(__name__)


class Embedder(Protocol):
    """Appearance embeddings for given instances: (N, D) float32, L2-normalised rows.
    ``precision``: what its network runs at (``n/a`` without one)."""

    dim: int
    precision: str

    def embed(self, image: np.ndarray, dets: Detections) -> np.ndarray: ...


def _to_tensor(img: np.ndarray, device: torch.device) -> torch.Tensor:
    if img.ndim != 3 or img.shape[2] != 3 or img.dtype != np.uint8:
        raise ValueError(f"image must be (H, W, 3) uint8 BGR, got {img.shape} {img.dtype}")
    rgb = np.ascontiguousarray(img[:, :, ::-1])
    return torch.from_numpy(rgb).to(device).permute(2, 0, 1).float().div_(255.0)


def resolve_device(device: str) -> torch.device:
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise WeightsError(
            f"detector.device={device!r} but no CUDA device is available: set detector.device: cpu"
        )
    return torch.device(device)


class MaskRCNNDetector(Detector):
    """torchvision Mask R-CNN wrapped for the pipeline.

    Args:
        model: an eval-mode torchvision ``MaskRCNN``.
        labels: label per class index (index 0 = background).
        score_threshold: minimum detection score.
        max_detections: detections kept per image (highest scores).
        classes: allow-list of labels or class indices (None = all).
        mask_threshold: soft-mask threshold for the binary masks.
        device: ``cpu`` or ``cuda[:k]``.
        precision: on either device ``f32`` (IEEE float32, pinned: no TF32/bf16 fast-math)
            or ``bf16`` (the network under torch's bf16 autocast; a speed lever with a cost,
            see docs/results.md); on cuda also ``f16`` (float16 autocast). The configuration
            decides, never the device (``precision.autocast_dtype``).
        appearance: ``box_head`` (the box-head representation only) or ``fused`` (box head
            concatenated with a colour histogram inside the mask, each half L2-normalised;
            no second network). Measured on the demo model: nearest-neighbour re-identification
            of objects 19 frames apart 0.50 with ``box_head``, 0.97 with ``fused``.
    """

    def __init__(
        self,
        *,
        model: MaskRCNN,
        labels: Sequence[str],
        score_threshold: float = 0.5,
        max_detections: int = 50,
        classes: Sequence[str | int] | None = None,
        mask_threshold: float = 0.5,
        device: str = "cpu",
        precision: str = "f32",
        appearance: str = "box_head",
    ) -> None:
        autocast_dtype(precision, torch.device(device).type)  # ValueError: not one to run here
        self.device = resolve_device(device)
        self.model = model.to(self.device).eval()
        self.labels = list(labels)
        self.score_threshold = score_threshold
        self.max_detections = max_detections
        self.mask_threshold = mask_threshold
        self.engine = "torch"
        self.precision = precision
        # bf16 / f16 come from autocast only, never from a float32 fast-math mode
        pin_torch_f32(self.device.type)
        self.model.roi_heads.score_thresh = score_threshold
        self.model.roi_heads.detections_per_img = max_detections
        self.allowed: set[int] | None = None
        if classes:
            self.allowed = set()
            for c in classes:
                if isinstance(c, int) and 0 < c < len(self.labels):
                    self.allowed.add(c)
                elif isinstance(c, str) and c in self.labels[1:]:
                    self.allowed.add(self.labels.index(c))
                else:
                    raise WeightsError(
                        f"detector.classes entry {c!r} is not a class of this "
                        f"model (labels: {', '.join(self.labels[1:6])}, ...)"
                    )
        if appearance not in ("box_head", "fused"):
            raise ValueError(f"appearance must be box_head or fused, not {appearance!r}")
        self.appearance = appearance
        self._histogram = HistogramEmbedder() if appearance == "fused" else None
        self.box_head_dim = int(self._box_head_dim())
        self.dim = self.box_head_dim + (self._histogram.dim if self._histogram else 0)

    @classmethod
    def from_weights(
        cls,
        *,
        weights: str,
        arch: str = "resnet50_fpn",
        num_classes: int | None = None,
        labels: Sequence[str] | None = None,
        min_size: int | None = None,
        max_size: int | None = None,
        **kwargs,
    ) -> MaskRCNNDetector:
        model, all_labels = load_model(
            weights=weights,
            arch=arch,
            num_classes=num_classes,
            labels=list(labels) if labels else None,
            min_size=min_size,
            max_size=max_size,
        )
        return cls(model=model, labels=all_labels, **kwargs)

    def _box_head_dim(self) -> int:
        head = self.model.roi_heads.box_head
        last = [m for m in head.modules() if isinstance(m, torch.nn.Linear)]
        return last[-1].out_features if last else 0

    @property
    def min_size(self) -> int:
        return int(self.model.transform.min_size[0])

    def set_input_scale(self, scale: float) -> None:
        """Run the network at ``scale`` times its resize bounds (``min_size``, ``max_size``)
        until told otherwise (1 = the model's own); for test-time augmentation."""
        t = self.model.transform
        if not hasattr(self, "_sizes"):
            self._sizes = (int(t.min_size[-1]), int(t.max_size))
        t.min_size = (int(round(self._sizes[0] * scale)),)
        t.max_size = int(round(self._sizes[1] * scale))

    # -- inference -------------------------------------------------------------
    def _features(self, images: Sequence[np.ndarray]):
        tensors = [_to_tensor(im, self.device) for im in images]
        batch, _ = self.model.transform(tensors)
        with self._autocast():
            feats = self.model.backbone(batch.tensors)
        return batch, feats

    def _autocast(self):
        """The context the network runs in: ``precision`` on this detector's device."""
        return torch_autocast(self.precision, self.device.type)

    def _embed_boxes(self, feats, boxes: list[torch.Tensor], image_sizes) -> list[torch.Tensor]:
        """RoI-align ``boxes`` (transformed-image coordinates) through the box head."""
        counts = [len(b) for b in boxes]
        if sum(counts) == 0:
            return [torch.zeros((0, self.box_head_dim)) for _ in boxes]
        rh = self.model.roi_heads
        with self._autocast():
            pooled = rh.box_roi_pool(feats, boxes, image_sizes)
            emb = F.normalize(rh.box_head(pooled).float(), dim=1)
        return list(emb.split(counts))

    @torch.inference_mode()
    def detect(self, images: Sequence[np.ndarray]) -> list[Detections]:
        """Detect in a batch of BGR images; one ``Detections`` per image."""
        if not images:
            return []
        orig_sizes = [im.shape[:2] for im in images]
        batch, feats = self._features(images)
        with self._autocast():
            proposals, _ = self.model.rpn(batch, feats)
            dets, _ = self.model.roi_heads(feats, proposals, batch.image_sizes)
        if self.allowed is not None:
            for d in dets:
                keep = torch.tensor([int(c) in self.allowed for c in d["labels"]], dtype=torch.bool)
                for k in list(d):
                    d[k] = d[k][keep]
        embs = self._embed_boxes(feats, [d["boxes"] for d in dets], batch.image_sizes)
        # the mask head's M x M maps are pasted into each box only, never into a full frame
        heads = [d.pop("masks")[:, 0].float().cpu().numpy() for d in dets]
        dets = self.model.transform.postprocess(dets, batch.image_sizes, orig_sizes)
        out = []
        for img, d, head, emb, (h, w) in zip(images, dets, heads, embs, orig_sizes):
            boxes = d["boxes"].float().cpu().numpy()
            det = Detections(
                xyxy=boxes,
                masks=at_threshold(paste_masks(head, boxes, (h, w)), self.mask_threshold),
                scores=d["scores"].float().cpu().numpy(),
                class_ids=d["labels"].cpu().numpy(),
                embeddings=emb.cpu().numpy(),
                image_size=(h, w),
            )
            if self._histogram is not None:
                det.embeddings = fuse(det.embeddings, self._histogram.embed(img, det))
            out.append(det)
        return out

    def detect_frames(self, frames: Sequence[Frame]) -> list[Detections]:
        """``detect`` on ``Frame`` objects (the pipeline's detector interface)."""
        return self.detect([f.image for f in frames])

    @torch.inference_mode()
    def embed_boxes(
        self, images: Sequence[np.ndarray], boxes: Sequence[np.ndarray]
    ) -> list[np.ndarray]:
        """Box-head embeddings for given (N_i, 4) boxes (original image pixels) per image."""
        if not images:
            return []
        orig_sizes = [im.shape[:2] for im in images]
        batch, feats = self._features(images)
        scaled = []
        for b, (h, w), (th, tw) in zip(boxes, orig_sizes, batch.image_sizes):
            t = torch.as_tensor(np.asarray(b, np.float32).reshape(-1, 4), device=self.device)
            scaled.append(t * torch.tensor([tw / w, th / h, tw / w, th / h], device=self.device))
        return [e.cpu().numpy() for e in self._embed_boxes(feats, scaled, batch.image_sizes)]


def fuse(*parts: np.ndarray) -> np.ndarray:
    """Concatenate L2-normalised (N, D_i) embeddings into one L2-normalised (N, sum D_i)."""
    cat = np.concatenate([p.astype(np.float32) for p in parts], axis=1)
    return cat / np.maximum(np.linalg.norm(cat, axis=1, keepdims=True), 1e-9)


class BoxHeadEmbedder:
    """``Embedder`` that runs a Mask R-CNN's backbone + box head on given boxes (fused with
    the mask colour histogram when the detector's ``appearance`` is ``fused``)."""

    def __init__(self, detector: MaskRCNNDetector) -> None:
        self.detector = detector
        self.dim = detector.dim
        self.precision = detector.precision

    def embed(self, image: np.ndarray, dets: Detections) -> np.ndarray:
        if len(dets) == 0:
            return np.zeros((0, self.dim), np.float32)
        emb = self.detector.embed_boxes([image], [dets.xyxy])[0]
        if self.detector._histogram is not None:
            emb = fuse(emb, self.detector._histogram.embed(image, dets))
        return emb


class HistogramEmbedder:
    """``Embedder`` without a network: hue-saturation + value histograms inside each mask, one
    per horizontal stripe of the box (for people: upper body, lower body), concatenated.

    Args:
        bins: (hue, saturation, value) bin counts; D = stripes * (h*s + v).
        relative_value: measure value (brightness) relative to the whole frame's mean, so
            that a global lighting change does not change an object's histogram.
        stripes: horizontal stripes of the box, each with its own histogram (1 = the whole
            mask at once).
    """

    precision = "n/a"

    def __init__(
        self, bins: tuple[int, int, int] = (12, 4, 8), relative_value: bool = True, stripes: int = 2
    ) -> None:
        self.bins = bins
        self.relative_value = relative_value
        self.stripes = stripes
        self.dim = stripes * (bins[0] * bins[1] + bins[2])

    def embed(self, image: np.ndarray, dets: Detections) -> np.ndarray:
        import cv2

        out = np.zeros((len(dets), self.dim), np.float32)
        if len(dets) == 0:
            return out
        hsv = cv2.cvtColor(image, cv2.COLOR_BGR2HSV)
        # frame mean brightness -> 128
        gain = 128.0 / max(float(hsv[..., 2].mean()), 1.0) if self.relative_value else 1.0
        for i in range(len(dets)):
            x1, y1, x2, y2 = (int(v) for v in np.round(dets.xyxy[i]))
            # the box clipped to the frame before anything is cut or allocated by its size
            x1, y1 = min(max(x1, 0), hsv.shape[1]), min(max(y1, 0), hsv.shape[0])
            x2, y2 = min(max(x2, x1), hsv.shape[1]), min(max(y2, y1), hsv.shape[0])
            crop = hsv[y1:y2, x1:x2]
            if gain != 1.0:
                crop = crop.copy()
                crop[..., 2] = np.clip(crop[..., 2] * gain, 0, 255).astype(np.uint8)
            m = dets.masks[i].window(x1, y1, x2, y2)[: crop.shape[0], : crop.shape[1]] >= 0.5
            m = m.astype(np.uint8)
            if crop.size == 0 or not m.any():
                continue
            edges = np.linspace(0, crop.shape[0], self.stripes + 1).round().astype(int)
            parts = [self._histogram(crop[a:b], m[a:b]) for a, b in zip(edges[:-1], edges[1:])]
            vec = np.concatenate(parts)
            out[i] = vec / max(np.linalg.norm(vec), 1e-9)
        return out

    def _histogram(self, crop: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """(h, w, 3) HSV pixels under ``mask`` -> a unit Hellinger-style histogram (0 if none)."""
        import cv2

        hb, sb, vb = self.bins
        if crop.size == 0 or not mask.any():
            return np.zeros(hb * sb + vb, np.float32)
        hs = cv2.calcHist([crop], [0, 1], mask, [hb, sb], [0, 180, 0, 256]).ravel()
        v = cv2.calcHist([crop], [2], mask, [vb], [0, 256]).ravel()
        vec = np.sqrt(np.concatenate([hs, v]))
        return vec / max(np.linalg.norm(vec), 1e-9)


def build_torch_maskrcnn(
    cfg: DetectorConfig, *, device: str = "cpu", precision: str = "f32"
) -> MaskRCNNDetector:
    """The Mask R-CNN ``cfg`` describes (weights, sizes, thresholds, classes, appearance, RPN
    top-n) in eager torch on ``device`` at ``precision``. The ONNX engines export this same
    model (``onnx_maskrcnn``), built at the defaults: float32 on the CPU."""
    model = MaskRCNNDetector.from_weights(
        weights=cfg.weights,
        arch=cfg.arch,
        num_classes=cfg.num_classes,
        labels=cfg.labels,
        min_size=cfg.min_size,
        max_size=cfg.max_size,
        score_threshold=cfg.score_threshold,
        max_detections=cfg.max_detections,
        classes=cfg.classes,
        appearance=cfg.appearance,
        device=device,
        precision=precision,
    )
    set_rpn_top_n(model.model, cfg.rpn_pre_nms_top_n, cfg.rpn_post_nms_top_n)
    if cfg.nms == "soft":  # the model's own NMS loose: Soft-NMS runs after it (soft_nms.py)
        from vis.detection.soft_nms import LOOSE_NMS_IOU, candidates

        model.model.roi_heads.nms_thresh = LOOSE_NMS_IOU
        model.model.roi_heads.detections_per_img = candidates(cfg.max_detections)
    return model
