"""Small helpers the export formats share: frame file names, progress, masks from records.

Contract: ``frame_file(stream_id, frame_index)`` is the image name every format refers to
(``<safe stream id>/<frame index, 6 digits>.jpg``, what ``--video`` / ``images: true`` write);
``progress(run, desc, enabled)`` iterates a run's records with a tqdm bar; ``exclusive_masks``
turns one record's possibly overlapping masks into disjoint ones (formats that store one
object per pixel: MOTS); ``mask_pixels`` and ``box_local`` read a full-frame mask's pixels
from its runs, at a cost of its pixels and runs, never a full frame per instance.
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
from pycocotools import mask as mask_utils
from tqdm import tqdm

from streams.exports.records import RunRecords
from streams.sinks.paths import safe_name
from vis.ops.masks import BoxMask
from vis.ops.rle import encode_box
from vis.schema import SCHEMA_V2, decode_mask


def frame_file(stream_id: str, frame_index: int) -> str:
    """``<safe_name(stream_id)>/<frame_index:06d>.jpg``: the image a format's entry names."""
    return f"{safe_name(stream_id)}/{frame_index:06d}.jpg"


def progress(run: RunRecords, desc: str, enabled: bool) -> Iterator[dict[str, Any]]:
    """``run.records()`` with a tqdm bar on stderr (total = the run's frames)."""
    bar = tqdm(
        run.records(),
        total=len(run.frame_indices),
        desc=desc[:32],
        unit="frame",
        disable=not enabled,
        file=sys.stderr,
        dynamic_ncols=True,
    )
    try:
        yield from bar
    finally:
        bar.close()


def rle_area(rle: dict[str, Any]) -> int:
    """Pixels of a record's ``mask`` (COCO RLE with str counts), without decoding it."""
    return int(mask_utils.area({"size": rle["size"], "counts": rle["counts"].encode("ascii")}))


def xywh(bbox: list[float]) -> list[float]:
    """``x1, y1, x2, y2`` -> ``x, y, w, h`` (COCO, MOT)."""
    x1, y1, x2, y2 = bbox
    return [round(x1, 2), round(y1, 2), round(x2 - x1, 2), round(y2 - y1, 2)]


def exclusive_masks(record: dict[str, Any]) -> tuple[np.ndarray, list[dict[str, Any]]]:
    """One object per pixel: where masks overlap, the higher-scoring instance keeps the pixel
    (ties: the lower track id).

    Returns:
        ``index (H, W) int32`` (0 = background, k = ``instances[k - 1]``) and the record's
        instances in that numbering.
    """
    h, w = record["height"], record["width"]
    insts = record["instances"]
    index = np.zeros((h, w), np.int32)
    order = sorted(range(len(insts)), key=lambda i: (insts[i]["score"], -insts[i]["track_id"]))
    for i in order:  # painted from the weakest, so the strongest ends on top
        index[decode_mask(insts[i]["mask"])] = i + 1
    return index, insts


def encode_rle(mask: np.ndarray) -> dict[str, Any]:
    """(H, W) bool -> COCO compressed RLE with str counts."""
    r = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {"size": [int(r["size"][0]), int(r["size"][1])], "counts": r["counts"].decode("ascii")}


@dataclasses.dataclass(frozen=True)
class ExportResult:
    """What one export wrote.

    Attributes:
        format: the format's name (``mots``, ``coco``, ...).
        path: the file or folder written.
        frames: records read.
        instances: objects written (instance masks, boxes or per-frame shapes).
        tracks: distinct track ids written.
    """

    format: str
    path: Path
    frames: int
    instances: int
    tracks: int


def mask_pixels(rle: Any) -> tuple[np.ndarray, np.ndarray] | None:
    """A full-frame mask dict (``vis.frame/1``) -> ``(ys, xs)`` of its pixels (int64, empty
    for an empty mask), read from its runs: the work is its pixels and runs, not its frame.
    None for anything else (a box-relative or malformed dict: decode it as usual)."""
    if not isinstance(rle, dict) or "x" in rle or not isinstance(rle.get("counts"), str):
        return None
    size = rle.get("size")
    if not (
        isinstance(size, list) and len(size) == 2
        and all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in size)
    ):  # fmt: skip
        return None
    runs = _coco_counts(rle["counts"])
    if runs is None or any(r < 0 for r in runs) or sum(runs) != size[0] * size[1]:
        return None
    c = np.asarray(runs, np.int64)
    starts = (np.cumsum(c) - c)[1::2]  # runs alternate 0s and 1s, starting with 0s
    lengths = c[1::2]
    total = int(lengths.sum())
    # each pixel of a run of 1s: the run's start plus its offset in the run (column-major)
    offsets = np.repeat(starts - (np.cumsum(lengths) - lengths), lengths)
    pos = np.arange(total, dtype=np.int64) + offsets
    return pos % size[0], pos // size[0]


def _coco_counts(text: str) -> list[int] | None:
    """COCO's compressed RLE string -> run lengths (pycocotools' ``rleFrString``); None if
    the string is cut short."""
    counts: list[int] = []
    p, n = 0, len(text)
    while p < n:
        x = k = 0
        more = True
        while more:
            if p >= n:
                return None
            c = ord(text[p]) - 48
            x |= (c & 0x1F) << (5 * k)
            more = bool(c & 0x20)
            p += 1
            k += 1
            if not more and c & 0x10:
                x |= -1 << (5 * k)
        if len(counts) > 2:
            x += counts[-2]
        counts.append(x)
    return counts


def box_local(record: dict[str, Any]) -> dict[str, Any]:
    """A valid ``vis.frame/1`` record -> the same frame as ``vis.frame/2`` (box-relative
    masks), so decoding it (``decode_record``) costs each mask's box, not a frame per
    instance. A record with a mask ``mask_pixels`` cannot read is returned as it is."""
    if record.get("schema") == SCHEMA_V2:
        return record
    size = (record["height"], record["width"])
    instances = []
    for inst in record["instances"]:
        pixels = mask_pixels(inst["mask"])
        if pixels is None or list(inst["mask"]["size"]) != list(size):
            return record  # decoded as before: the reader names what is wrong
        ys, xs = pixels
        if not len(ys):
            mask = BoxMask.empty(size)
        else:
            top, left = int(ys.min()), int(xs.min())
            crop = np.zeros((int(ys.max()) - top + 1, int(xs.max()) - left + 1), np.float32)
            crop[ys - top, xs - left] = 1.0
            mask = BoxMask(left, top, crop, size)
        instances.append({**inst, "mask": encode_box(mask)})
    return {**record, "schema": SCHEMA_V2, "instances": instances}
