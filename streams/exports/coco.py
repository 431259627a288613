"""COCO instances JSON (one per video) and YouTube-VIS 2019 JSON.

Contract:
* ``write_coco``: ``images`` (one per record: ``id = frame_index + 1``, ``file_name =
  frame_file(...)``, ``frame_id``, ``video_id``), ``annotations`` (one per instance: COCO
  compressed RLE ``segmentation``, ``area``, ``bbox`` x/y/w/h, ``iscrowd: 0``, ``score``,
  ``track_id``, ``video_id``, ``category_id`` = the class of that frame), ``categories``
  (``id`` = class id), ``videos`` (the one stream). Written while reading: memory is one
  record. ``pycocotools.coco.COCO`` loads it and ``vis-pipeline train --coco`` trains on it.
* ``write_ytvis``: ``videos`` (``file_names`` of every record), ``annotations`` (one per
  track: ``segmentations`` / ``areas`` / ``bboxes`` with one entry per video frame, ``null``
  where the track is absent; ``category_id`` = the class given most often; ``score`` = mean
  score; ``track_id``), ``categories``. Instances are regrouped by track in a ``TrackSpool``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, TextIO

from streams.exports.common import ExportResult, frame_file, progress, rle_area, xywh
from streams.exports.records import RunRecords
from streams.exports.spool import TrackSpool


def _categories(run: RunRecords) -> list[dict[str, Any]]:
    return [{"id": c, "name": name, "supercategory": "object"} for c, name in run.label_list]


def _dump_list(f: TextIO, key: str, items: Any, *, first: bool = False) -> int:
    """Write ``"key": [item, item, ...]`` one item at a time; returns the count."""
    f.write(("" if first else ",\n") + json.dumps(key) + ": [")
    n = 0
    for item in items:
        f.write((",\n" if n else "\n") + json.dumps(item, separators=(",", ":")))
        n += 1
    f.write("\n]")
    return n


def write_coco(run: RunRecords, out: Path, *, show_progress: bool = False) -> ExportResult:
    video = {"id": 1, "name": run.stream_id, "width": run.width, "height": run.height}
    images = (
        {
            "id": f + 1,
            "file_name": frame_file(run.stream_id, f),
            "width": run.width,
            "height": run.height,
            "frame_id": f,
            "video_id": 1,
        }
        for f in run.frame_indices
    )

    def annotations() -> Any:
        aid = 0
        for rec in progress(run, f"coco {run.stream_id}", show_progress):
            for inst in rec["instances"]:
                aid += 1
                yield {
                    "id": aid,
                    "image_id": rec["frame_index"] + 1,
                    "category_id": inst["class_id"],
                    "segmentation": inst["mask"],
                    "area": rle_area(inst["mask"]),
                    "bbox": xywh(inst["bbox"]),
                    "iscrowd": 0,
                    "score": inst["score"],
                    "track_id": inst["track_id"],
                    "video_id": 1,
                }

    with open(out, "w", encoding="utf-8") as f:
        f.write("{\n" + json.dumps("info") + ": ")
        f.write(json.dumps({"description": f"vis-pipeline export of {run.stream_id}"}))
        _dump_list(f, "videos", [video])
        _dump_list(f, "categories", _categories(run))
        _dump_list(f, "images", images)
        n = _dump_list(f, "annotations", annotations())
        f.write("\n}\n")
    return ExportResult("coco", out, len(run.frame_indices), n, len(run.tracks))


def write_ytvis(run: RunRecords, out: Path, *, show_progress: bool = False) -> ExportResult:
    position = {f: i for i, f in enumerate(run.frame_indices)}
    length = len(run.frame_indices)
    n = 0
    with TrackSpool(out.parent) as spool:
        for rec in progress(run, f"ytvis {run.stream_id}", show_progress):
            pos = position[rec["frame_index"]]
            for inst in rec["instances"]:
                spool.add(inst["track_id"], pos, [inst["mask"], inst["bbox"], inst["score"]])
                n += 1

        def annotations() -> Any:
            for aid, (tid, span) in enumerate(run.tracks.items(), 1):
                segs: list[Any] = [None] * length
                areas: list[Any] = [None] * length
                boxes: list[Any] = [None] * length
                scores = []
                for pos, (rle, bbox, score) in spool.track(tid):
                    segs[pos], areas[pos], boxes[pos] = rle, rle_area(rle), xywh(bbox)
                    scores.append(score)
                yield {
                    "id": aid,
                    "video_id": 1,
                    "category_id": span.class_id,
                    "segmentations": segs,
                    "areas": areas,
                    "bboxes": boxes,
                    "iscrowd": 0,
                    "width": run.width,
                    "height": run.height,
                    "length": length,
                    "score": round(sum(scores) / len(scores), 4),
                    "track_id": tid,
                }

        video = {
            "id": 1,
            "name": run.stream_id,
            "width": run.width,
            "height": run.height,
            "length": length,
            "file_names": [frame_file(run.stream_id, f) for f in run.frame_indices],
        }
        with open(out, "w", encoding="utf-8") as f:
            f.write("{\n" + json.dumps("info") + ": ")
            f.write(json.dumps({"description": f"vis-pipeline export of {run.stream_id}"}))
            _dump_list(f, "licenses", [])
            _dump_list(f, "videos", [video])
            _dump_list(f, "categories", _categories(run))
            _dump_list(f, "annotations", annotations())
            f.write("\n}\n")
    return ExportResult("ytvis", out, length, n, len(run.tracks))
