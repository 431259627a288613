"""Detections read from a file, for running the tracker on someone else's detector.

Two formats:

* ``vis.frame`` JSONL (``/1`` or ``/2``), one record per frame. An instance without a
  ``mask`` is a box: its mask is the filled ``bbox`` (a detector of boxes only).
* MOTChallenge ``det.txt`` (any path ending ``.txt``): ``frame,id,x,y,w,h,conf,...`` per
  line, 1-based frames in increasing order, boxes in pixels; ``id`` is ignored, a negative
  ``conf`` reads as 1. Every box is a person (or the one label given) with its box as mask.

Contract: ``PrecomputedDetector.detect_frame(frame_index, image)`` returns the file's
detections for that frame (``track_id`` ignored), with embeddings from the configured
``Embedder``. Frames must be requested in increasing order; the file is read forward once,
so memory stays bounded by one frame's detections.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from vis.detection.base import Detector
from vis.detection.detector import Embedder
from vis.ops.masks import BoxMask
from vis.ops.rle import encode_box
from vis.schema import SchemaError, decode_record
from vis.types import Detections, Frame

log = logging.getLogger(__name__)


class PrecomputedError(RuntimeError):
    """The detections file is missing or unreadable."""


class PrecomputedDetector(Detector):
    """Serve detections from a JSONL file in frame order.

    Args:
        path: JSONL file, one ``vis.frame`` record per line, increasing ``frame_index``.
        embedder: computes embeddings for the file's instances.
        labels: label per class index (index 0 = background); default from the file.
    """

    def __init__(
        self,
        *,
        path: str | Path,
        embedder: Embedder,
        labels: list[str] | None = None,
        score_threshold: float = 0.0,
    ) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise PrecomputedError(
                f"detections file {self.path} not found: set detector.path "
                "to a vis.frame JSONL file"
            )
        self._fh = open(self.path, encoding="utf-8")  # noqa: SIM115 - closed in close()
        self._pending: dict | None = None
        self._line = 0
        self.mot = self.path.suffix.lower() == ".txt"
        self._mot_row: tuple[int, list[float]] | None = None
        self.embedder = embedder
        self.dim = embedder.dim
        self.labels = labels or (["__background__", "person"] if self.mot else self._scan_labels())
        self.score_threshold = score_threshold
        self.malformed = 0
        self.engine = "precomputed"
        self.precision = embedder.precision

    def _scan_labels(self) -> list[str]:
        names: dict[int, str] = {}
        with open(self.path, encoding="utf-8") as fh:
            for line in fh:
                try:
                    for inst in json.loads(line).get("instances", []):
                        names.setdefault(
                            int(inst["class_id"]), str(inst.get("label", inst["class_id"]))
                        )
                except (ValueError, KeyError, TypeError, AttributeError):
                    continue
        n = max(names, default=0) + 1
        return ["__background__"] + [names.get(i, str(i)) for i in range(1, n)]

    def _next_mot_row(self) -> tuple[int, list[float]] | None:
        """(0-based frame, [x, y, w, h, conf]) of the next well-formed ``det.txt`` line."""
        for line in self._fh:
            self._line += 1
            if not line.strip():
                continue
            try:
                v = [float(x) for x in line.replace(" ", "").split(",")[:7]]
                if len(v) < 6:
                    raise ValueError("fewer than 6 fields")
                return int(v[0]) - 1, [*v[2:6], v[6] if len(v) > 6 and v[6] >= 0 else 1.0]
            except ValueError as exc:
                self.malformed += 1
                log.warning("%s line %d skipped: %s", self.path, self._line, exc)
        return None

    def _next_mot_frame(self) -> dict | None:
        """The next frame's rows of a ``det.txt`` as a record: frame_index and boxes."""
        row = self._mot_row or self._next_mot_row()
        if row is None:
            return None
        frame, rows = row[0], [row[1]]
        while True:
            nxt = self._next_mot_row()
            if nxt is None or nxt[0] != frame:
                break
            rows.append(nxt[1])
        if nxt is not None and nxt[0] < frame:
            raise PrecomputedError(
                f"{self.path} line {self._line}: frame {nxt[0] + 1} after frame {frame + 1}: "
                "sort the file by frame (sort -t, -k1,1n -s)"
            )
        self._mot_row = nxt
        return {"frame_index": frame, "rows": rows}

    def _next_record(self) -> dict | None:
        if self.mot:
            return self._next_mot_frame()
        for line in self._fh:
            self._line += 1
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
                if not isinstance(rec, dict) or not isinstance(rec.get("frame_index"), int):
                    raise SchemaError("no frame_index")
                return rec
            except (json.JSONDecodeError, SchemaError) as exc:
                self.malformed += 1
                log.warning("%s line %d skipped: %s", self.path, self._line, exc)
        return None

    def detect_frame(self, frame_index: int, image: np.ndarray) -> Detections:
        h, w = image.shape[:2]
        rec = self._pending
        while rec is None or rec["frame_index"] < frame_index:
            rec = self._next_record()
            if rec is None:
                self._pending = None
                return Detections.empty(h, w, self.dim)
        self._pending = rec
        if rec["frame_index"] != frame_index:
            return Detections.empty(h, w, self.dim)
        if self.mot:
            return self._finish(self._mot_detections(rec["rows"], (h, w)), image)
        try:
            res = decode_record(with_box_masks(rec))
        except SchemaError as exc:
            self.malformed += 1
            log.warning("%s frame %d skipped: %s", self.path, frame_index, exc)
            return Detections.empty(h, w, self.dim)
        d = res.detections
        if (res.height, res.width) != (h, w):
            raise PrecomputedError(
                f"{self.path} frame {frame_index} is {res.width}x{res.height} "
                f"but the video is {w}x{h}: detections must match the source"
            )
        return self._finish(d, image)

    def _mot_detections(self, rows: list[list[float]], size: tuple[int, int]) -> Detections:
        """One frame's ``det.txt`` rows -> box detections of class 1 (masks: the boxes)."""
        boxes = np.array([[x, y, x + bw, y + bh] for x, y, bw, bh, _ in rows], np.float32)
        return Detections(
            xyxy=boxes,
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
        self._fh.close()


def with_box_masks(rec: dict) -> dict:
    """``rec`` with every instance that has a ``bbox`` and no ``mask`` given its box as mask
    (box-relative RLE); unchanged when every instance has one."""
    inst = rec.get("instances")
    if not isinstance(inst, list) or all(not isinstance(i, dict) or "mask" in i for i in inst):
        return rec
    size = (rec.get("height"), rec.get("width"))
    if not all(isinstance(v, int) for v in size):
        return rec  # decode_record names what is wrong
    out = []
    for i in inst:
        if isinstance(i, dict) and "mask" not in i and isinstance(i.get("bbox"), list):
            try:
                i = {**i, "mask": encode_box(BoxMask.from_box(i["bbox"][:4], size))}
            except (TypeError, ValueError):
                pass  # decode_record names the bad bbox
        out.append(i)
    return {**rec, "instances": out}
