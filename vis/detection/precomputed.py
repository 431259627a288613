"""Detections read from a file, for running the tracker on someone else's detector.

Two formats:

* ``vis.frame`` JSONL (``/1`` or ``/2``), one record per frame, increasing ``frame_index``.
  An instance without a ``mask`` is a box: its mask is the filled ``bbox`` (a detector of
  boxes only).
* MOTChallenge ``det.txt`` (any path ending ``.txt``): ``frame,id,x,y,w,h,conf,...`` per
  line, 1-based frames in increasing order, boxes in pixels; ``id`` is ignored, a negative
  ``conf`` reads as 1. Every box is a person (or the one label given) with its box as mask.

Contract: ``PrecomputedDetector.detect_frame(frame_index, image)`` returns the file's
detections for that frame (``track_id`` ignored), with embeddings from the configured
``Embedder``. Frames must be requested in increasing order; the file is read forward once,
so memory stays bounded by one frame's detections.

The file is untrusted input, checked before anything is allocated by what it declares
(docs/limits.md). The whole file is refused (``PrecomputedError``, one line) when its frames
are out of order (checked when it is opened) or a record's frame size differs from the
video's. A record (a JSONL line, a ``det.txt`` row or frame) that breaks a limit is skipped,
counted in ``malformed`` and logged in one line: more than ``MAX_INSTANCES`` instances, a
class id outside the labels, a box or score that is not a finite number within
``MAX_COORD``, a mask whose declared size is not the frame's, a line over
``MAX_LINE_BYTES``, a JSONL ``frame_index`` outside [0, ``MAX_FRAME_INDEX``).

Of a frame's instances, at most ``max_detections`` (the detector's cap, default 50) are
served: the highest-scoring among those at or above the score threshold, in file order. The
others are counted in ``dropped`` and logged once per file. At the end of the stream
(``close``), a file none of whose records matched a frame of the video is named in one
warning line.
"""

from __future__ import annotations

import json
import logging
import math
import re
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO, Any

import numpy as np

from vis.detection.base import Detector
from vis.detection.detector import Embedder
from vis.ops.masks import BoxMask
from vis.ops.rle import encode_box, encode_box_as_full
from vis.schema import SCHEMA_V1, SchemaError, decode_record, finite_number
from vis.types import Detections, Frame

log = logging.getLogger(__name__)

#: instances of one frame (a JSONL record or a det.txt frame); more: the frame is skipped
MAX_INSTANCES = 1000
#: class ids a file may use when the labels come from the file itself (ids 0 .. this - 1)
MAX_CLASSES = 10000
#: a coordinate's magnitude (pixels; exact in float32)
MAX_COORD = float(2**24)
#: one line of the file; a longer line is skipped unread
MAX_LINE_BYTES = 64 * 2**20
#: JSONL ``frame_index`` values are in [0, this); others: the record is skipped
MAX_FRAME_INDEX = 2**31
#: records read last that are kept for a frame asked again after the reader passed it (an
#: offline processor detecting held frames after the fact)
KEEP_RECENT = 256

_FRAME_INDEX = re.compile(r'"frame_index"\s*:\s*(-?\d+)(?![\d.eE])')
_WIDTH = re.compile(r'"width"\s*:\s*(\d{1,9})\b')
_HEIGHT = re.compile(r'"height"\s*:\s*(\d{1,9})\b')


class PrecomputedError(RuntimeError):
    """The detections file is missing, unreadable or unusable as a whole."""


class PrecomputedDetector(Detector):
    """Serve detections from a JSONL file in frame order.

    Args:
        path: JSONL file, one ``vis.frame`` record per line, increasing ``frame_index``.
        embedder: computes embeddings for the file's instances.
        labels: label per class index (index 0 = background); default from the file.
        score_threshold: instances scoring below it are not served.
        max_detections: instances served per frame at most (the highest-scoring).

    Raises:
        PrecomputedError: missing file, or frames out of order (with the command that sorts).
    """

    def __init__(
        self,
        *,
        path: str | Path,
        embedder: Embedder,
        labels: list[str] | None = None,
        score_threshold: float = 0.0,
        max_detections: int = 50,
    ) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise PrecomputedError(
                f"detections file {self.path} not found: set detector.path "
                "to a vis.frame JSONL file"
            )
        self.mot = self.path.suffix.lower() == ".txt"
        self.declared_size: tuple[int, int] | None = None  # (height, width) of the records
        self._check_order()
        self._fh = self._open()
        self._lines = _lines(self._fh)
        self._pending: dict | None = None
        self._recent: OrderedDict[int, dict] = OrderedDict()  # frame index -> record read
        self._line = 0
        self._last_frame: int | None = None
        self._mot_row: tuple[int, list[float]] | None = None
        self.embedder = embedder
        self.dim = embedder.dim
        self.labels = labels or (["__background__", "person"] if self.mot else self._scan_labels())
        self.score_threshold = score_threshold
        self.max_detections = max_detections
        self.malformed = 0
        self.dropped = 0  # instances over max_detections, not served
        self._requested = False  # a frame was asked for
        self._matched = False  # a record was for a frame that was asked for
        self.engine = "precomputed"
        self.precision = embedder.precision

    def _open(self) -> IO[str]:
        # undecodable bytes read as U+FFFD: the line is then malformed, not the file unreadable
        return open(self.path, encoding="utf-8", errors="replace")  # noqa: SIM115 - close()

    def _check_order(self) -> None:
        """Refuse a file whose frames go backwards (or, in JSONL, repeat) before any is used:
        a reader that goes forward once would otherwise serve those frames empty. JSONL
        records must all declare one frame size (``declared_size``), compared with the
        video's at the first frame, before anything is written."""
        last, last_line = None, 0
        with self._open() as fh:
            for lineno, line in enumerate(_lines(fh), 1):
                if not self.mot:
                    self._check_size(line, lineno)
                frame = _frame_of(line, mot=self.mot)
                if frame is None:
                    continue  # malformed: skipped and counted when read
                if last is not None and (frame < last or (frame == last and not self.mot)):
                    if self.mot:
                        raise PrecomputedError(
                            f"{self.path} line {lineno}: frame {frame} after frame {last}: "
                            "sort the file by frame (sort -t, -k1,1n -s)"
                        )
                    raise PrecomputedError(
                        f"{self.path} line {lineno}: frame_index {frame} after {last} "
                        f"(line {last_line}): one record per frame, sorted: sort the file "
                        "by frame (jq -c -s 'sort_by(.frame_index)[]')"
                    )
                last, last_line = frame, lineno

    def _check_size(self, line: str, lineno: int) -> None:
        w, h = _WIDTH.search(line), _HEIGHT.search(line)
        if w is None or h is None:
            return
        size = (int(h.group(1)), int(w.group(1)))
        if self.declared_size is None:
            self.declared_size = size
        elif size != self.declared_size:
            raise PrecomputedError(
                f"{self.path} line {lineno}: a {size[1]}x{size[0]} frame in a file of "
                f"{self.declared_size[1]}x{self.declared_size[0]} frames: detections must "
                "match the source, one frame size"
            )

    def _scan_labels(self) -> list[str]:
        names: dict[int, str] = {}
        with self._open() as fh:
            for line in _lines(fh):
                try:
                    for inst in json.loads(line).get("instances", []):
                        cid = inst["class_id"]
                        if isinstance(cid, int) and 0 <= cid < MAX_CLASSES:
                            names.setdefault(cid, str(inst.get("label", cid))[:200])
                except (ValueError, KeyError, TypeError, AttributeError, RecursionError):
                    continue
        n = max(names, default=0) + 1
        return ["__background__"] + [names.get(i, str(i)) for i in range(1, n)]

    def _skip(self, where: str, reason: str) -> None:
        self.malformed += 1
        log.warning("%s %s skipped: %s", self.path, where, reason)

    def _next_mot_row(self) -> tuple[int, list[float]] | None:
        """(0-based frame, [x, y, w, h, conf]) of the next well-formed ``det.txt`` line."""
        for line in self._lines:
            self._line += 1
            if not line.strip():
                continue
            try:
                return _mot_row(line)
            except ValueError as exc:
                self._skip(f"line {self._line}", str(exc))
        return None

    def _next_mot_frame(self) -> dict | None:
        """The next frame's rows of a ``det.txt`` as a record: frame_index and boxes (None
        for a frame of more than ``MAX_INSTANCES`` rows: they are not kept)."""
        row = self._mot_row or self._next_mot_row()
        if row is None:
            return None
        frame, rows, n = row[0], [row[1]], 1
        while True:
            nxt = self._next_mot_row()
            if nxt is None or nxt[0] != frame:
                break
            n += 1
            if n <= MAX_INSTANCES:
                rows.append(nxt[1])
        if nxt is not None and nxt[0] < frame:
            raise PrecomputedError(
                f"{self.path} line {self._line}: frame {nxt[0] + 1} after frame {frame + 1}: "
                "sort the file by frame (sort -t, -k1,1n -s)"
            )
        self._mot_row = nxt
        if n > MAX_INSTANCES:
            self._skip(f"frame {frame + 1}", f"{n} boxes, over {MAX_INSTANCES} per frame")
            rows = []
        return {"frame_index": frame, "rows": rows}

    def _next_record(self) -> dict | None:
        if self.mot:
            return self._next_mot_frame()
        for line in self._lines:
            self._line += 1
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
                index = rec.get("frame_index") if isinstance(rec, dict) else None
                if index is None:
                    raise SchemaError("no frame_index")
                if (
                    not isinstance(index, int)
                    or isinstance(index, bool)
                    or not 0 <= index < MAX_FRAME_INDEX
                ):
                    raise SchemaError(
                        f"frame_index {str(index)[:40]} is not an integer in [0, 2^31)"
                    )
            except (ValueError, SchemaError, RecursionError) as exc:
                self._skip(f"line {self._line}", str(exc)[:200])
                continue
            if self._last_frame is not None and index <= self._last_frame:
                raise PrecomputedError(
                    f"{self.path} line {self._line}: frame_index {index} after "
                    f"{self._last_frame}: one record per frame, sorted: sort the file by "
                    "frame (jq -c -s 'sort_by(.frame_index)[]')"
                )
            self._last_frame = index
            return rec
        return None

    def detect_frame(self, frame_index: int, image: np.ndarray) -> Detections:
        h, w = image.shape[:2]
        if self.declared_size is not None and self.declared_size != (h, w):
            raise PrecomputedError(
                f"{self.path} has {self.declared_size[1]}x{self.declared_size[0]} frames "
                f"but the video is {w}x{h}: detections must match the source"
            )
        self._requested = True
        rec = self._pending
        if rec is not None and frame_index < rec["frame_index"]:  # a frame passed over
            rec = self._recent.get(frame_index, rec)
        while rec is None or rec["frame_index"] < frame_index:
            rec = self._next_record()
            if rec is None:
                self._pending = None
                return Detections.empty(h, w, self.dim)
            self._recent[rec["frame_index"]] = rec
            if len(self._recent) > KEEP_RECENT:
                self._recent.popitem(last=False)
        if self._pending is None or rec["frame_index"] >= self._pending["frame_index"]:
            self._pending = rec
        if rec["frame_index"] != frame_index:
            return Detections.empty(h, w, self.dim)
        self._matched = True
        if self.mot:
            rows = rec["rows"]
            keep = self._cap([r[4] for r in rows])
            if keep is not None:
                rows = [rows[k] for k in keep]
            return self._finish(self._mot_detections(rows, (h, w)), image)
        size = (rec.get("height"), rec.get("width"))
        if all(isinstance(v, int) and not isinstance(v, bool) for v in size) and size != (h, w):
            raise PrecomputedError(
                f"{self.path} frame {frame_index} is {size[1]}x{size[0]} "
                f"but the video is {w}x{h}: detections must match the source"
            )
        try:
            check_instances(rec, n_labels=len(self.labels))
            keep = self._cap([i["score"] for i in rec["instances"]])
            if keep is not None:
                rec = {**rec, "instances": [rec["instances"][k] for k in keep]}
            res = decode_record(with_box_masks(rec))
        except SchemaError as exc:
            self._skip(f"frame {frame_index}", str(exc)[:200])
            return Detections.empty(h, w, self.dim)
        return self._finish(res.detections, image)

    def _cap(self, scores: list[float]) -> list[int] | None:
        """Indices (in file order) of the ``max_detections`` highest-scoring instances at or
        above the score threshold, or None when the frame has no more than that (all kept,
        unchanged). Ties keep the earlier instance.

        Args:
            scores: (N,) the frame's instance scores, finite (checked).
        """
        if len(scores) <= self.max_detections:
            return None
        s = np.asarray(scores, np.float32)  # as Detections holds them, for the threshold
        above = np.flatnonzero(s >= self.score_threshold)
        if len(above) <= self.max_detections:
            return None  # the threshold leaves few enough
        order = np.argsort(-s[above], kind="stable")[: self.max_detections]
        if self.dropped == 0:
            log.warning(
                "%s: frames with over %d instances at or above the score threshold: the %d "
                "highest-scoring kept, the others dropped (detector.max_detections; logged "
                "once per file)",
                self.path,
                self.max_detections,
                self.max_detections,
            )
        self.dropped += len(above) - self.max_detections
        return sorted(above[order].tolist())

    def _mot_detections(self, rows: list[list[float]], size: tuple[int, int]) -> Detections:
        """One frame's ``det.txt`` rows -> box detections of class 1 (masks: the boxes)."""
        boxes = np.array([[x, y, x + bw, y + bh] for x, y, bw, bh, _ in rows], np.float32)
        return Detections(
            xyxy=boxes.reshape(len(rows), 4),
            masks=[BoxMask.from_box(b, size) for b in boxes],
            scores=np.array([r[4] for r in rows], np.float32),
            class_ids=np.ones(len(rows), np.int64),
            image_size=size,
        )

    def _finish(self, d: Detections, image: np.ndarray) -> Detections:
        d = d[d.scores >= self.score_threshold]
        d.track_ids = np.full(len(d), -1, np.int64)
        d.embeddings = self.embedder.embed(image, d)
        return d

    def detect_frames(self, frames: Sequence[Frame]) -> list[Detections]:
        """The pipeline's detector interface: detections for ``Frame`` objects, in order."""
        return [self.detect_frame(f.index, f.image) for f in frames]

    def close(self) -> None:
        """Close the file; at the end of a stream that used none of its records, say so."""
        if self._requested and not self._matched:
            log.warning(
                "%s: no detection matched a frame of the video (empty file, or every frame "
                "past the video's end or skipped): check detector.path and the frame numbers",
                self.path,
            )
            self._requested = False  # once
        if self.dropped:
            log.info("%s: %d instances over max_detections dropped", self.path, self.dropped)
        self._fh.close()


def _lines(fh: IO[str]) -> Iterator[str]:
    """The file's lines; a line over ``MAX_LINE_BYTES`` is read past in pieces and yields
    ``"\\x00"`` (malformed in either format) instead of being held in memory."""
    while True:
        line = fh.readline(MAX_LINE_BYTES)
        if not line:
            return
        if len(line) >= MAX_LINE_BYTES and not line.endswith("\n"):
            while True:  # drain the rest of the long line
                rest = fh.readline(MAX_LINE_BYTES)
                if not rest or rest.endswith("\n"):
                    break
            yield "\x00"
            continue
        yield line


def _frame_of(line: str, *, mot: bool) -> int | None:
    """The frame a line is for (as written in the file), without parsing the rest."""
    if mot:
        head = line.split(",", 1)[0].strip()
        try:
            v = float(head)
        except ValueError:
            return None
        ok = math.isfinite(v) and 1 <= v <= MAX_COORD and v == int(v)
        return int(v) if ok else None  # else malformed: skipped and counted when read
    m = _FRAME_INDEX.search(line)
    if not m or len(m.group(1)) > 18:
        return None
    v = int(m.group(1))
    return v if 0 <= v < MAX_FRAME_INDEX else None  # else malformed: skipped when read


def _mot_row(line: str) -> tuple[int, list[float]]:
    """One ``det.txt`` line -> (0-based frame, [x, y, w, h, conf]); ``ValueError`` naming
    what is wrong (too few fields, not a number, not finite, out of range)."""
    fields = line.replace(" ", "").split(",")[:7]
    if len(fields) < 6:
        raise ValueError("fewer than 6 fields")
    v = [float(x) for x in fields]
    bad = next((x for x in v if not math.isfinite(x) or abs(x) > MAX_COORD), None)
    if bad is not None:
        raise ValueError(f"{bad} is not a finite number within +-{MAX_COORD:.0f}")
    if v[0] < 1 or v[0] != int(v[0]):
        raise ValueError(f"frame {fields[0]} is not a frame number (1, 2, ...)")
    return int(v[0]) - 1, [*v[2:6], v[6] if len(v) > 6 and v[6] >= 0 else 1.0]


def _number(v: Any) -> bool:
    """A JSON number (not bool); ``finite_number`` also refuses an int past the float range."""
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def check_instances(rec: dict[str, Any], *, n_labels: int) -> None:
    """The limits of one JSONL record's instances, checked before anything is decoded or
    allocated by their values (the frame size is the caller's: it must be the video's).

    Raises:
        SchemaError: one line naming the first broken limit.
    """
    inst = rec.get("instances")
    if not isinstance(inst, list):
        raise SchemaError("field 'instances' must be a list")
    if len(inst) > MAX_INSTANCES:
        raise SchemaError(f"{len(inst)} instances, over {MAX_INSTANCES} per frame")
    h, w = rec.get("height"), rec.get("width")
    for k, i in enumerate(inst):
        if not isinstance(i, dict):
            raise SchemaError(f"instance {k} is not an object")
        cid = i.get("class_id")
        if not isinstance(cid, int) or isinstance(cid, bool) or not 0 <= cid < n_labels:
            raise SchemaError(
                f"instance {k}: class_id {str(cid)[:40]} is not one of the model's "
                f"{n_labels} labels (0..{n_labels - 1})"
            )
        bbox = i.get("bbox")
        if not (
            isinstance(bbox, list)
            and len(bbox) == 4
            and all(_number(v) and finite_number(v) and abs(v) <= MAX_COORD for v in bbox)
        ):
            raise SchemaError(
                f"instance {k}: bbox {str(bbox)[:80]} is not 4 finite numbers within "
                f"+-{MAX_COORD:.0f}"
            )
        score = i.get("score")
        if not (_number(score) and finite_number(score)):
            raise SchemaError(f"instance {k}: score {str(score)[:40]} is not a finite number")
        mask = i.get("mask")
        if mask is None:
            continue
        if not isinstance(mask, dict):
            raise SchemaError(f"instance {k}: mask is not an object")
        size = mask.get("size")
        if rec.get("schema") == SCHEMA_V1 and size != [h, w]:
            raise SchemaError(
                f"instance {k}: mask size {str(size)[:40]} is not the frame's [{h}, {w}]"
            )
        if not (
            isinstance(size, list)
            and len(size) == 2
            and all(isinstance(v, int) and not isinstance(v, bool) for v in size)
            and isinstance(h, int)
            and isinstance(w, int)
            and 0 <= size[0] <= h
            and 0 <= size[1] <= w
        ):
            raise SchemaError(
                f"instance {k}: mask size {str(size)[:40]} does not fit the frame [{h}, {w}]"
            )
        counts = mask.get("counts")
        if isinstance(counts, list) and not (
            all(isinstance(c, int) and not isinstance(c, bool) and c >= 0 for c in counts)
            and sum(counts) == size[0] * size[1]
        ):
            raise SchemaError(
                f"instance {k}: mask counts do not add up to its {size[0]}x{size[1]} pixels"
            )
        if not isinstance(counts, (list, str)):
            raise SchemaError(f"instance {k}: mask counts must be a string or a list")


def with_box_masks(rec: dict) -> dict:
    """``rec`` with every instance that has a ``bbox`` and no ``mask`` given its box as mask
    (box-relative RLE in ``vis.frame/2``, full-frame in ``/1``); unchanged when every
    instance has one. The frame size must have been checked (it sizes the masks)."""
    inst = rec.get("instances")
    if not isinstance(inst, list) or all(not isinstance(i, dict) or "mask" in i for i in inst):
        return rec
    size = (rec.get("height"), rec.get("width"))
    if not all(isinstance(v, int) for v in size):
        return rec  # decode_record names what is wrong
    encode = encode_box_as_full if rec.get("schema") == SCHEMA_V1 else encode_box
    out = []
    for i in inst:
        if isinstance(i, dict) and "mask" not in i and isinstance(i.get("bbox"), list):
            try:
                i = {**i, "mask": encode(BoxMask.from_box(i["bbox"][:4], size))}
            except (TypeError, ValueError):
                pass  # decode_record names the bad bbox
        out.append(i)
    return {**rec, "instances": out}
