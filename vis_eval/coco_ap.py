"""Mask and box AP with pycocotools' COCOeval on in-memory ground truth and predictions.

Contract: ``coco_mask_ap(gts, preds, class_names=...)`` returns ``{"mask_AP": ..,
"mask_AP50": .., "mask_AP75": .., "box_AP": .., "box_AP50": ..}`` in percent. A perfect
prediction scores 100, an empty one 0. ``coco_mask_ap_rle`` does the same on compressed
RLE masks (nothing decoded: for whole video sets), with COCO's mask area as the object area.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Sequence

import numpy as np
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from vis.ops.boxes import masks_to_boxes
from vis.schema import encode_masks


def coco_mask_ap(
    gts: Sequence[tuple[np.ndarray, np.ndarray]],
    preds: Sequence[tuple[np.ndarray, np.ndarray, np.ndarray]],
    *,
    class_names: dict[int, str],
) -> dict[str, float]:
    """Score predicted instance masks against ground truth.

    Args:
        gts: per image, ((N, H, W) bool masks, (N,) class ids).
        preds: per image, ((M, H, W) bool masks, (M,) class ids, (M,) scores).
        class_names: class id -> name of the classes scored.
    """
    images, anns, dets = [], [], []
    for img_id, ((gm, gc), (pm, pc, ps)) in enumerate(zip(gts, preds), start=1):
        h, w = gm.shape[1:] if len(gm) else (pm.shape[1:] if len(pm) else (1, 1))
        images.append({"id": img_id, "height": int(h), "width": int(w)})
        for rle, box, c in zip(encode_masks(gm), masks_to_boxes(gm), gc):
            x1, y1, x2, y2 = (float(v) for v in box)
            anns.append(
                {
                    "id": len(anns) + 1,
                    "image_id": img_id,
                    "category_id": int(c),
                    "segmentation": rle,
                    "area": float((x2 - x1) * (y2 - y1)),
                    "bbox": [x1, y1, x2 - x1, y2 - y1],
                    "iscrowd": 0,
                }
            )
        for rle, box, c, s in zip(encode_masks(pm), masks_to_boxes(pm), pc, ps):
            x1, y1, x2, y2 = (float(v) for v in box)
            dets.append(
                {
                    "image_id": img_id,
                    "category_id": int(c),
                    "segmentation": rle,
                    "bbox": [x1, y1, x2 - x1, y2 - y1],
                    "score": float(s),
                }
            )
    for r in dets:
        r["segmentation"] = {
            "size": r["segmentation"]["size"],
            "counts": r["segmentation"]["counts"].encode(),
        }
    for a in anns:
        a["segmentation"] = {
            "size": a["segmentation"]["size"],
            "counts": a["segmentation"]["counts"].encode(),
        }
    return _cocoeval(images, anns, dets, class_names)


def coco_mask_ap_rle(
    gts: Sequence[Sequence[tuple[dict, int]]],
    preds: Sequence[Sequence[tuple[dict, int, float]]],
    *,
    class_names: dict[int, str],
) -> dict[str, float]:
    """``coco_mask_ap`` on compressed RLE masks.

    Args:
        gts: per image, [(RLE ``{"size": [H, W], "counts": bytes}``, class id), ...].
        preds: per image, [(RLE, class id, score), ...].
        class_names: class id -> name of the classes scored.
    """
    images, anns, dets = [], [], []
    for img_id, (g, p) in enumerate(zip(gts, preds), start=1):
        sizes = [r["size"] for r, *_ in (*g, *p)]
        h, w = sizes[0] if sizes else (1, 1)
        images.append({"id": img_id, "height": int(h), "width": int(w)})
        if g:
            areas = mask_utils.area([r for r, _ in g])
            boxes = mask_utils.toBbox([r for r, _ in g])
            for (rle, c), area, box in zip(g, areas, boxes):
                anns.append(
                    {
                        "id": len(anns) + 1,
                        "image_id": img_id,
                        "category_id": int(c),
                        "segmentation": rle,
                        "area": float(area),
                        "bbox": [float(v) for v in box],
                        "iscrowd": 0,
                    }
                )
        if p:
            boxes = mask_utils.toBbox([r for r, _, _ in p])
            for (rle, c, s), box in zip(p, boxes):
                dets.append(
                    {
                        "image_id": img_id,
                        "category_id": int(c),
                        "segmentation": rle,
                        "bbox": [float(v) for v in box],
                        "score": float(s),
                    }
                )
    return _cocoeval(images, anns, dets, class_names)


def _cocoeval(
    images: list[dict], anns: list[dict], dets: list[dict], class_names: dict[int, str]
) -> dict[str, float]:
    """COCOeval (segm and bbox) of prepared COCO dicts (RLE counts as bytes)."""
    out: dict[str, float] = {}
    if not anns:
        raise ValueError("ground truth has no instances: nothing to score")
    if not dets:
        return {"mask_AP": 0.0, "mask_AP50": 0.0, "mask_AP75": 0.0, "box_AP": 0.0, "box_AP50": 0.0}
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO()
        gt.dataset = {
            "images": images,
            "annotations": anns,
            "categories": [{"id": k, "name": v} for k, v in class_names.items()],
        }
        gt.createIndex()
        dt = gt.loadRes(dets)
        for iou_type, prefix in (("segm", "mask"), ("bbox", "box")):
            ev = COCOeval(gt, dt, iou_type)
            ev.evaluate()
            ev.accumulate()
            ev.summarize()
            out[f"{prefix}_AP"] = round(100 * max(float(ev.stats[0]), 0.0), 2)
            out[f"{prefix}_AP50"] = round(100 * max(float(ev.stats[1]), 0.0), 2)
            if prefix == "mask":
                out["mask_AP75"] = round(100 * max(float(ev.stats[2]), 0.0), 2)
    return out
