"""``ExportSink``: a batch run's annotation-tool exports, written when each stream ends.

Contract: at ``end_stream(stream_id)`` the stream's JSONL (``jsonl_path``, written by the
``JsonlSink`` listed before this sink) is exported in every configured format to the output
folder (``streams.exports.export_run``: names from ``export_path``); with ``images`` every
frame is also written as ``<output>/images/<frame_file>`` as it arrives. A stream that never
ends (an interrupted run, a live camera) is not exported: ``vis-pipeline export`` can do it
later from the JSONL. An export that fails raises ``SinkError`` naming the stream.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from streams.exports import ExportError, check_formats, export_run
from streams.exports.common import frame_file
from streams.sinks.base import Sink, SinkError
from streams.sinks.paths import jsonl_path
from vis.types import FrameResult

log = logging.getLogger(__name__)


class ExportSink(Sink):
    """Args:
    output_dir: the run's output folder (where the JSONL files are).
    formats: export format names (``streams.exports.FORMATS``).
    images: also write every frame as a JPEG (what the COCO/CVAT entries name).
    """

    def __init__(self, output_dir: str | Path, formats: list[str], *, images: bool = False):
        try:
            self.formats = check_formats(formats)
        except ExportError as exc:
            raise SinkError(str(exc)) from None
        self.output_dir = Path(output_dir)
        self.images = images
        self._exported: dict[str, int] = {}
        self._frames = 0

    def write(self, result: FrameResult, image: np.ndarray | None = None) -> None:
        if not self.images or image is None:
            return
        path = self.output_dir / "images" / frame_file(result.stream_id, result.frame_index)
        path.parent.mkdir(parents=True, exist_ok=True)
        if not cv2.imwrite(str(path), image, [cv2.IMWRITE_JPEG_QUALITY, 95]):
            raise SinkError(f"cannot write {path}")
        self._frames += 1

    def end_stream(self, stream_id: str) -> None:
        try:
            results = export_run(
                jsonl_path(self.output_dir, stream_id), self.formats, self.output_dir
            )
        except (ExportError, OSError) as exc:
            raise SinkError(f"export of stream {stream_id!r} failed: {exc}") from exc
        self._exported[stream_id] = len(results)
        for r in results:
            log.info("exported %s: %s (%d instances)", stream_id, r.path, r.instances)

    def close(self) -> None:
        pass

    def stats(self) -> dict[str, Any]:
        return {"streams_exported": len(self._exported), "frames_written": self._frames}
