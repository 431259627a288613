"""Test-time augmentation around any detector (``detector.tta``), and uncertainty as data.

Contract: ``TTADetector(inner, flip=..., scales=...)`` is a ``Detector`` that runs ``inner``
once per pass (each scale; with ``flip`` each also on the mirrored frame), maps every pass's
instances back to the frame, and merges them with ``fuse_passes``: one ``Detections`` per
frame with ``uncertainty`` set on every instance. Everything after the network is numpy, so
every engine gives the same result from the same passes.

A scale ``s`` changes the resolution the network sees: a detector with ``set_input_scale``
(Mask R-CNN, any engine: its resize bounds times ``s``) is told so; any other (a fixed-size
input such as YOLO-seg's) gets the frame in the top-left corner of a canvas ``1/s`` times
its size (``s <= 1`` only), filled with grey.

Fusion (weighted box and mask fusion): the passes' instances, best score first, join the
cluster of their class whose first member's mask they overlap most (mask IoU at least
``FUSE_IOU``, one member per pass), else start one. A cluster of members ``k`` out of ``P``
passes becomes one instance: box and soft mask the score-weighted means of its members',
score ``sum(scores) / P`` (a pass that missed it counts 0), class its members', embedding its
earliest pass's. Its **uncertainty** is ``1 - (k / P) * mean_iou * (1 - spread)`` in [0, 1]:
``mean_iou`` the mean mask IoU of the members with the fused mask, ``spread`` the range of
their scores; 0 when every pass found the same mask at the same score.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np

from vis.detection.base import Detector, WrappedDetector
from vis.ops.masks import BoxMask, mask_iou, pair_iou
from vis.types import Detections, Frame

#: the mask IoU at which a pass's instance joins a cluster (the same object seen again)
FUSE_IOU = 0.5
#: grey of the canvas around a frame scaled down for a fixed-input detector
PAD_VALUE = 114


@dataclasses.dataclass(frozen=True)
class Pass:
    """One augmentation: the scale of the network's input and whether the frame is
    mirrored left-right."""

    scale: float = 1.0
    flip: bool = False


def passes_of(flip: bool, scales: Sequence[float]) -> list[Pass]:
    """The passes ``detector.tta`` asks for, in order: each scale, unmirrored then
    mirrored."""
    return [Pass(float(s), f) for s in scales for f in ((False, True) if flip else (False,))]


class TTADetector(WrappedDetector):
    """``inner`` run once per ``Pass`` and its passes fused (see the module doc).

    Args:
        inner: the detector of each pass.
        passes: the augmentations (at least two).
        score_threshold: fused instances below this score are dropped.
        max_detections: fused instances kept per frame (highest scores).
    """

    def __init__(
        self,
        inner: Detector,
        *,
        passes: Sequence[Pass],
        score_threshold: float,
        max_detections: int,
    ) -> None:
        super().__init__(inner)
        self.passes = list(passes)
        self.score_threshold = score_threshold
        self.max_detections = max_detections
        self.scalable = _scalable(inner)
        if self.scalable is None and any(p.scale > 1.0 for p in self.passes):
            raise ValueError("scales above 1 need a detector whose input size can change")

    def detect_frames(self, frames: Sequence[Frame]) -> list[Detections]:
        per_pass = [self._run(p, frames) for p in self.passes]
        return [
            fuse_passes(
                [per_pass[k][i] for k in range(len(self.passes))],
                score_threshold=self.score_threshold,
                max_detections=self.max_detections,
            )
            for i in range(len(frames))
        ]

    def _run(self, p: Pass, frames: Sequence[Frame]) -> list[Detections]:
        """One pass over ``frames``: its instances in each frame's own pixels."""
        shapes = [f.image.shape[:2] for f in frames]
        images = [f.image for f in frames]
        if p.flip:
            images = [np.ascontiguousarray(im[:, ::-1]) for im in images]
        if p.scale != 1.0 and self.scalable is None:
            images = [_on_canvas(im, p.scale) for im in images]
        moved = [dataclasses.replace(f, image=im) for f, im in zip(frames, images)]
        if p.scale != 1.0 and self.scalable is not None:
            self.scalable.set_input_scale(p.scale)
            try:
                dets = self.inner.detect_frames(moved)
            finally:
                self.scalable.set_input_scale(1.0)
        else:
            dets = self.inner.detect_frames(moved)
        out = []
        for d, shape in zip(dets, shapes):
            if d.image_size != shape:
                d = crop_to(d, shape)
            out.append(mirror(d) if p.flip else d)
        return out


def _scalable(detector: Detector):
    """The detector in the chain ``detector``, ``detector.inner``, ... that can change its
    input size (``set_input_scale``), or None."""
    while detector is not None:
        if hasattr(detector, "set_input_scale"):
            return detector
        detector = getattr(detector, "inner", None)
    return None


def _on_canvas(image: np.ndarray, scale: float) -> np.ndarray:
    """``image`` in the top-left corner of a grey canvas ``1 / scale`` times its size."""
    h, w = image.shape[:2]
    out = np.full((int(round(h / scale)), int(round(w / scale)), 3), PAD_VALUE, np.uint8)
    out[:h, :w] = image
    return out


def mirror(d: Detections) -> Detections:
    """``d`` mirrored left-right in its frame (boxes and masks)."""
    w = d.image_size[1]
    boxes = d.xyxy.copy()
    boxes[:, 0], boxes[:, 2] = w - d.xyxy[:, 2], w - d.xyxy[:, 0]
    masks = [
        BoxMask(w - m.x1, m.y0, np.ascontiguousarray(m.prob[:, ::-1]), m.image_size)
        if m.prob.size
        else m
        for m in d.masks
    ]
    return dataclasses.replace(d, xyxy=boxes, masks=masks)


def crop_to(d: Detections, shape: tuple[int, int]) -> Detections:
    """``d`` of a canvas cut to its top-left ``shape`` (H, W): boxes clipped, masks cut."""
    h, w = shape
    boxes = d.xyxy.copy()
    boxes[:, 0::2] = boxes[:, 0::2].clip(0, w)
    boxes[:, 1::2] = boxes[:, 1::2].clip(0, h)
    masks = [BoxMask.from_window(m.prob, m.x0, m.y0, (h, w)) for m in d.masks]
    return dataclasses.replace(d, xyxy=boxes, masks=masks, image_size=(h, w))


def fuse_passes(
    passes: Sequence[Detections],
    *,
    score_threshold: float = 0.0,
    max_detections: int = 1000,
    iou_threshold: float = FUSE_IOU,
) -> Detections:
    """Weighted box and mask fusion of one frame's instances from ``P`` passes, with each
    fused instance's ``uncertainty`` (see the module doc).

    Args:
        passes: P ``Detections`` of the same frame (same ``image_size``).
        score_threshold: fused instances below this score are dropped.
        max_detections: fused instances kept (highest scores).
        iou_threshold: the mask IoU at which an instance joins a cluster.

    Returns:
        The fused instances, highest score first, ``uncertainty`` (M,) set.
    """
    n_pass = len(passes)
    size = passes[0].image_size
    rows = [(k, i) for k, d in enumerate(passes) for i in range(len(d))]
    scores = np.array([passes[k].scores[i] for k, i in rows], np.float64)
    order = np.argsort(-scores, kind="stable")
    clusters: list[list[tuple[int, int]]] = []
    for r in order:
        k, i = rows[r]
        det = passes[k]
        best, best_iou = -1, iou_threshold
        for c, members in enumerate(clusters):
            lk, li = members[0]
            if passes[lk].class_ids[li] != det.class_ids[i] or any(m[0] == k for m in members):
                continue
            iou = pair_iou(passes[lk].masks[li], det.masks[i])
            if iou >= best_iou and (best < 0 or iou > best_iou):
                best, best_iou = c, iou
        if best >= 0:
            clusters[best].append((k, i))
        else:
            clusters.append([(k, i)])
    fused = [_fuse(passes, members, n_pass, size) for members in clusters]
    fused = [f for f in fused if f[2] >= score_threshold]
    fused.sort(key=lambda f: -f[2])  # stable: ties keep their clusters' order
    fused = fused[:max_detections]
    if not fused:
        dim = passes[0].embeddings.shape[1]
        out = Detections.empty(*size, embedding_dim=dim)
        out.uncertainty = np.zeros(0, np.float32)
        return out
    return Detections(
        xyxy=np.stack([f[0] for f in fused]),
        masks=[f[1] for f in fused],
        scores=np.array([f[2] for f in fused], np.float32),
        class_ids=np.array([f[3] for f in fused], np.int64),
        embeddings=np.stack([f[4] for f in fused]),
        uncertainty=np.array([f[5] for f in fused], np.float32),
        image_size=size,
    )


def _fuse(
    passes: Sequence[Detections],
    members: list[tuple[int, int]],
    n_pass: int,
    size: tuple[int, int],
) -> tuple[np.ndarray, BoxMask, float, int, np.ndarray, float]:
    """One cluster -> (box, soft mask, score, class id, embedding, uncertainty)."""
    w = np.array([passes[k].scores[i] for k, i in members], np.float64)
    weights = w / w.sum() if w.sum() > 0 else np.full(len(w), 1.0 / len(w))
    boxes = np.stack([passes[k].xyxy[i] for k, i in members]).astype(np.float64)
    box = (weights[:, None] * boxes).sum(0).astype(np.float32)
    masks = [passes[k].masks[i] for k, i in members]
    live = [m for m in masks if m.prob.size]
    if live:
        x0, y0 = min(m.x0 for m in live), min(m.y0 for m in live)
        x1, y1 = max(m.x1 for m in live), max(m.y1 for m in live)
        prob = np.zeros((y1 - y0, x1 - x0), np.float64)
        for wt, m in zip(weights, masks):
            prob += wt * m.window(x0, y0, x1, y1)
        mask = BoxMask(x0, y0, prob.astype(np.float32), size)
    else:
        mask = BoxMask.empty(size)
    mean_iou = float(mask_iou(masks, [mask])[:, 0].mean()) if mask.area else 0.0
    if len(masks) == 1:
        mean_iou = 1.0  # a lone member is its own fused mask (also when it is empty)
    spread = float(w.max() - w.min())
    uncertainty = 1.0 - (len(members) / n_pass) * mean_iou * (1.0 - spread)
    first = min(members)
    k, i = first
    return (
        box,
        mask,
        float(w.sum() / n_pass),
        int(passes[k].class_ids[i]),
        passes[k].embeddings[i],
        float(np.clip(uncertainty, 0.0, 1.0)),
    )
