"""The interface every output sink implements; the runner calls these and nothing else."""

from __future__ import annotations

import abc
from collections.abc import Sequence
from typing import Any

import numpy as np

from vis.analytics import Event
from vis.types import FrameResult


class SinkError(RuntimeError):
    """A sink could not deliver (disk full, broker unreachable, ...)."""


class Sink(abc.ABC):
    """Receives each frame's result in frame order per stream.

    ``write`` gets the decoded image too (BGR, (H, W, 3) uint8) for sinks that draw; others
    ignore it. ``write_events`` gets the analytics events a frame caused just before that
    frame's ``write`` (so a drawing includes them); sinks without events ignore them.
    ``end_stream`` is called once when a stream has delivered its last frame;
    ``close`` once at the end of the run (it flushes). ``stats`` returns counters for the
    run summary.
    """

    @abc.abstractmethod
    def write(self, result: FrameResult, image: np.ndarray | None = None) -> None: ...

    def write_events(self, events: Sequence[Event]) -> None:  # noqa: B027 - optional hook
        """Deliver ``vis.event/1`` events of one stream, in order (default: ignored)."""

    @abc.abstractmethod
    def end_stream(self, stream_id: str) -> None: ...

    def flush(self) -> None:  # noqa: B027 - optional hook, no-op by default
        """Push buffered output to its destination (called before a checkpoint)."""

    @abc.abstractmethod
    def close(self) -> None: ...

    def stats(self) -> dict[str, Any]:
        """Counters for the run summary (empty by default)."""
        return {}
