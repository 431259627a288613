"""Held-out mask and box AP of a trained model, per dataset and per class (pycocotools).

Contract: ``evaluate(model, samples, labels)`` runs the eval-mode ``model`` on each held-out
sample and returns ``{dataset: {"images", "instances", "all": {mask_AP, mask_AP50, box_AP,
box_AP50}, "per_class": {label: {...} or None}}}`` in percent; crowd regions are COCO
"ignore" regions; a class without ground truth in a dataset gets None.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Callable, Sequence

import numpy as np
import torch
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval
from torchvision.models.detection import MaskRCNN
from tqdm import tqdm

from vis_train.data import Sample, read_image

METRICS = ("mask_AP", "mask_AP50", "box_AP", "box_AP50")


@torch.no_grad()
def predict(
    model: MaskRCNN, image: np.ndarray, *, mask_threshold: float = 0.5
) -> list[tuple[dict, int, float]]:
    """Run ``model`` on one (H, W, 3) uint8 RGB image: [(RLE, class id, score), ...]."""
    x = torch.from_numpy(image).permute(2, 0, 1).float().div_(255.0)
    out = model([x])[0]
    masks = (out["masks"][:, 0] >= mask_threshold).numpy().astype(np.uint8)
    rles = mask_utils.encode(np.asfortranarray(masks.transpose(1, 2, 0))) if len(masks) else []
    return [
        (rle, int(c), float(s))
        for rle, c, s in zip(rles, out["labels"].tolist(), out["scores"].tolist())
    ]


def _score(
    images: list[dict],
    anns: list[dict],
    dets: list[dict],
    cat_ids: list[int],
    n_cats: int,
    kinds: tuple[tuple[str, str], ...] = (("segm", "mask"), ("bbox", "box")),
) -> dict[str, float] | None:
    metrics = [m for m in METRICS if any(m.startswith(prefix + "_") for _, prefix in kinds)]
    if not any(a["category_id"] in cat_ids and not a["iscrowd"] for a in anns):
        return None
    if not [d for d in dets if d["category_id"] in cat_ids]:
        return dict.fromkeys(metrics, 0.0)
    out = {}
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO()
        gt.dataset = {
            "images": images,
            "annotations": anns,
            "categories": [{"id": k} for k in range(1, n_cats + 1)],
        }
        gt.createIndex()
        dt = gt.loadRes(dets)
        for iou_type, prefix in kinds:
            ev = COCOeval(gt, dt, iou_type)
            ev.params.catIds = cat_ids
            ev.evaluate()
            ev.accumulate()
            ev.summarize()
            out[f"{prefix}_AP"] = round(100 * max(float(ev.stats[0]), 0.0), 2)
            out[f"{prefix}_AP50"] = round(100 * max(float(ev.stats[1]), 0.0), 2)
    return {k: out[k] for k in metrics}


def evaluate(
    model: MaskRCNN,
    samples: Sequence[Sample],
    labels: Sequence[str],
    *,
    score_threshold: float = 0.05,
    max_detections: int = 100,
    progress: bool = True,
    resamples: int = 0,
) -> dict[str, dict]:
    """Score ``model`` on ``samples`` (instances whose label is not in ``labels`` are not
    scored); see the module docstring for the result."""
    model.eval()
    model.roi_heads.score_thresh = score_threshold
    model.roi_heads.detections_per_img = max_detections
    return evaluate_predictions(
        lambda image: predict(model, image),
        samples,
        labels,
        progress=progress,
        resamples=resamples,
    )


def resampled(
    images: list[dict], anns: list[dict], dets: list[dict], picks: np.ndarray
) -> tuple[list[dict], list[dict], list[dict]]:
    """The image set drawn with replacement as ``picks`` (indices into ``images``), each draw
    a new image with its own copies of the ground truth and detections."""
    by_image_anns: dict[int, list[dict]] = {}
    by_image_dets: dict[int, list[dict]] = {}
    for a in anns:
        by_image_anns.setdefault(a["image_id"], []).append(a)
    for d in dets:
        by_image_dets.setdefault(d["image_id"], []).append(d)
    out_images, out_anns, out_dets = [], [], []
    for new_id, i in enumerate(picks.tolist(), start=1):
        src = images[i]
        out_images.append({**src, "id": new_id})
        for a in by_image_anns.get(src["id"], []):
            out_anns.append({**a, "id": len(out_anns) + 1, "image_id": new_id})
        for d in by_image_dets.get(src["id"], []):
            out_dets.append({**d, "image_id": new_id})
    return out_images, out_anns, out_dets


def evaluate_predictions(
    predictor: Callable[[np.ndarray], list[tuple[dict, int, float]]],
    samples: Sequence[Sample],
    labels: Sequence[str],
    *,
    progress: bool = True,
    resamples: int = 0,
) -> dict[str, dict]:
    """``evaluate`` for any predictor: ``predictor(image)`` takes an (H, W, 3) uint8 RGB image
    and returns [(RLE, class id, score), ...] (class id 1 = ``labels[0]``).

    ``resamples`` > 0 adds, per dataset and class, ``resampled``: that class's mask AP on
    ``resamples`` bootstrap draws of the dataset's images. The draws depend only on the
    number of images, so two models scored on the same samples get the same draws, and the
    difference of their lists is a paired bootstrap of the AP difference
    (``paired_interval``)."""
    per_dataset: dict[str, tuple[list, list, list]] = {}
    for sample in tqdm(samples, desc="held-out AP", unit="img", disable=not progress):
        images, anns, dets = per_dataset.setdefault(sample.dataset, ([], [], []))
        img_id = len(images) + 1
        images.append({"id": img_id, "height": sample.height, "width": sample.width})
        for inst in sample.instances:
            if inst.label not in labels:
                continue
            anns.append(
                {
                    "id": len(anns) + 1,
                    "image_id": img_id,
                    "category_id": labels.index(inst.label) + 1,
                    "segmentation": inst.rle,
                    "area": float(mask_utils.area(inst.rle)),
                    "bbox": [float(v) for v in mask_utils.toBbox(inst.rle)],
                    "iscrowd": int(inst.iscrowd),
                }
            )
        for rle, c, s in predictor(read_image(sample)):
            dets.append(
                {
                    "image_id": img_id,
                    "category_id": c,
                    "segmentation": rle,
                    "bbox": [float(v) for v in mask_utils.toBbox(rle)],
                    "score": s,
                }
            )
    results: dict[str, dict] = {}
    n = len(labels)
    for name, (images, anns, dets) in per_dataset.items():
        counts = {
            label: sum(1 for a in anns if a["category_id"] == k and not a["iscrowd"])
            for k, label in enumerate(labels, start=1)
        }
        present = [k for k, label in enumerate(labels, start=1) if counts[label]]
        results[name] = {
            "images": len(images),
            "instances": counts,
            "all": _score(images, anns, dets, present, n) if present else None,
            "per_class": {
                label: _score(images, anns, dets, [k], n) for k, label in enumerate(labels, start=1)
            },
        }
        if resamples:
            rng = np.random.default_rng(len(images))
            draws = [
                resampled(images, anns, dets, rng.integers(0, len(images), len(images)))
                for _ in range(resamples)
            ]
            results[name]["resampled"] = {
                label: [_score(*draw, [k], n, kinds=(("segm", "mask"),)) for draw in draws]
                for k, label in enumerate(labels, start=1)
                if counts[label]
            }
    return results


def paired_interval(
    base: list[dict | None], other: list[dict | None], metric: str = "mask_AP", level: float = 0.95
) -> tuple[float, float]:
    """The ``level`` interval of ``other - base`` over paired bootstrap draws (the
    ``resampled`` lists of two models scored on the same samples); draws where either has
    no ground truth of the class are left out."""
    diffs = [o[metric] - b[metric] for b, o in zip(base, other) if b and o]
    if not diffs:
        raise ValueError("paired_interval: no draw has ground truth of the class")
    lo, hi = np.quantile(diffs, [(1 - level) / 2, (1 + level) / 2])
    return round(float(lo), 2), round(float(hi), 2)
