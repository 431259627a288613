"""``JsonlSink``: ``<output>/<stream_id>.jsonl``, one ``vis.frame`` line per frame.

Contract: every line is flushed when written, so a killed run keeps every frame whose line
was written; ``close()`` flushes and is idempotent; a write that fails raises ``SinkError``
naming the file.
"""

from __future__ import annotations

import abc
import os
from pathlib import Path
from typing import TextIO

import numpy as np

from streams.sinks.base import Sink, SinkError
from streams.sinks.paths import jsonl_path
from vis.schema import json_of
from vis.types import FrameResult


class LineFilesSink(Sink):
    """One text file of lines per stream, under ``output_dir``: opened at its stream's first
    line (truncated, or appended to with ``resume``), closed at the stream's end.

    Args:
        output_dir: folder of the files (created).
        resume: append to existing files (the runner cuts them back to the resume point
            first) instead of truncating them.
    """

    def __init__(self, output_dir: str | Path, *, resume: bool = False) -> None:
        self.output_dir = Path(output_dir)
        self.output_dir.mkdir(parents=True, exist_ok=True)
        self.resume = resume
        self._files: dict[str, TextIO] = {}

    @abc.abstractmethod
    def path_for(self, stream_id: str) -> Path: ...

    def _file(self, stream_id: str) -> TextIO:
        f = self._files.get(stream_id)
        if f is None:
            path = self.path_for(stream_id)
            try:
                f = open(path, "a" if self.resume else "w", encoding="utf-8")  # noqa: SIM115
            except OSError as exc:
                raise SinkError(f"cannot write {path}: {exc.strerror}") from exc
            self._files[stream_id] = f
        return f

    def flush(self) -> None:
        for f in self._files.values():
            f.flush()

    def end_stream(self, stream_id: str) -> None:
        """Close one stream's file (a batch job finishing a video)."""
        f = self._files.pop(stream_id, None)
        if f is not None:
            f.close()

    def close(self) -> None:
        for f in self._files.values():
            f.flush()
            f.close()
        self._files.clear()


class JsonlSink(LineFilesSink):
    """One ``vis.frame`` line per frame and stream, flushed per line.

    Args:
        output_dir: folder of the files (created).
        fsync_every: also ``fsync`` every this many lines (0 = never).
        resume: append to existing files (the runner cuts them back to the resume point
            first) instead of truncating them.
        record_version: write ``vis.frame/2`` (box-relative masks) or ``vis.frame/1``.
    """

    def __init__(
        self,
        output_dir: str | Path,
        *,
        fsync_every: int = 0,
        resume: bool = False,
        record_version: int = 2,
    ) -> None:
        super().__init__(output_dir, resume=resume)
        self.record_version = record_version
        self.fsync_every = fsync_every
        self._count = 0

    def path_for(self, stream_id: str) -> Path:
        return jsonl_path(self.output_dir, stream_id)

    def write(self, result: FrameResult, image: np.ndarray | None = None) -> None:
        f = self._file(result.stream_id)
        try:
            f.write(json_of(result, version=self.record_version).decode("utf-8") + "\n")
            f.flush()
            self._count += 1
            if self.fsync_every and self._count % self.fsync_every == 0:
                os.fsync(f.fileno())
        except OSError as exc:
            raise SinkError(
                f"cannot write {self.path_for(result.stream_id)}: {exc.strerror}"
            ) from exc
