"""Analytics events (``vis.event/1``): one frozen dataclass per kind, serialised to dicts.

Contract: ``event.to_dict()`` is the record every sink writes (``"schema": "vis.event/1"``,
``"event"``: the kind); the JSON Schema is docs/vis.event.v1.schema.json and the fields are
described in docs/schema.md.
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

EVENT_SCHEMA = "vis.event/1"


@dataclasses.dataclass(frozen=True)
class Event:
    """What every event carries: where and when it happened."""

    KIND: ClassVar[str] = ""

    stream_id: str
    frame_index: int
    timestamp_ms: float

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"schema": EVENT_SCHEMA, "event": self.KIND}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            out[f.name] = list(value) if isinstance(value, tuple) else value
        return out


@dataclasses.dataclass(frozen=True)
class LineCross(Event):
    """A track's ground point crossed a line (counted once per track and direction).

    ``count`` is the line's running count in that direction, this crossing included.
    """

    KIND: ClassVar[str] = "line_cross"

    line: str
    direction: str  # "in" | "out"
    track_id: int
    class_id: int
    label: str
    count: int


@dataclasses.dataclass(frozen=True)
class ZoneEnter(Event):
    """A track entered a zone."""

    KIND: ClassVar[str] = "zone_enter"

    zone: str
    track_id: int
    class_id: int
    label: str


@dataclasses.dataclass(frozen=True)
class ZoneExit(Event):
    """A track left a zone (``reason``: ``left``, ``absent`` once it has been missing
    ``absent_exit_s``, or ``end``: the stream ended with it inside); ``dwell_ms`` runs from
    its entry to the last frame it was inside."""

    KIND: ClassVar[str] = "zone_exit"

    zone: str
    track_id: int
    class_id: int
    label: str
    dwell_ms: float
    reason: str


@dataclasses.dataclass(frozen=True)
class ZoneOccupancy(Event):
    """The number of tracks inside a zone changed."""

    KIND: ClassVar[str] = "zone_occupancy"

    zone: str
    count: int
    track_ids: tuple[int, ...]
    max_occupancy: int | None
    overcrowded: bool


KINDS = {c.KIND: c for c in (LineCross, ZoneEnter, ZoneExit, ZoneOccupancy)}
