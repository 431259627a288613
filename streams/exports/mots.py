"""MOTS (MOTSChallenge text and the KITTI-MOTS PNG instance maps) and MOT box text.

Contract:
* ``write_mots_txt``: ``<out>`` gets one line per object and frame, ``frame obj_id class_id
  height width rle`` (MOTSChallenge: frames counted from 1, ``rle`` = COCO compressed RLE),
  objects disjoint (overlaps go to the higher score). ``obj_id = class_id * 1000 + n``, ``n``
  numbering a class's tracks from 1 in order of first appearance; a track keeps the class it
  was given most often. The ``obj_id -> track_id`` table goes to ``<out minus .txt>.ids.csv``.
* ``write_mots_png``: ``<out>/instances/<frame:06d>.png``, 16-bit, pixel = ``obj_id`` as above
  (0 background), plus ``instances/labels.txt`` (line k = the label of class k), the layout
  Datumaro's ``mots`` importer reads. Only frames with objects get a PNG.
* ``write_mot_txt``: ``frame,track_id,x,y,w,h,score,-1,-1,-1`` (MOT results, frames from 1).
More than 999 tracks of one class cannot be numbered in MOTS: ``ExportError``.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from streams.exports.common import ExportResult, encode_rle, exclusive_masks, progress, xywh
from streams.exports.records import ExportError, RunRecords

MAX_PER_CLASS = 999


def mots_ids(run: RunRecords) -> dict[int, int]:
    """track id -> MOTS object id (``class_id * 1000 + n``); raises ``ExportError``."""
    counts: dict[int, int] = {}
    ids = {}
    for tid, span in run.tracks.items():  # first appearance order
        cid = span.class_id
        counts[cid] = counts.get(cid, 0) + 1
        if counts[cid] > MAX_PER_CLASS:
            raise ExportError(
                f"{run.path}: more than {MAX_PER_CLASS} {run.labels[cid]!r} tracks; MOTS ids "
                "(class * 1000 + n) cannot number them: export coco, ytvis or cvat instead"
            )
        ids[tid] = cid * 1000 + counts[cid]
    return ids


def write_mots_txt(run: RunRecords, out: Path, *, show_progress: bool = False) -> ExportResult:
    ids = mots_ids(run)
    n = 0
    tracks = set()
    with open(out, "w", encoding="ascii") as f:
        for rec in progress(run, f"mots {run.stream_id}", show_progress):
            index, insts = exclusive_masks(rec)
            for k, inst in enumerate(insts, 1):
                mask = index == k
                if not mask.any():
                    continue  # wholly covered by stronger objects
                oid = ids[inst["track_id"]]
                h, w = rec["height"], rec["width"]
                rle = encode_rle(mask)["counts"]
                f.write(f"{rec['frame_index'] + 1} {oid} {oid // 1000} {h} {w} {rle}\n")
                n += 1
                tracks.add(oid)
    table = out.with_name(out.name.removesuffix(".txt") + ".ids.csv")
    table.write_text(
        "mots_id,track_id,label\n"
        + "".join(f"{o},{t},{run.labels[o // 1000]}\n" for t, o in ids.items())
    )
    return ExportResult("mots", out, len(run.frame_indices), n, len(tracks))


def write_mots_png(run: RunRecords, out: Path, *, show_progress: bool = False) -> ExportResult:
    ids = mots_ids(run)
    folder = out / "instances"
    folder.mkdir(parents=True, exist_ok=True)
    top = max(run.labels, default=0)
    (folder / "labels.txt").write_text(
        "".join(f"{run.labels.get(c, str(c))}\n" for c in range(1, top + 1))
    )
    n = 0
    tracks = set()
    for rec in progress(run, f"mots-png {run.stream_id}", show_progress):
        if not rec["instances"]:
            continue
        index, insts = exclusive_masks(rec)
        lut = np.array([0] + [ids[i["track_id"]] for i in insts], np.uint16)
        image = lut[index]
        present = set(np.unique(image).tolist()) - {0}
        n += len(present)
        tracks |= present
        path = folder / f"{rec['frame_index']:06d}.png"
        if not cv2.imwrite(str(path), image):
            raise ExportError(f"cannot write {path}: check the output folder is writable")
    return ExportResult("mots-png", out, len(run.frame_indices), n, len(tracks))


def write_mot_txt(run: RunRecords, out: Path, *, show_progress: bool = False) -> ExportResult:
    n = 0
    with open(out, "w", encoding="ascii") as f:
        for rec in progress(run, f"mot {run.stream_id}", show_progress):
            for inst in rec["instances"]:
                x, y, w, h = xywh(inst["bbox"])
                f.write(
                    f"{rec['frame_index'] + 1},{inst['track_id']},{x},{y},{w},{h},"
                    f"{inst['score']},-1,-1,-1\n"
                )
                n += 1
    return ExportResult("mot", out, len(run.frame_indices), n, len(run.tracks))
