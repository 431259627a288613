"""COCO run-length encoding of masks, full-frame or box-relative, never pasting a full frame
to encode a box-local mask.

Two forms of one mask (a JSON-ready dict each):

* full-frame (``vis.frame/1``): ``{"size": [H, W], "counts": str}``, COCO compressed RLE of
  the whole frame;
* box-relative (``vis.frame/2``): ``{"x": x0, "y": y0, "size": [h, w], "counts": str}``, COCO
  compressed RLE of the crop whose top-left pixel is (x0, y0); the crop is tight around the
  mask's pixels; an empty mask is ``{"x": 0, "y": 0, "size": [0, 0], "counts": ""}``.

The crop dict without ``x``/``y`` is itself a valid COCO RLE (pycocotools decodes it), and a
mask dict says which form it is by having ``x`` and ``y`` or not. Errors raise ``ValueError``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from pycocotools import mask as mask_utils

from vis.ops.boxes import mask_to_box
from vis.ops.masks import BoxMask

EMPTY_BOX_RLE = {"x": 0, "y": 0, "size": [0, 0], "counts": ""}


def is_box_relative(rle: dict[str, Any]) -> bool:
    """True for the ``vis.frame/2`` form (it has ``x`` and ``y``)."""
    return "x" in rle and "y" in rle


def encode_full(masks: np.ndarray) -> list[dict[str, Any]]:
    """(N, H, W) bool full-frame masks -> N full-frame RLE dicts."""
    if len(masks) == 0:
        return []
    rles = mask_utils.encode(np.asfortranarray(masks.transpose(1, 2, 0).astype(np.uint8)))
    return [_jsonable(r) for r in rles]


def _jsonable(r: dict[str, Any]) -> dict[str, Any]:
    return {"size": [int(r["size"][0]), int(r["size"][1])], "counts": r["counts"].decode("ascii")}


def _tight(mask: BoxMask) -> tuple[int, int, np.ndarray] | None:
    """(x0, y0, bits) of the smallest crop holding the mask's pixels; None if it has none."""
    box = mask_to_box(mask.bits)
    if box is None:
        return None
    x0, y0, x1, y1 = (int(v) for v in box)
    return mask.x0 + x0, mask.y0 + y0, mask.bits[y0:y1, x0:x1]


def encode_box(mask: BoxMask) -> dict[str, Any]:
    """A box-local mask -> its box-relative RLE dict (``vis.frame/2``)."""
    tight = _tight(mask)
    if tight is None:
        return dict(EMPTY_BOX_RLE, size=[0, 0])
    x0, y0, crop = tight
    r = mask_utils.encode(np.asfortranarray(crop[:, :, None], dtype=np.uint8))[0]
    return {"x": x0, "y": y0, **_jsonable(r)}


def _run_lengths(flat: np.ndarray) -> list[int]:
    """Column-major flattened bits -> COCO run lengths (the first run counts zeros)."""
    change = np.flatnonzero(flat[1:] != flat[:-1]) + 1
    runs = np.diff(np.concatenate([[0], change, [len(flat)]])).tolist()
    return [0, *runs] if len(flat) and flat[0] else runs


def encode_box_as_full(mask: BoxMask) -> dict[str, Any]:
    """A box-local mask -> the full-frame RLE dict (``vis.frame/1``), from its crop's columns
    only (cost: crop width x frame height)."""
    h, w = mask.image_size
    tight = _tight(mask)
    if tight is None:
        runs = [h * w]
    else:
        x0, y0, crop = tight
        strip = np.zeros((crop.shape[1], h), bool)  # the crop's columns, each a full column
        strip[:, y0 : y0 + crop.shape[0]] = crop.T
        runs = _run_lengths(strip.ravel())
        runs[0] += x0 * h
        after = (w - x0 - crop.shape[1]) * h
        if after:
            if len(runs) % 2:  # the last run counts zeros
                runs[-1] += after
            else:
                runs.append(after)
    r = mask_utils.frPyObjects({"size": [h, w], "counts": runs}, h, w)
    return _jsonable(r)


def _decode_coco(size: Any, counts: Any) -> np.ndarray:
    h, w = (int(v) for v in size)
    if h < 0 or w < 0:
        raise ValueError(f"negative size {[h, w]}")
    if not isinstance(counts, str):
        raise ValueError("counts must be a string")
    if h == 0 or w == 0:
        if counts:
            raise ValueError("counts of an empty mask must be empty")
        return np.zeros((h, w), bool)
    rle = {"size": [h, w], "counts": counts.encode("ascii")}
    try:
        m = mask_utils.decode(rle)
        area = int(mask_utils.area(rle))
    except Exception as exc:  # noqa: BLE001 - pycocotools raises many types
        raise ValueError(str(exc)) from exc
    if m.shape != (h, w) or area != int(m.sum()):
        raise ValueError("decoded size does not match")
    return m.astype(bool)


def decode_full(rle: dict[str, Any]) -> np.ndarray:
    """A full-frame RLE dict -> (H, W) bool."""
    try:
        return _decode_coco(rle["size"], rle["counts"])
    except (KeyError, TypeError) as exc:
        raise ValueError(f"missing or bad field: {exc}") from exc


def decode_box(rle: dict[str, Any], image_size: tuple[int, int]) -> BoxMask:
    """Either form -> a ``BoxMask`` in an image of ``image_size`` (H, W).

    Raises:
        ValueError: malformed, or (box-relative) a crop reaching outside the image.
    """
    h, w = image_size
    if not is_box_relative(rle):
        full = decode_full(rle)
        if full.shape != (h, w):
            raise ValueError(f"mask size {list(full.shape)} != frame {[h, w]}")
        return BoxMask.crop_or_empty(full)
    try:
        x0, y0 = rle["x"], rle["y"]
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in (x0, y0)):
            raise ValueError("x and y must be integers")
        crop = _decode_coco(rle["size"], rle["counts"])
    except (KeyError, TypeError) as exc:
        raise ValueError(f"missing or bad field: {exc}") from exc
    ch, cw = crop.shape
    if ch == 0 or cw == 0:
        return BoxMask.empty((h, w))
    if x0 < 0 or y0 < 0 or x0 + cw > w or y0 + ch > h:
        raise ValueError(f"crop {[x0, y0, cw, ch]} (x, y, w, h) outside the {w}x{h} frame")
    return BoxMask(x0, y0, crop.astype(np.float32), (h, w))


def to_full_rle(rle: dict[str, Any], image_size: tuple[int, int]) -> dict[str, Any]:
    """Either form -> the full-frame RLE dict (what COCO-style files store)."""
    if not is_box_relative(rle):
        return {"size": list(rle["size"]), "counts": rle["counts"]}
    return encode_box_as_full(decode_box(rle, image_size))


def to_full(rle: dict[str, Any], image_size: tuple[int, int]) -> np.ndarray:
    """Either form -> (H, W) bool."""
    if not is_box_relative(rle):
        return decode_full(rle)
    return decode_box(rle, image_size).to_full()
