"""Masks stored inside their boxes (``BoxMask``), IoU computed only where boxes overlap, and
the keyframe clean-up/blend of a detection's mask with a track's carried one.

Cost of ``mask_iou`` grows with the number of overlapping pairs and their overlap area,
never with the image area.
"""

from __future__ import annotations

import dataclasses
import functools

import numpy as np

from vis.ops.boxes import mask_to_box, support_rect


@dataclasses.dataclass(frozen=True)
class BoxMask:
    """A mask as a crop at (x0, y0) of an image of size ``image_size`` (H, W).

    Attributes:
        x0, y0: top-left corner of the crop in image pixels.
        prob: (h, w) float32 soft mask in [0, 1]; the binary mask is ``prob >= 0.5``.
        image_size: (H, W) of the full image.
        velocity: the mask's last displacement (dx, dy) per frame, a motion prior for
            propagation (0 when unknown).
    """

    x0: int
    y0: int
    prob: np.ndarray
    image_size: tuple[int, int]
    velocity: tuple[float, float] = (0.0, 0.0)

    @property
    def touches_border(self) -> bool:
        h, w = self.image_size
        return self.x0 <= 0 or self.y0 <= 0 or self.x1 >= w or self.y1 >= h

    @functools.cached_property
    def bits(self) -> np.ndarray:
        """(h, w) bool binary mask, computed once (a ``BoxMask`` is never changed in place)."""
        return self.prob >= 0.5

    @property
    def x1(self) -> int:
        return self.x0 + self.prob.shape[1]

    @property
    def y1(self) -> int:
        return self.y0 + self.prob.shape[0]

    @functools.cached_property
    def area(self) -> int:
        return int(np.count_nonzero(self.bits))

    @classmethod
    def empty(cls, image_size: tuple[int, int]) -> BoxMask:
        """A mask with no pixels in an image of ``image_size`` (H, W)."""
        return cls(0, 0, np.zeros((0, 0), np.float32), image_size)

    @classmethod
    def from_box(cls, xyxy, image_size: tuple[int, int]) -> BoxMask:
        """The filled box ``xyxy`` (x2, y2 exclusive, rounded to pixels, clipped to the
        image) as a mask: what a detector of boxes says of an object's shape."""
        h, w = image_size
        x0, y0, x1, y1 = (int(round(float(v))) for v in xyxy)
        x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
        if x1 <= x0 or y1 <= y0:
            return cls.empty(image_size)
        return cls(x0, y0, np.ones((y1 - y0, x1 - x0), np.float32), (h, w))

    @classmethod
    def crop_or_empty(cls, full: np.ndarray) -> BoxMask:
        """``from_full``, or ``empty`` where ``full`` has no pixels (IoU 0 with anything)."""
        return cls.from_full(full) or cls.empty(full.shape)

    @classmethod
    def from_full(cls, full: np.ndarray, *, pad: int = 0) -> BoxMask | None:
        """(H, W) bool or float mask -> crop around its support (+ ``pad``), None if empty."""
        r = support_rect(full >= 0.5 if full.dtype != bool else full)
        if r is None:
            return None
        h, w = full.shape
        x0, y0 = max(r[0] - pad, 0), max(r[1] - pad, 0)
        x1, y1 = min(r[2] + pad, w), min(r[3] + pad, h)
        crop = full[y0:y1, x0:x1].astype(np.float32)
        return cls(int(x0), int(y0), crop, (h, w))

    def tight_box(self) -> np.ndarray | None:
        """(4,) float32 x1 y1 x2 y2 of the binary mask in image pixels, None if empty."""
        box = mask_to_box(self.bits)
        return (
            None
            if box is None
            else box + np.array([self.x0, self.y0, self.x0, self.y0], np.float32)
        )

    @classmethod
    def from_window(
        cls, prob: np.ndarray, x0: int, y0: int, image_size: tuple[int, int]
    ) -> BoxMask:
        """A soft mask given in the window at (x0, y0) of an image of ``image_size``, clipped
        to the image. Its soft values below 0.5 are kept (they count when blending)."""
        h, w = image_size
        ph, pw = prob.shape
        xa, ya, xb, yb = max(x0, 0), max(y0, 0), min(x0 + pw, w), min(y0 + ph, h)
        if xb <= xa or yb <= ya:
            return cls.empty(image_size)
        inside = prob[ya - y0 : yb - y0, xa - x0 : xb - x0].astype(np.float32, copy=False)
        return cls(int(xa), int(ya), inside, (int(h), int(w)))

    def window(self, x0: int, y0: int, x1: int, y1: int) -> np.ndarray:
        """The soft mask over the image window [x0, x1) x [y0, y1) (0 outside the crop)."""
        out = np.zeros((max(y1 - y0, 0), max(x1 - x0, 0)), np.float32)
        xa, ya = max(x0, self.x0), max(y0, self.y0)
        xb, yb = min(x1, self.x1), min(y1, self.y1)
        if xb > xa and yb > ya:
            out[ya - y0 : yb - y0, xa - x0 : xb - x0] = self.prob[
                ya - self.y0 : yb - self.y0, xa - self.x0 : xb - self.x0
            ]
        return out

    def to_full(self) -> np.ndarray:
        """(H, W) bool full-image mask."""
        out = np.zeros(self.image_size, bool)
        out[self.y0 : self.y1, self.x0 : self.x1] = self.bits
        return out


def at_threshold(masks: list[BoxMask], threshold: float) -> list[BoxMask]:
    """Soft masks binarised at ``threshold`` -> the same masks rescaled so that the binary
    mask is ``prob >= 0.5`` (piecewise linear, order kept; 0.5 returns them as they are)."""
    if threshold == 0.5:
        return masks
    t = float(np.clip(threshold, 1e-6, 1 - 1e-6))
    out = []
    for m in masks:
        p = m.prob
        q = np.where(p < t, 0.5 * p / t, 0.5 + 0.5 * (p - t) / (1 - t)).astype(np.float32)
        out.append(dataclasses.replace(m, prob=q))
    return out


def overlapping_pairs(a: list[BoxMask], b: list[BoxMask]) -> np.ndarray:
    """(K, 2) index pairs (i, j) whose crops overlap; the only pairs ``mask_iou`` looks at."""
    if not a or not b:
        return np.zeros((0, 2), int)
    ra = np.array([[m.x0, m.y0, m.x1, m.y1] for m in a])
    rb = np.array([[m.x0, m.y0, m.x1, m.y1] for m in b])
    ok = (
        np.minimum(ra[:, None, 2], rb[None, :, 2]) > np.maximum(ra[:, None, 0], rb[None, :, 0])
    ) & (np.minimum(ra[:, None, 3], rb[None, :, 3]) > np.maximum(ra[:, None, 1], rb[None, :, 1]))
    return np.argwhere(ok)


def mask_iou(a: list[BoxMask], b: list[BoxMask]) -> np.ndarray:
    """Pairwise IoU of binary masks, (N), (M) -> (N, M) float64.

    Only pairs from ``overlapping_pairs`` are compared pixel by pixel, inside the
    intersection of their crops; all other pairs are 0.
    """
    out = np.zeros((len(a), len(b)), np.float64)
    for i, j in overlapping_pairs(a, b):
        out[i, j] = pair_iou(a[i], b[j])
    return out


def pair_iou(ma: BoxMask, mb: BoxMask) -> float:
    """IoU of two binary masks, comparing pixels only where their crops intersect."""
    x0, y0 = max(ma.x0, mb.x0), max(ma.y0, mb.y0)
    x1, y1 = min(ma.x1, mb.x1), min(ma.y1, mb.y1)
    if x1 <= x0 or y1 <= y0:
        return 0.0
    wa = ma.bits[y0 - ma.y0 : y1 - ma.y0, x0 - ma.x0 : x1 - ma.x0]
    wb = mb.bits[y0 - mb.y0 : y1 - mb.y0, x0 - mb.x0 : x1 - mb.x0]
    inter = float(np.count_nonzero(wa & wb))
    union = ma.area + mb.area - inter
    return inter / union if union > 0 else 0.0


def duplicate_of(masks: list[BoxMask], scores: np.ndarray, max_iou: float) -> np.ndarray:
    """Greedy non-maximum suppression on mask IoU, whatever the classes.

    Returns:
        (N,) int: -1 for a mask kept, else the index of the kept, higher-scoring mask it
        overlaps most (IoU > ``max_iou``). ``max_iou >= 1`` keeps everything.
    """
    n = len(masks)
    of = np.full(n, -1, int)
    if n < 2 or max_iou >= 1.0:
        return of
    iou = mask_iou(masks, masks)
    kept: list[int] = []
    for i in np.argsort(-np.asarray(scores), kind="stable"):
        over = [k for k in kept if iou[i, k] > max_iou]
        if over:
            of[i] = max(over, key=lambda k: iou[i, k])
        else:
            kept.append(int(i))
    return of


#: a mask covering at least this share of its tight box has no shape of its own: it is the
#: box (a detector that gives boxes only, or ground-truth boxes)
BOX_FILL = 0.95


def is_box(mask: BoxMask) -> bool:
    """The mask fills its tight box (``BOX_FILL``): its overlap with another says no more
    than their boxes' does."""
    box = mask.tight_box()
    if box is None:
        return False
    return mask.area >= BOX_FILL * float((box[2] - box[0]) * (box[3] - box[1]))


def clean_mask(prob: np.ndarray, *, min_area: int, threshold: float = 0.5) -> np.ndarray:
    """Binarise a soft mask, drop specks smaller than ``min_area`` and fill holes smaller than it.

    Args:
        prob: (h, w) float soft mask.
        min_area: components (and holes) below this many pixels are removed (filled).

    Returns:
        (h, w) bool.
    """
    import cv2

    bits = (prob >= threshold).astype(np.uint8)
    if min_area <= 1 or not bits.any():
        return bits.astype(bool)
    n, lab, stats, _ = cv2.connectedComponentsWithStats(bits, connectivity=8)
    small = np.flatnonzero(stats[1:, cv2.CC_STAT_AREA] < min_area) + 1
    if len(small) and len(small) < n - 1:  # never delete the whole object
        bits[np.isin(lab, small)] = 0
    inv = (1 - bits).astype(np.uint8)
    n, lab, stats, _ = cv2.connectedComponentsWithStats(inv, connectivity=4)
    h, w = bits.shape
    for k in range(1, n):
        x, y, cw, ch, area = stats[k]
        touches_border = x == 0 or y == 0 or x + cw == w or y + ch == h
        if area < min_area and not touches_border:
            bits[lab == k] = 1
    return bits.astype(bool)


def smooth_mask(
    det: BoxMask,
    det_box: np.ndarray,
    previous: BoxMask | None,
    *,
    weight: float,
    min_area: int,
) -> BoxMask | None:
    """Blend a keyframe detection's soft mask with the warped previous mask, then clean it.

    Args:
        det: the detection's soft mask.
        det_box: (4,) xyxy box of the detection (bounds the work).
        previous: the track's mask warped to this frame, or None.
        weight: weight of the detection (1 = take the detection as is).
        min_area: specks and holes below this area are removed / filled.

    Returns:
        The smoothed mask, or None if it is empty.
    """
    h, w = det.image_size
    x0, y0 = int(max(np.floor(det_box[0]) - 2, 0)), int(max(np.floor(det_box[1]) - 2, 0))
    x1, y1 = int(min(np.ceil(det_box[2]) + 2, w)), int(min(np.ceil(det_box[3]) + 2, h))
    if previous is not None and weight < 1.0:
        x0, y0 = min(x0, previous.x0), min(y0, previous.y0)
        x1, y1 = max(x1, previous.x1), max(y1, previous.y1)
    if x1 <= x0 or y1 <= y0:
        return None
    blend = det.window(x0, y0, x1, y1)
    if previous is not None and weight < 1.0:
        blend = weight * blend + (1.0 - weight) * previous.window(x0, y0, x1, y1)
    bits = clean_mask(blend, min_area=min_area)
    prob = np.where(bits, np.maximum(blend, 0.5), np.minimum(blend, 0.499)).astype(np.float32)
    out = BoxMask.from_full(prob)
    if out is None:
        return None
    velocity = previous.velocity if previous is not None else (0.0, 0.0)
    return BoxMask(out.x0 + x0, out.y0 + y0, out.prob, (h, w), velocity)
