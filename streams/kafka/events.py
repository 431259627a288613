"""Analytics events read back: ``vis.event/1`` record values -> checked, de-duplicated dicts.

Contract: ``validate_event(obj)`` is the one check of an event (docs/vis.event.v1.schema.json:
every field of its kind with its type, finite numbers, ranges, string lengths) and raises
``EventError``; ``EventAssembler.add(value, key)`` returns the event dict of one record value,
or None for a malformed record (not JSON, another schema, an unknown kind, a missing or bad
field: counted in ``malformed``, never raised) or one already returned (delivery is at least
once: counted in ``duplicates``). Pure logic, no I/O; ``consumer.EventReader`` feeds it from
a topic.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
from collections.abc import Callable
from typing import Any

from vis.analytics import EVENT_SCHEMA, KINDS
from vis.schema import MAX_CLASS_ID, MAX_ID_CHARS, MAX_INDEX, MAX_INSTANCES, MAX_LABEL_CHARS

log = logging.getLogger(__name__)

#: the fields of each kind (besides ``schema`` and ``event``)
FIELDS = {kind: {f.name for f in dataclasses.fields(cls)} for kind, cls in KINDS.items()}


class EventError(ValueError):
    """A value that is not a valid ``vis.event/1`` event (the message says which field)."""


def _is_int(v: Any, lo: int, hi: int) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and lo <= v <= hi


def _is_number(v: Any, lo: float = -math.inf) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and v >= lo


def _is_text(limit: int) -> Callable[[Any], bool]:
    return lambda v: isinstance(v, str) and len(v) <= limit


_ID = _is_text(MAX_ID_CHARS)
_NAME = _is_text(MAX_LABEL_CHARS)
#: what each field must be (every kind's fields are among these)
_CHECKS: dict[str, Callable[[Any], bool]] = {
    "stream_id": _ID,
    "frame_index": lambda v: _is_int(v, 0, MAX_INDEX),
    "timestamp_ms": _is_number,
    "line": _NAME,
    "zone": _NAME,
    "direction": lambda v: v in ("in", "out"),
    "track_id": lambda v: _is_int(v, 0, MAX_INDEX),
    "class_id": lambda v: _is_int(v, 0, MAX_CLASS_ID),
    "label": _NAME,
    "count": lambda v: _is_int(v, 0, MAX_INDEX),
    "dwell_ms": lambda v: _is_number(v, 0.0),
    "reason": lambda v: v in ("left", "absent", "end"),
    "track_ids": lambda v: (
        isinstance(v, list) and len(v) <= MAX_INSTANCES and all(_is_int(t, 0, MAX_INDEX) for t in v)
    ),
    "max_occupancy": lambda v: v is None or _is_int(v, 0, MAX_INDEX),
    "overcrowded": lambda v: isinstance(v, bool),
}


def validate_event(event: Any) -> dict[str, Any]:
    """Check one decoded event; return it or raise ``EventError`` naming the bad field.
    Unknown extra fields are allowed (consumers ignore them)."""
    if not isinstance(event, dict) or event.get("schema") != EVENT_SCHEMA:
        raise EventError(f"not a {EVENT_SCHEMA} record")
    kind = event.get("event")
    if not isinstance(kind, str) or kind not in FIELDS:
        raise EventError(f"unknown event kind {str(kind)[:40]!r}")
    missing = FIELDS[kind] - set(event)
    if missing:
        raise EventError(f"{kind} event without {', '.join(sorted(missing))}")
    for name in FIELDS[kind]:
        if not _CHECKS[name](event[name]):
            raise EventError(f"{kind} event field {name!r} is {str(event[name])[:40]!r}")
    if kind == "line_cross" and event["count"] < 1:
        raise EventError("line_cross event field 'count' is below 1")
    return event


def event_identity(event: dict[str, Any]) -> tuple:
    """What makes an event unique within its stream (a re-sent copy has the same)."""
    return (
        event["stream_id"],
        event["event"],
        event["frame_index"],
        event.get("line", event.get("zone")),
        event.get("track_id"),
        event.get("direction"),
    )


def parse_event(value: bytes | str | None) -> dict[str, Any]:
    """One record value -> its event dict.

    Raises:
        EventError: not JSON, or not a valid ``vis.event/1`` event (``validate_event``).
    """
    if value is None:
        raise EventError("empty record")
    try:
        event = json.loads(value)
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
        raise EventError(f"not JSON: {exc}") from None
    return validate_event(event)


class EventAssembler:
    """Record values -> event dicts (see the module docstring).

    Args:
        dedup: drop events already returned (same stream, kind, frame, line or zone, track,
            direction).
    """

    def __init__(self, *, dedup: bool = True) -> None:
        self.dedup = dedup
        self.records = 0
        self.malformed = 0
        self.duplicates = 0
        self.last_error = ""
        self._seen: set[tuple] = set()

    def add(self, value: bytes | str | None, key: bytes | None = None) -> dict[str, Any] | None:
        self.records += 1
        try:
            event = parse_event(value)
        except Exception as exc:  # noqa: BLE001 - any unreadable record is counted, not fatal
            self.malformed += 1
            self.last_error = str(exc)
            log.debug("malformed event record (key %r): %s", key, exc)
            return None
        if self.dedup:
            ident = event_identity(event)
            if ident in self._seen:
                self.duplicates += 1
                return None
            self._seen.add(ident)
        return event
