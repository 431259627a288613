"""Detections read from a ``vis.frame`` JSONL file, for running the tracker on someone
else's detector.

Contract: ``PrecomputedDetector.detect_frame(frame_index, image)`` returns the file's
detections for that frame (``track_id`` ignored), with embeddings from the configured
``Embedder``. Frames must be requested in increasing order; the file is read forward once,
so memory stays bounded by one record.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from vis.detection.base import Detector
from vis.detection.detector import Embedder
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
        self.embedder = embedder
        self.dim = embedder.dim
        self.labels = labels or self._scan_labels()
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

    def _next_record(self) -> dict | None:
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
        try:
            res = decode_record(rec)
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
        d = d[d.scores >= self.score_threshold]
        d.track_ids = np.full(len(d), -1, np.int64)
        d.embeddings = self.embedder.embed(image, d)
        return d

    def detect_frames(self, frames: Sequence[Frame]) -> list[Detections]:
        """The pipeline's detector interface: detections for ``Frame`` objects, in order."""
        return [self.detect_frame(f.index, f.image) for f in frames]

    def close(self) -> None:
        self._fh.close()
