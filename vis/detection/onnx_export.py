"""Export a torchvision Mask R-CNN to ONNX once and cache it beside its checkpoint.

Contract: ``cached_export(model, weights_file=..., settings=..., batch=B)`` returns the path
of an ONNX graph of ``model`` for batches of exactly B images of one size, exporting it on
first use into ``<checkpoint dir>/.engine-cache/`` (or ``~/.cache/vis-pipeline/engines``
when that is read-only), under a name keyed by the checkpoint's SHA-256 and every setting
baked into the graph (sizes, thresholds, proposal counts, batch, exporter version).

The graph (``MaskRCNNGraph``): inputs ``images`` (B, 3, H, W) RGB float in [0, 1] and
``resized``, an empty (0, h, w) uint8 array whose shape is the size the model resizes to
(``resized_size``: computed outside the graph in double precision as torchvision does; inside
an ONNX graph the float32 scale lands one pixel short on some sizes); the model's own
normalisation, resize and padding, backbone, RPN, box and mask heads, then the final
boxes' RoI-aligned features through the box head (the Re-ID embeddings). Outputs, for all
images concatenated: ``boxes`` (N, 4) in input pixels, ``scores`` (N,), ``labels`` (N,),
``masks`` (N, 1, M, M) mask-head probabilities, ``embeddings`` (N, D) L2-normalised,
``image_index`` (N,) which image each row belongs to. Pasting the M x M masks into the
frame is left to numpy (``paste_masks``), as torchvision does after its model.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
import warnings
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models.detection import MaskRCNN
from torchvision.models.detection.image_list import ImageList
from torchvision.models.detection.transform import resize_boxes

from vis.ops.masks import BoxMask

log = logging.getLogger(__name__)

# bump when the graph's inputs, outputs or contents change: old cache entries are not reused
EXPORT_VERSION = 2
OPSET = 17
OUTPUTS = ("boxes", "scores", "labels", "masks", "embeddings", "image_index")
USER_CACHE = Path.home() / ".cache" / "vis-pipeline" / "engines"


class MaskRCNNGraph(nn.Module):
    """``model`` as one traceable function of a batch of ``batch`` images (see module doc)."""

    def __init__(self, model: MaskRCNN, batch: int) -> None:
        super().__init__()
        self.model = model
        self.batch = batch

    def forward(self, images: torch.Tensor, resized: torch.Tensor) -> tuple[torch.Tensor, ...]:
        m, t = self.model, self.model.transform
        size = resized.shape[-2:]
        originals = [images[i] for i in range(self.batch)]
        scaled = [
            F.interpolate(t.normalize(im)[None], size=size, mode="bilinear", align_corners=False)[0]
            for im in originals
        ]
        batch = ImageList(t.batch_images(scaled, t.size_divisible), [size] * self.batch)
        feats = m.backbone(batch.tensors)
        proposals, _ = m.rpn(batch, feats)
        dets, _ = m.roi_heads(feats, proposals, batch.image_sizes)
        rh = m.roi_heads
        pooled = rh.box_roi_pool(feats, [d["boxes"] for d in dets], batch.image_sizes)
        emb = F.normalize(rh.box_head(pooled), dim=1)
        boxes = [
            resize_boxes(d["boxes"], size, im.shape[-2:])
            for d, size, im in zip(dets, batch.image_sizes, originals)
        ]
        index = [torch.zeros_like(d["labels"]) + i for i, d in enumerate(dets)]
        return (
            torch.cat(boxes),
            torch.cat([d["scores"] for d in dets]),
            torch.cat([d["labels"] for d in dets]),
            torch.cat([d["masks"] for d in dets]),
            emb,
            torch.cat(index),
        )


def resized_size(shape: tuple[int, int], min_size: int, max_size: int) -> tuple[int, int]:
    """(h, w) that torchvision's ``GeneralizedRCNNTransform`` resizes an (h, w) image to."""
    h, w = shape
    scale = min(float(min_size) / min(h, w), float(max_size) / max(h, w))
    return int(np.floor(h * scale)), int(np.floor(w * scale))


def graph_settings(model: MaskRCNN) -> dict:
    """Everything about ``model`` that the exported graph bakes in, besides its weights."""
    t, rpn, rh = model.transform, model.rpn, model.roi_heads
    return {
        "min_size": list(t.min_size),
        "max_size": t.max_size,
        "rpn_pre_nms_top_n": rpn._pre_nms_top_n["testing"],
        "rpn_post_nms_top_n": rpn._post_nms_top_n["testing"],
        "rpn_nms_thresh": rpn.nms_thresh,
        "score_thresh": rh.score_thresh,
        "nms_thresh": rh.nms_thresh,
        "detections_per_img": rh.detections_per_img,
        "export_version": EXPORT_VERSION,
        "opset": OPSET,
        "torch": torch.__version__,
    }


def file_sha256(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def cache_dir_for(weights_file: Path) -> Path:
    """``<checkpoint dir>/.engine-cache`` if writable, else the user cache."""
    beside = weights_file.parent / ".engine-cache"
    try:
        beside.mkdir(exist_ok=True)
        if os.access(beside, os.W_OK):
            return beside
    except OSError:
        pass
    USER_CACHE.mkdir(parents=True, exist_ok=True)
    return USER_CACHE


def cache_key(weights_file: Path, settings: dict) -> str:
    blob = json.dumps({"weights": file_sha256(weights_file), **settings}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def cached_export(model: MaskRCNN, *, weights_file: Path, batch: int, tag: str = "fp32") -> Path:
    """The ONNX graph of ``model`` for ``batch`` images, exported on first use (see module
    doc). ``tag`` names a variant of the same graph (``fp32``; ``int8`` is written by
    ``quantize``)."""
    settings = {**graph_settings(model), "batch": batch}
    key = cache_key(weights_file, settings)
    path = cache_dir_for(weights_file) / f"{weights_file.stem}-{key}-b{batch}-{tag}.onnx"
    if path.is_file():
        return path
    log.info("exporting %s (batch %d) to %s, once", weights_file.name, batch, path)
    export(model, path, batch=batch)
    return path


def export(model: MaskRCNN, path: Path, *, batch: int) -> None:
    """Trace ``MaskRCNNGraph(model, batch)`` to ONNX at ``path`` (written atomically)."""
    graph = MaskRCNNGraph(model.eval(), batch)
    example = (torch.rand(batch, 3, 480, 640), torch.zeros(0, 360, 480, dtype=torch.uint8))
    dynamic = {
        "images": {2: "height", 3: "width"},
        "resized": {1: "resized_height", 2: "resized_width"},
        **{o: {0: "n"} for o in OUTPUTS},
    }
    fd, tmp = tempfile.mkstemp(suffix=".onnx", dir=path.parent)
    os.close(fd)
    try:
        # the tracer warns about every Python-level shape computation in torchvision's
        # detection code; those it handles (dynamic sizes are checked by the tests)
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                graph,
                example,
                tmp,
                dynamo=False,
                opset_version=OPSET,
                input_names=["images", "resized"],
                output_names=list(OUTPUTS),
                dynamic_axes=dynamic,
            )
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def paste_masks(masks: np.ndarray, boxes: np.ndarray, shape: tuple[int, int]) -> list[BoxMask]:
    """(N, M, M) mask-head probabilities -> N box-local soft masks at ``boxes`` (N, 4) in a
    frame of ``shape`` (H, W), with the values torchvision's ``paste_masks_in_image`` gives
    (1-cell padding, integer boxes, bilinear); no full-frame array is made."""
    import cv2

    n = len(masks)
    if n == 0:
        return []
    m = masks.shape[-1]
    padded = np.pad(masks.astype(np.float32), ((0, 0), (1, 1), (1, 1)))
    scale = (m + 2) / m
    half = (boxes[:, 2:] - boxes[:, :2]) * 0.5 * scale
    centre = (boxes[:, 2:] + boxes[:, :2]) * 0.5
    ib = np.concatenate([centre - half, centre + half], axis=1).astype(np.int64)  # trunc
    out = []
    for i in range(n):
        x0, y0, x1, y1 = (int(v) for v in ib[i])
        bw, bh = max(x1 - x0 + 1, 1), max(y1 - y0 + 1, 1)
        resized = cv2.resize(padded[i], (bw, bh), interpolation=cv2.INTER_LINEAR)
        out.append(BoxMask.from_window(resized, x0, y0, shape))
    return out
