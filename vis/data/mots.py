"""MOTS text ground truth (KITTI MOTS / MOTSChallenge layout).

One line per object and frame: ``frame track_id class_id height width rle``, where ``rle`` is
the COCO compressed RLE string and ``track_id = class_id * 1000 + instance`` (KITTI MOTS
convention; id 10000 marks ignore regions).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np

from vis.schema import decode_mask, encode_masks


def format_lines(frame: int, track_ids: np.ndarray, class_ids: np.ndarray,
                 masks: np.ndarray) -> list[str]:
    """MOTS lines of one frame: (N,) ids, (N,) classes, (N, H, W) bool masks."""
    rles = encode_masks(masks)
    return [f"{frame} {int(t)} {int(c)} {r['size'][0]} {r['size'][1]} {r['counts']}"
            for t, c, r in zip(track_ids, class_ids, rles)]


def write_mots(path: str | Path, lines: Iterable[str]) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="ascii") as fh:
        for line in lines:
            fh.write(line + "\n")


def read_mots(path: str | Path) -> Iterator[tuple[int, int, int, np.ndarray]]:
    """Yield (frame, track_id, class_id, (H, W) bool mask) for every line of a MOTS file."""
    with open(path, encoding="ascii") as fh:
        for line in fh:
            parts = line.split()
            if len(parts) != 6:
                continue
            f, t, c, h, w, counts = parts
            yield int(f), int(t), int(c), decode_mask({"size": [int(h), int(w)], "counts": counts})


def read_mots_by_frame(path: str | Path) -> dict[int, list[tuple[int, int, np.ndarray]]]:
    """Ground truth grouped by frame: {frame: [(track_id, class_id, mask), ...]}."""
    out: dict[int, list] = {}
    for f, t, c, m in read_mots(path):
        out.setdefault(f, []).append((t, c, m))
    return out
