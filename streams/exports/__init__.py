"""Annotation-tool exports of a run: MOTS, COCO, YouTube-VIS, CVAT for video, MOT.

Contract: ``export_run(jsonl, formats, output_dir)`` reads one stream's ``vis.frame`` JSONL
(``RunRecords``) and writes each format to ``export_path(output_dir, stream_id, suffix)``
(suffixes in ``FORMATS``); with ``video`` it also writes the frames the records name as
``<output_dir>/images/<frame_file>`` (what the COCO, YouTube-VIS and CVAT entries refer to).
Bad input raises ``ExportError`` naming the input and the fix. Described in docs/exports.md.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import cv2
from tqdm import tqdm

from streams.exports.coco import write_coco, write_ytvis
from streams.exports.common import ExportResult, frame_file
from streams.exports.cvat import write_cvat
from streams.exports.mots import write_mot_txt, write_mots_png, write_mots_txt
from streams.exports.records import ExportError, RunRecords, video_frames
from streams.sinks.paths import export_path, make_output_folder

Writer = Callable[..., ExportResult]

#: format name -> (writer, file suffix; no leading dot = a folder)
FORMATS: dict[str, tuple[Writer, str]] = {
    "mots": (write_mots_txt, ".mots.txt"),
    "mots-png": (write_mots_png, "mots_png"),
    "coco": (write_coco, ".coco.json"),
    "ytvis": (write_ytvis, ".ytvis.json"),
    "cvat": (write_cvat, ".cvat.xml"),
    "mot": (write_mot_txt, ".mot.txt"),
}


def check_formats(formats: Sequence[str]) -> list[str]:
    """The formats, checked; ``ExportError`` names an unknown one and lists the known."""
    for name in formats:
        if name not in FORMATS:
            raise ExportError(f"unknown export format {name!r}; choose from {', '.join(FORMATS)}")
    if not formats:
        raise ExportError(f"no export format given; choose from {', '.join(FORMATS)}")
    return list(dict.fromkeys(formats))


def export_run(
    jsonl: str | Path,
    formats: Sequence[str],
    output_dir: str | Path,
    *,
    video: str | Path | None = None,
    show_progress: bool = False,
) -> list[ExportResult]:
    """Export one stream's JSONL in every format given; returns what each wrote."""
    formats = check_formats(formats)
    run = RunRecords.open(jsonl)
    out = Path(output_dir)
    make_output_folder(out, ExportError, named=output_dir)
    results = []
    for name in formats:
        writer, suffix = FORMATS[name]
        results.append(
            writer(run, export_path(out, run.stream_id, suffix), show_progress=show_progress)
        )
    if video is not None:
        write_frames(run, video, out / "images", show_progress=show_progress)
    return results


def write_frames(
    run: RunRecords, video: str | Path, images_dir: Path, *, show_progress: bool = False
) -> int:
    """Decode ``video`` and write the frames ``run`` has records of as JPEGs named by
    ``frame_file``; returns how many. ``ExportError`` if the video cannot be read or ends
    before the last record's frame."""
    wanted = set(run.frame_indices)
    written = 0
    bar = tqdm(total=len(wanted), desc="frames", unit="frame", disable=not show_progress,
               file=sys.stderr)  # fmt: skip
    try:
        for index, image in video_frames(run, video, wanted):
            path = images_dir / frame_file(run.stream_id, index)
            path.parent.mkdir(parents=True, exist_ok=True)
            if not cv2.imwrite(str(path), image, [cv2.IMWRITE_JPEG_QUALITY, 95]):
                raise ExportError(f"cannot write {path}: check the output folder is writable")
            written += 1
            bar.update()
    finally:
        bar.close()
    return written


__all__ = ["FORMATS", "ExportError", "ExportResult", "RunRecords", "check_formats", "export_run"]
