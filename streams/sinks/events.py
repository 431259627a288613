"""``EventsJsonlSink``: ``<output>/<stream_id>.events.jsonl``, one ``vis.event/1`` line per event.

Contract: events arrive through ``write_events`` in the order of the frames that caused
them; every line is written whole or cut back (a killed run keeps every event it wrote); frames
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

    def path_for(self, stream_id: str) -> Path:
        return events_path(self.output_dir, stream_id)

    def write(self, result: FrameResult, image: np.ndarray | None = None) -> None:
        pass

    def write_events(self, events: Sequence[Event]) -> None:
        for event in events:
            line = json.dumps(event.to_dict(), separators=(",", ":")) + "\n"
            self._write_line(event.stream_id, line.encode("utf-8"))

    def stats(self) -> dict[str, Any]:
        failed = {"failed": self.failed} if self.failed else {}
        return {"events": self.delivered, **failed}
