"""Small helpers the export formats share: frame file names, progress, masks from records.

Contract: ``frame_file(stream_id, frame_index)`` is the image name every format refers to
(``<safe stream id>/<frame index, 6 digits>.jpg``, what ``--video`` / ``images: true`` write);
``progress(run, desc, enabled)`` iterates a run's records with a tqdm bar; ``exclusive_masks``
turns one record's possibly overlapping masks into disjoint ones (formats that store one
object per pixel: MOTS).
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
from vis.schema import decode_mask


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
