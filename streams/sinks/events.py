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
from typing import Any, TextIO

import numpy as np

from streams.sinks.base import Sink, SinkError
from streams.sinks.paths import events_path
from vis.analytics import Event
from vis.types import FrameResult


class EventsJsonlSink(Sink):
    """Args:
    output_dir: folder of the files (created).
    resume: append to existing files instead of truncating them.
    """

    def __init__(self, output_dir: str | Path, *, resume: bool = False) -> None:
        self.output_dir = Path(output_dir)
        self.output_dir.mkdir(parents=True, exist_ok=True)
        self.resume = resume
        self._files: dict[str, TextIO] = {}
        self._count = 0

    def path_for(self, stream_id: str) -> Path:
        return events_path(self.output_dir, stream_id)

    def write(self, result: FrameResult, image: np.ndarray | None = None) -> None:
        pass

    def write_events(self, events: Sequence[Event]) -> None:
        for event in events:
            path = self.path_for(event.stream_id)
            try:
                f = self._files.get(event.stream_id)
                if f is None:
                    f = open(path, "a" if self.resume else "w", encoding="utf-8")  # noqa: SIM115
                    self._files[event.stream_id] = f
                f.write(json.dumps(event.to_dict(), separators=(",", ":")) + "\n")
                f.flush()
            except OSError as exc:
                raise SinkError(f"cannot write {path}: {exc.strerror}") from exc
            self._count += 1

    def end_stream(self, stream_id: str) -> None:
        f = self._files.pop(stream_id, None)
        if f is not None:
            f.close()

    def close(self) -> None:
        for f in self._files.values():
            f.close()
        self._files.clear()

    def stats(self) -> dict[str, Any]:
        return {"events": self._count}
