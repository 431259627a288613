"""CVAT for video 1.1 XML: one ``<track>`` of ``<mask>`` shapes per track id.

Contract: ``write_cvat`` writes ``<annotations>`` with ``<version>1.1``, ``<meta><task>``
(``size`` = last frame index + 1, ``mode`` interpolation, ``<labels>`` = the run's classes,
``<original_size>``) and a ``<track id label source="auto">`` per track (label = the class
given most often). Each frame the track is in gets ``<mask frame keyframe="1" outside="0"
occluded="0" rle left top width height z_order="0">`` (``rle``: CVAT's run lengths over the
mask's box, row by row, starting with a run of 0s). Every frame in which the track is
absent right after being present gets ``outside="1"`` (same shape), so the track is hidden
until it comes back. Every mask is a key frame: CVAT does not interpolate masks and keeps
only key shapes on import. Track ids in the file count from 0 in first-appearance order;
``source="auto"`` marks them as machine pre-annotations.
"""

from __future__ import annotations

import bisect
from pathlib import Path
from typing import Any
from xml.sax.saxutils import quoteattr

import numpy as np

from streams.exports.common import ExportResult, mask_pixels, progress
from streams.exports.records import RunRecords
from streams.exports.spool import TrackSpool
from vis.schema import decode_mask


def cvat_rle(mask: np.ndarray) -> tuple[str, int, int, int, int] | None:
    """(H, W) bool -> ``(rle, left, top, width, height)`` over the mask's tight box, or None
    for an empty mask. ``rle``: comma-separated run lengths of the box read row by row,
    starting with a (possibly 0) run of background."""
    ys, xs = np.nonzero(mask)
    if len(ys) == 0:
        return None
    return _box_rle(ys, xs)


def cvat_rle_of(rle: dict[str, Any]) -> tuple[str, int, int, int, int] | None:
    """``cvat_rle`` of a full-frame mask dict, from its own runs (``mask_pixels``): never a
    full frame per instance. A dict whose runs do not add up to its size is decoded as
    before (``decode_mask`` raises ``SchemaError`` naming the problem)."""
    pixels = mask_pixels(rle)
    if pixels is None:
        return cvat_rle(decode_mask(rle))
    ys, xs = pixels
    return _box_rle(ys, xs) if len(ys) else None


def _box_rle(ys: np.ndarray, xs: np.ndarray) -> tuple[str, int, int, int, int]:
    """Pixel coordinates (at least one) -> ``cvat_rle``'s tuple over their tight box."""
    top, left, bottom, right = ys.min(), xs.min(), ys.max(), xs.max()
    box = np.zeros((bottom - top + 1, right - left + 1), np.int8)
    box[ys - top, xs - left] = 1
    flat = box.ravel()
    change = np.flatnonzero(np.diff(flat)) + 1
    bounds = np.concatenate([[0], change, [flat.size]])
    runs = np.diff(bounds).tolist()
    if flat[0]:
        runs.insert(0, 0)
    return (
        ",".join(map(str, runs)),
        int(left),
        int(top),
        int(right - left + 1),
        int(bottom - top + 1),
    )


def _colour(class_id: int) -> str:
    rng = np.random.default_rng(class_id)
    return "#" + "".join(f"{int(v):02x}" for v in rng.integers(40, 230, 3))


def _meta(run: RunRecords) -> str:
    size = run.frame_indices[-1] + 1
    labels = "".join(
        f"<label><name>{_esc(name)}</name><color>{_colour(c)}</color><type>any</type>"
        "<attributes></attributes></label>"
        for c, name in run.label_list
    )
    return (
        f"<meta><task><id>1</id><name>{_esc(run.stream_id)}</name><size>{size}</size>"
        "<mode>interpolation</mode><overlap>0</overlap><start_frame>0</start_frame>"
        f"<stop_frame>{size - 1}</stop_frame><labels>{labels}</labels>"
        f"<original_size><width>{run.width}</width><height>{run.height}</height>"
        "</original_size></task></meta>"
    )


def _esc(text: str) -> str:
    return quoteattr(text)[1:-1]


def _mask_el(frame: int, shape: list[Any], outside: bool) -> str:
    rle, left, top, width, height = shape
    return (
        f'    <mask frame="{frame}" keyframe="1" outside="{int(outside)}" occluded="0" '
        f'rle="{rle}" left="{left}" top="{top}" width="{width}" height="{height}" '
        'z_order="0"></mask>\n'
    )


def write_cvat(run: RunRecords, out: Path, *, show_progress: bool = False) -> ExportResult:
    frames = run.frame_indices
    n = 0
    with TrackSpool(out.parent) as spool:
        for rec in progress(run, f"cvat {run.stream_id}", show_progress):
            for inst in rec["instances"]:
                shape = cvat_rle_of(inst["mask"])
                if shape is not None:
                    spool.add(inst["track_id"], rec["frame_index"], list(shape))
                    n += 1
        with open(out, "w", encoding="utf-8") as f:
            f.write('<?xml version="1.0" encoding="utf-8"?>\n<annotations>\n')
            f.write("  <version>1.1</version>\n  " + _meta(run) + "\n")
            for xml_id, (tid, span) in enumerate(run.tracks.items()):
                label = _esc(run.labels[span.class_id])
                f.write(f'  <track id="{xml_id}" label="{label}" source="auto">\n')
                last: tuple[int, list[Any]] | None = None
                for frame, shape in spool.track(tid):
                    if last is not None:
                        _close_gap(f, frames, last, frame)
                    f.write(_mask_el(frame, shape, False))
                    last = (frame, shape)
                if last is not None:
                    _close_gap(f, frames, last, None)
                f.write("  </track>\n")
            f.write("</annotations>\n")
    return ExportResult("cvat", out, len(frames), n, len(run.tracks))


def _close_gap(f: Any, frames: list[int], last: tuple[int, list[Any]], nxt: int | None) -> None:
    """An ``outside`` shape at the first recorded frame after ``last`` if the track is not
    in it (``nxt``: the track's next frame, None = it never comes back)."""
    i = bisect.bisect_right(frames, last[0])
    if i < len(frames) and frames[i] != nxt:
        f.write(_mask_el(frames[i], last[1], True))
