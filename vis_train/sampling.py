"""Training-time help for rare classes: repeat-factor sampling and copy-paste.

Contract: ``repeat_factors`` gives each training image the LVIS repeat factor (Gupta et al.
2019): per class ``r(c) = max(1, sqrt(t / f(c)))`` with ``f(c)`` the share of training images
that contain ``c``, per image the largest ``r`` of its classes; images are then drawn with
probability proportional to it. ``DonorBank`` holds cut-out objects of chosen classes (mask and
pixels in their box) and ``DonorBank.paste`` puts some of them onto a training image at a
random scale and place (simple copy-paste, Ghiasi et al. 2021), occluding what lies below.
All randomness comes from the caller's ``torch.Generator``, so a resumed run draws the same.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

import cv2
import numpy as np
import torch

from vis_train.data import Sample, load_target


def repeat_factors(samples: Sequence[Sample], labels: Sequence[str], thresh: float) -> np.ndarray:
    """(len(samples),) float64 repeat factors; all 1 when ``thresh <= 0``.

    Only non-crowd instances of ``labels`` count; an image with none of them gets 1.
    """
    per_image = [
        {i.label for i in s.instances if not i.iscrowd and i.label in labels} for s in samples
    ]
    out = np.ones(len(samples))
    if thresh <= 0 or not samples:
        return out
    freq = {c: sum(c in cs for cs in per_image) / len(samples) for c in labels}
    r = {c: max(1.0, math.sqrt(thresh / f)) for c, f in freq.items() if f > 0}
    for k, cs in enumerate(per_image):
        if cs:
            out[k] = max(r[c] for c in cs)
    return out


def draw(weights: torch.Tensor, n: int, gen: torch.Generator) -> list[int]:
    """``n`` image indices drawn with replacement, with probability proportional to
    ``weights`` (repeat factors); uniformly (``torch.randint``) when they are all equal."""
    if bool((weights == weights[0]).all()):
        return torch.randint(len(weights), (n,), generator=gen).tolist()
    return torch.multinomial(weights, n, replacement=True, generator=gen).tolist()


@dataclasses.dataclass(frozen=True)
class Donor:
    """One object to paste: ``pixels`` (h, w, 3) uint8 RGB and ``mask`` (h, w) bool of its box."""

    class_id: int
    pixels: np.ndarray
    mask: np.ndarray


class DonorBank:
    """Cut-out objects of some classes, taken from training images only.

    Args:
        samples: where the objects come from (never held-out images).
        labels: the trained class list (class id k is ``labels[k - 1]``).
        classes: which labels are cut out.
        min_area: smallest mask (pixels) worth pasting.
        max_donors: at most this many, the largest first (bounds memory).
    """

    def __init__(
        self,
        samples: Sequence[Sample],
        labels: Sequence[str],
        classes: Sequence[str],
        *,
        min_area: int = 400,
        max_donors: int = 400,
    ) -> None:
        unknown = set(classes) - set(labels)
        if unknown:
            raise ValueError(
                f"paste classes {sorted(unknown)} are not trained classes {list(labels)}"
            )
        donors = []
        for s in samples:
            if not any(not i.iscrowd and i.label in classes for i in s.instances):
                continue
            image, masks, boxes, class_ids = load_target(s, labels)
            for m, b, c in zip(masks, boxes, class_ids):
                if labels[c - 1] not in classes or int(m.sum()) < min_area:
                    continue
                x1, y1, x2, y2 = (int(v) for v in b)
                donors.append(
                    Donor(int(c), image[y1:y2, x1:x2].copy(), m[y1:y2, x1:x2].astype(bool))
                )
        donors.sort(key=lambda d: -int(d.mask.sum()))
        self.donors: list[Donor] = donors[:max_donors]

    def __len__(self) -> int:
        return len(self.donors)

    def paste(
        self,
        target: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
        gen: torch.Generator,
        max_objects: int = 2,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Paste 1..``max_objects`` donors onto ``target`` = (image, masks, boxes, class_ids)
        as ``load_target`` returns it; returns the same four, new arrays.

        Each donor is scaled so that its longer side is 15-60 % of the image's shorter side
        (its aspect kept), maybe flipped, and placed wholly inside the image; the objects
        below lose the covered pixels and are dropped when nothing of them is left.
        """
        image, masks, _, class_ids = target
        if not self.donors:
            return target
        image = image.copy()
        h, w = image.shape[:2]
        masks = [m.copy() for m in masks]
        class_ids = list(class_ids)
        k = 1 + int(torch.randint(max_objects, (), generator=gen))
        for _ in range(k):
            d = self.donors[int(torch.randint(len(self.donors), (), generator=gen))]
            u = torch.rand(4, generator=gen).tolist()
            dh, dw = d.mask.shape
            size = (0.15 + 0.45 * u[0]) * min(h, w)
            scale = min(size / max(dh, dw), 0.95 * w / dw, 0.95 * h / dh)
            nw, nh = max(2, round(dw * scale)), max(2, round(dh * scale))
            pix = cv2.resize(d.pixels, (nw, nh), interpolation=cv2.INTER_LINEAR)
            m = cv2.resize(d.mask.astype(np.uint8), (nw, nh), interpolation=cv2.INTER_NEAREST)
            if u[1] < 0.5:
                pix, m = pix[:, ::-1], m[:, ::-1]
            if not m.any():
                continue
            x0, y0 = int(u[2] * (w - nw + 1)), int(u[3] * (h - nh + 1))
            region = np.zeros((h, w), bool)
            region[y0 : y0 + nh, x0 : x0 + nw] = m.astype(bool)
            image[y0 : y0 + nh, x0 : x0 + nw][m.astype(bool)] = pix[m.astype(bool)]
            for old in masks:
                old[region] = 0
            masks.append(region.astype(np.uint8))
            class_ids.append(d.class_id)
        keep = [k for k, m in enumerate(masks) if m.any()]
        out_masks = np.stack([masks[k] for k in keep]) if keep else np.zeros((0, h, w), np.uint8)
        boxes = np.zeros((len(keep), 4), np.float32)
        for j, m in enumerate(out_masks):
            ys, xs = np.nonzero(m)
            boxes[j] = (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1)
        return image, out_masks, boxes, np.array([class_ids[k] for k in keep], np.int64)
