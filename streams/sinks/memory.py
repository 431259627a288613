"""``MemorySink``: keeps every result in a list (tests, notebooks)."""

from __future__ import annotations

import numpy as np

from streams.sinks.base import Sink
from vis.types import FrameResult


class MemorySink(Sink):
    """Keeps every result in ``results`` and the finished streams in ``ended``, in order."""

    def __init__(self) -> None:
        self.results: list[FrameResult] = []
        self.ended: list[str] = []
        self.closed = False

    def write(self, result: FrameResult, image: np.ndarray | None = None) -> None:
        self.results.append(result)

    def end_stream(self, stream_id: str) -> None:
        self.ended.append(stream_id)

    def close(self) -> None:
        self.closed = True
