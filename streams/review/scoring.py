"""A run's quality signal, from its JSONL: ``vis.quality.QualityPass`` over the records.

Contract: ``score_run(run)`` reads the records twice (``QualityPass``: collect, then score)
and returns ``RunQuality``: every track's ``TrackQuality`` with its ``review_score`` (the
mean of its instances') and frame range. ``annotated_records(run, quality)`` reads them a
third time and yields each record with ``instances[].quality`` filled and
``schema_version: "1.1"`` (docs/schema.md); ``write_quality_jsonl`` writes those lines.
Memory: per track a few numbers; per frame one record.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from streams.exports.common import box_local, progress
from streams.exports.records import RunRecords
from vis.quality import InstanceQuality, QualityPass, TrackQuality
from vis.schema import decode_record

SCHEMA_VERSION = "1.1"


@dataclasses.dataclass
class RunQuality:
    """Attributes:
    tracks: track id -> its ``TrackQuality`` (``review_score`` filled).
    first, last: track id -> first / last frame.
    """

    tracks: dict[int, TrackQuality]
    first: dict[int, int]
    last: dict[int, int]
    passes: QualityPass


def _frames(run: RunRecords, desc: str, show: bool) -> Iterator[tuple[dict[str, Any], Any]]:
    for rec in progress(run, desc, show):
        yield rec, decode_record(box_local(rec))  # box-local masks: no frame per instance


def score_run(run: RunRecords, *, show_progress: bool = False) -> RunQuality:
    passes = QualityPass()
    for _, frame in _frames(run, f"quality 1/2 {run.stream_id}", show_progress):
        passes.observe(frame, collect=True)
    tracks = passes.finish()
    sums: dict[int, float] = {}
    for _, frame in _frames(run, f"quality 2/2 {run.stream_id}", show_progress):
        for q in passes.observe(frame, collect=False):
            sums[q.track_id] = sums.get(q.track_id, 0.0) + q.review_score
    passes.finish()  # ready for another scoring pass
    tracks = {t: dataclasses.replace(q, review_score=sums[t] / q.frames) for t, q in tracks.items()}
    first = {t: s.first for t, s in run.tracks.items()}
    last = {t: s.last for t, s in run.tracks.items()}
    return RunQuality(tracks, first, last, passes)


def scored_frames(
    run: RunRecords, quality: RunQuality, *, show_progress: bool = False
) -> Iterator[tuple[dict[str, Any], Any, list[InstanceQuality]]]:
    """Each record, its ``FrameResult`` and its instances' ``InstanceQuality`` (same order)."""
    for rec, frame in _frames(run, f"review {run.stream_id}", show_progress):
        yield rec, frame, quality.passes.observe(frame, collect=False)
    quality.passes.finish()


def annotated_records(run: RunRecords, quality: RunQuality) -> Iterator[dict[str, Any]]:
    for rec, _, qs in scored_frames(run, quality):
        for inst, q in zip(rec["instances"], qs):
            inst["quality"] = q.to_json(quality.tracks[q.track_id].review_score)
        rec["schema_version"] = SCHEMA_VERSION
        yield rec


def write_quality_jsonl(run: RunRecords, quality: RunQuality, out: Path) -> Path:
    import json  # noqa: PLC0415

    with open(out, "w", encoding="utf-8") as f:
        for rec in annotated_records(run, quality):
            f.write(json.dumps(rec, separators=(",", ":")) + "\n")
    return out
