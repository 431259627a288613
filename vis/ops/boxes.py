"""Box ops. Boxes are (N, 4) float arrays of x1, y1, x2, y2 in pixels."""

from __future__ import annotations

import cv2
import numpy as np


def box_area(boxes: np.ndarray) -> np.ndarray:
    """(N, 4) -> (N,) areas (0 for degenerate boxes)."""
    b = np.asarray(boxes, np.float64).reshape(-1, 4)
    return np.clip(b[:, 2] - b[:, 0], 0, None) * np.clip(b[:, 3] - b[:, 1], 0, None)


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(N, 4), (M, 4) -> (N, M) IoU; empty inputs give an empty matrix."""
    a = np.asarray(a, np.float64).reshape(-1, 4)
    b = np.asarray(b, np.float64).reshape(-1, 4)
    if len(a) == 0 or len(b) == 0:
        return np.zeros((len(a), len(b)), np.float64)
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    wh = np.clip(rb - lt, 0, None)
    inter = wh[..., 0] * wh[..., 1]
    union = box_area(a)[:, None] + box_area(b)[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)


def support_rect(mask: np.ndarray) -> tuple[int, int, int, int] | None:
    """(H, W) bool -> (x0, y0, x1, y1) int rectangle of its true pixels (x1, y1 exclusive),
    or None if it has none. One OpenCV pass (called on every warped mask of every frame)."""
    if mask.size == 0:
        return None
    x, y, w, h = cv2.boundingRect(np.ascontiguousarray(mask).view(np.uint8))
    return None if w == 0 else (x, y, x + w, y + h)


def mask_to_box(mask: np.ndarray) -> np.ndarray | None:
    """(H, W) bool -> (4,) float32 tight box (x2, y2 exclusive), or None if empty."""
    r = support_rect(mask)
    return None if r is None else np.array(r, np.float32)


def masks_to_boxes(masks: np.ndarray) -> np.ndarray:
    """(N, H, W) bool -> (N, 4) float32 tight boxes (zeros for empty masks)."""
    out = np.zeros((len(masks), 4), np.float32)
    for i, m in enumerate(masks):
        b = mask_to_box(m)
        if b is not None:
            out[i] = b
    return out


def xyxy_to_cxcysr(box: np.ndarray) -> np.ndarray:
    """(4,) x1 y1 x2 y2 -> (4,) centre x, centre y, area, aspect ratio w/h."""
    w = max(float(box[2] - box[0]), 1e-3)
    h = max(float(box[3] - box[1]), 1e-3)
    return np.array([box[0] + w / 2, box[1] + h / 2, w * h, w / h], np.float64)


def cxcysr_to_xyxy(state: np.ndarray) -> np.ndarray:
    """(>=4,) centre x, centre y, area, ratio -> (4,) x1 y1 x2 y2."""
    s = max(float(state[2]), 1e-6)
    r = max(float(state[3]), 1e-6)
    w = np.sqrt(s * r)
    h = s / w
    return np.array(
        [state[0] - w / 2, state[1] - h / 2, state[0] + w / 2, state[1] + h / 2], np.float64
    )


def nms(
    boxes: np.ndarray,
    scores: np.ndarray,
    iou_threshold: float,
    class_ids: np.ndarray | None = None,
) -> np.ndarray:
    """Greedy non-maximum suppression.

    Args:
        boxes: (N, 4) x1, y1, x2, y2.
        scores: (N,).
        iou_threshold: a box overlapping a kept, higher-scoring box by more than this IoU is
            dropped.
        class_ids: (N,) optional; boxes of different classes never suppress each other.

    Returns:
        (K,) int64 indices of the kept boxes, highest score first.
    """
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    order = np.argsort(-np.asarray(scores, np.float64).reshape(-1), kind="stable")
    if class_ids is not None and len(boxes):
        # shift each class into its own region of the plane so classes never overlap
        span = float(boxes.max() - boxes.min()) + 1.0
        boxes = boxes + (np.asarray(class_ids, np.float64).reshape(-1, 1) * span)
    keep: list[int] = []
    while len(order):
        i = int(order[0])
        keep.append(i)
        if len(order) == 1:
            break
        ious = box_iou(boxes[i : i + 1], boxes[order[1:]])[0]
        order = order[1:][ious <= iou_threshold]
    return np.asarray(keep, np.int64)
