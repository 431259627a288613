"""``TrackSpool``: regroup a run's instances by track on disk instead of in memory.

Contract: ``add(track_id, position, payload)`` stores one instance (``payload`` is JSON-ready)
in a temporary SQLite file; ``track(track_id)`` yields its ``(position, payload)`` pairs in
position order. Formats written track by track (YouTube-VIS, CVAT for video) use it so an
export's memory stays one track's worth whatever the length of the video.
"""

from __future__ import annotations

import json
import sqlite3
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any


class TrackSpool:
    """A temporary on-disk table ``(track, position) -> payload``; use as a context manager."""

    def __init__(self, work_dir: str | Path | None = None) -> None:
        self._tmp = tempfile.TemporaryDirectory(prefix="vis-export-", dir=work_dir)
        try:
            self._db = sqlite3.connect(Path(self._tmp.name) / "spool.sqlite")
            self._db.execute("PRAGMA journal_mode=OFF")
            self._db.execute("PRAGMA synchronous=OFF")
            self._db.execute("CREATE TABLE inst (track INTEGER, pos INTEGER, payload TEXT)")
        except BaseException:
            self._tmp.cleanup()
            raise

    def add(self, track_id: int, position: int, payload: Any) -> None:
        self._db.execute(
            "INSERT INTO inst VALUES (?, ?, ?)",
            (int(track_id), int(position), json.dumps(payload, separators=(",", ":"))),
        )

    def track(self, track_id: int) -> Iterator[tuple[int, Any]]:
        if not getattr(self, "_indexed", False):
            self._db.execute("CREATE INDEX inst_track ON inst (track, pos)")
            self._indexed = True
        cur = self._db.execute(
            "SELECT pos, payload FROM inst WHERE track = ? ORDER BY pos", (int(track_id),)
        )
        for pos, payload in cur:
            yield pos, json.loads(payload)

    def close(self) -> None:
        """Close the table and remove its folder (whatever happened, interrupts included)."""
        try:
            self._db.close()
        finally:
            self._tmp.cleanup()

    def __enter__(self) -> TrackSpool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
