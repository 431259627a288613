"""``EventsJsonlSink``: ``<output>/<stream_id>.events.jsonl``, one ``vis.event/1`` line per event.

Contract: events arrive through ``write_events`` in the order of the frames that caused
them; every line is flushed when written (a killed run keeps every event it wrote); frames
themselves are ignored. A stream's file is opened at its first event (truncated, or appended
to with ``resume``: the runner cuts it back to the resume point first); a write that fails
raises ``SinkError`` naming the file.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from streams.sinks.base import SinkError
from streams.sinks.jsonl import LineFilesSink
from streams.sinks.paths import events_path
from vis.analytics import Event
from vis.types import FrameResult


class EventsJsonlSink(LineFilesSink):
    """Args:
    output_dir: folder of the files (created).
    resume: append to existing files instead of truncating them.
    """

    def __init__(self, output_dir: str | Path, *, resume: bool = False) -> None:
        super().__init__(output_dir, resume=resume)
        self._count = 0

    def path_for(self, stream_id: str) -> Path:
        return events_path(self.output_dir, stream_id)

    def write(self, result: FrameResult, image: np.ndarray | None = None) -> None:
        pass

    def write_events(self, events: Sequence[Event]) -> None:
        for event in events:
            f = self._file(event.stream_id)
            try:
                f.write(json.dumps(event.to_dict(), separators=(",", ":")) + "\n")
                f.flush()
            except OSError as exc:
                path = self.path_for(event.stream_id)
                raise SinkError(f"cannot write {path}: {exc.strerror}") from exc
            self._count += 1

    def stats(self) -> dict[str, Any]:
        return {"events": self._count}
