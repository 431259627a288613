"""``JsonlSink``: ``<output>/<stream_id>.jsonl``, one ``vis.frame`` line per frame.

Contract: every line is written whole when ``write`` returns (one unbuffered write), so a
killed run keeps every frame whose line was written; ``close()`` is idempotent; a write
that fails is cut back to the last whole line and raises ``SinkError`` naming the file;
``stats()`` counts the lines delivered and those that failed.
"""

from __future__ import annotations

import abc
import errno
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from streams.sinks.base import Sink, SinkError
from streams.sinks.paths import jsonl_path
from vis.schema import json_of
from vis.types import FrameResult


def open_for_lines(path: Path, append: bool) -> BinaryIO:
    """The default opener of ``LineFilesSink``: unbuffered, so a line is one ``write``."""
    return open(path, "ab" if append else "wb", buffering=0)  # noqa: SIM115


class LineFilesSink(Sink):
    """One text file of lines per stream, under ``output_dir``: opened at its stream's first
    line (truncated, or appended to with ``resume``), closed at the stream's end.

    A line reaches its file whole or not at all: a write that fails (disk full, file too
    large) is cut back to the end of the last whole line before ``SinkError`` is raised, and
    ``stats()`` counts the lines delivered and the lines that failed.

    Args:
        output_dir: folder of the files (created).
        resume: append to existing files (the runner cuts them back to the resume point
            first) instead of truncating them.
        opener: ``opener(path, append)`` -> an unbuffered binary file (``open_for_lines``).
    """

    def __init__(
        self,
        output_dir: str | Path,
        *,
        resume: bool = False,
        opener: Callable[[Path, bool], BinaryIO] = open_for_lines,
    ) -> None:
        self.output_dir = Path(output_dir)
        self.output_dir.mkdir(parents=True, exist_ok=True)
        self.resume = resume
        self.opener = opener
        self._files: dict[str, BinaryIO] = {}
        self._ends: dict[str, int] = {}  # end of the last whole line per open file
        self.delivered = 0  # lines written whole
        self.failed = 0  # lines that could not be written

    @abc.abstractmethod
    def path_for(self, stream_id: str) -> Path: ...

    def _file(self, stream_id: str) -> BinaryIO:
        f = self._files.get(stream_id)
        if f is None:
            path = self.path_for(stream_id)
            try:
                f = self.opener(path, self.resume)
                self._ends[stream_id] = f.seek(0, os.SEEK_END)
            except OSError as exc:
                self.failed += 1
                raise SinkError(f"cannot write {path}: {exc.strerror}") from exc
            self._files[stream_id] = f
        return f

    def _write_line(self, stream_id: str, line: bytes) -> None:
        """Append ``line`` (ending in a newline) whole, or cut the file back and raise."""
        f = self._file(stream_id)
        try:
            view = memoryview(line)
            while view:
                written = f.write(view)
                if not written:  # a non-blocking file that took nothing: treat as full
                    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
                view = view[written:]
        except OSError as exc:
            self.failed += 1
            self._cut_back(stream_id, f)
            raise SinkError(f"cannot write {self.path_for(stream_id)}: {exc.strerror}") from exc
        self._ends[stream_id] += len(line)
        self.delivered += 1

    def _cut_back(self, stream_id: str, f: BinaryIO) -> None:
        """Drop a torn line: truncate to the last whole line, and close the file."""
        self._files.pop(stream_id, None)
        try:
            f.truncate(self._ends.pop(stream_id))
        except OSError:
            pass  # the torn line stays; readers skip a last line without a newline
        finally:
            try:
                f.close()
            except OSError:
                pass

    def flush(self) -> None:
        for f in self._files.values():
            f.flush()

    def end_stream(self, stream_id: str) -> None:
        """Close one stream's file (a batch job finishing a video)."""
        f = self._files.pop(stream_id, None)
        self._ends.pop(stream_id, None)
        if f is not None:
            f.close()

    def close(self) -> None:
        files, self._files = self._files, {}
        self._ends.clear()
        for f in files.values():
            f.close()

    def stats(self) -> dict[str, Any]:
        return {"lines": self.delivered, "failed": self.failed}


class JsonlSink(LineFilesSink):
    """One ``vis.frame`` line per frame and stream, flushed per line.

    Args:
        output_dir: folder of the files (created).
        fsync_every: also ``fsync`` every this many lines (0 = never).
        resume: append to existing files (the runner cuts them back to the resume point
            first) instead of truncating them.
        record_version: write ``vis.frame/2`` (box-relative masks) or ``vis.frame/1``.
        opener: how a stream's file is opened (``open_for_lines``).
    """

    def __init__(
        self,
        output_dir: str | Path,
        *,
        fsync_every: int = 0,
        resume: bool = False,
        record_version: int = 2,
        opener: Callable[[Path, bool], BinaryIO] = open_for_lines,
    ) -> None:
        super().__init__(output_dir, resume=resume, opener=opener)
        self.record_version = record_version
        self.fsync_every = fsync_every
        self._count = 0

    def path_for(self, stream_id: str) -> Path:
        return jsonl_path(self.output_dir, stream_id)

    def write(self, result: FrameResult, image: np.ndarray | None = None) -> None:
        line = json_of(result, version=self.record_version) + b"\n"
        self._write_line(result.stream_id, line)
        self._count += 1
        if self.fsync_every and self._count % self.fsync_every == 0:
            try:
                os.fsync(self._files[result.stream_id].fileno())
            except OSError as exc:
                raise SinkError(
                    f"cannot write {self.path_for(result.stream_id)}: {exc.strerror}"
                ) from exc
