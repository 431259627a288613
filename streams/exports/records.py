"""A finished run of one stream, read from its ``vis.frame`` JSONL file for exporting.

Contract: ``RunRecords.open(path)`` reads the file once, validates every line and keeps only
a small index (frame indices, frame size, class labels, per-track spans and class votes);
``records()`` reads it again, one record (a dict) at a time, so an export's memory does not
grow with the length of the video. A file that is missing, empty, malformed or mixes
streams raises ``ExportError`` naming the file, the line and the fix.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Collection, Iterator
from pathlib import Path
from typing import Any

from vis.schema import RecordLineError, iter_v1_records


class ExportError(ValueError):
    """Input that cannot be exported (the message names the input and the fix)."""


@dataclasses.dataclass
class TrackSpan:
    """What the index keeps of one track: first/last frame, frames seen, class votes."""

    first: int
    last: int
    frames: int = 0
    votes: Counter = dataclasses.field(default_factory=Counter)

    @property
    def class_id(self) -> int:
        """The class the track was given most often (ties: the lower class id)."""
        return min(self.votes.items(), key=lambda kv: (-kv[1], kv[0]))[0]


@dataclasses.dataclass
class RunRecords:
    """Index of one stream's JSONL file.

    Attributes:
        path: the file.
        stream_id: the records' stream.
        width, height: frame size.
        frame_indices: ``frame_index`` of every record, in file order (increasing).
        labels: class id -> label, for every class that occurs.
        tracks: track id -> ``TrackSpan``.
        instances: number of instances over all records.
    """

    path: Path
    stream_id: str
    width: int
    height: int
    frame_indices: list[int]
    labels: dict[int, str]
    tracks: dict[int, TrackSpan]
    instances: int

    @classmethod
    def open(cls, path: str | Path) -> RunRecords:
        """Read and index ``path``; raises ``ExportError``."""
        path = Path(path)
        stream_id, size = None, None
        frames: list[int] = []
        labels: dict[int, str] = {}
        tracks: dict[int, TrackSpan] = {}
        n_inst = 0
        for lineno, rec in _read(path):
            if stream_id is None:
                stream_id, size = rec["stream_id"], (rec["width"], rec["height"])
            elif rec["stream_id"] != stream_id:
                raise ExportError(
                    f"{path} line {lineno}: stream {rec['stream_id']!r} after {stream_id!r}; "
                    "export one stream's JSONL at a time (a run writes one file per stream)"
                )
            if frames and rec["frame_index"] <= frames[-1]:
                raise ExportError(
                    f"{path} line {lineno}: frame {rec['frame_index']} after {frames[-1]}; "
                    "records must be in increasing frame order (as a run writes them)"
                )
            f = rec["frame_index"]
            frames.append(f)
            for inst in rec["instances"]:
                n_inst += 1
                cid = inst["class_id"]
                labels.setdefault(cid, str(inst.get("label", cid)))
                tid = int(inst.get("track_id", -1))
                span = tracks.setdefault(tid, TrackSpan(first=f, last=f))
                span.last, span.frames = f, span.frames + 1
                span.votes[cid] += 1
        if stream_id is None or size is None:
            raise ExportError(f"{path}: no records; give the JSONL file a run wrote")
        if -1 in tracks:
            raise ExportError(
                f"{path}: instances without a track id (-1) are detections, not tracks; "
                "export the JSONL a tracking run wrote"
            )
        return cls(path, stream_id, size[0], size[1], frames, labels, tracks, n_inst)

    def records(self) -> Iterator[dict[str, Any]]:
        """Every record again, in file order (validated)."""
        for _, rec in _read(self.path):
            yield rec

    @property
    def label_list(self) -> list[tuple[int, str]]:
        """``(class_id, label)`` sorted by class id."""
        return sorted(self.labels.items())


def _read(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    if path.exists() and not path.is_file():  # a folder, /dev/zero, a FIFO: no records
        raise ExportError(
            f"cannot read {path}: not a regular file; give the JSONL file a run wrote "
            "(e.g. out/demo/sample.jsonl)"
        )
    try:
        f = open(path, encoding="utf-8")  # noqa: SIM115 - closed below
    except OSError as exc:
        raise ExportError(
            f"cannot read {path}: {exc.strerror}; give the JSONL file a run wrote "
            "(e.g. out/demo/sample.jsonl)"
        ) from exc
    with f:
        try:
            yield from iter_v1_records(f)
        except RecordLineError as exc:
            raise ExportError(
                f"{path} line {exc.lineno}: not a vis.frame record ({exc}); "
                "give the JSONL file a run wrote"
            ) from None


def video_frames(
    run: RunRecords, video: str | Path, wanted: Collection[int]
) -> Iterator[tuple[int, Any]]:
    """Decode ``video`` (a file, or a folder of images as a folder source reads it) up to the
    last of the ``wanted`` frame indices and yield ``(index, BGR image)`` for those.
    ``ExportError`` if the video cannot be opened, ends before the last wanted frame, or has
    another size than the records."""
    last = max(wanted, default=-1)
    reads = _folder_reads(Path(video), wanted) if Path(video).is_dir() else _video_reads(video)
    try:
        for index in range(last + 1):
            image = next(reads, None)
            if image is None:
                raise ExportError(
                    f"video {video} ends at frame {index} but the records go to frame {last}: "
                    "give the video the run processed"
                )
            if index not in wanted:
                continue
            if image.shape[:2] != (run.height, run.width):
                raise ExportError(
                    f"video {video} is {image.shape[1]}x{image.shape[0]}, the records "
                    f"{run.width}x{run.height}: give the video the run processed"
                )
            yield index, image
    finally:
        reads.close()


def _video_reads(video: str | Path) -> Iterator[Any]:
    """Every frame of a video file (BGR), in order."""
    import cv2

    cap = cv2.VideoCapture(str(video))
    if not cap.isOpened():
        raise ExportError(f"cannot open video {video}: give the video the run processed")
    try:
        while True:
            ok, image = cap.read()
            if not ok:
                return
            yield image
    finally:
        cap.release()


def _folder_reads(folder: Path, wanted: Collection[int]) -> Iterator[Any]:
    """A folder of images in a folder source's order; only the ``wanted`` ones are decoded
    (the others are a stand-in of the right shape, read from the first image)."""
    import cv2

    from streams.sources import image_files

    shape = None
    for index, path in enumerate(image_files(folder)):
        if index in wanted or shape is None:
            image = cv2.imread(str(path), cv2.IMREAD_COLOR)
            if image is None:
                raise ExportError(f"{path} is not a readable image: give the frames the run read")
            shape = image.shape
            yield image
        else:
            yield _Skipped(shape)


class _Skipped:
    """A frame not decoded (not wanted): only its shape is known."""

    def __init__(self, shape: tuple[int, ...]) -> None:
        self.shape = shape
