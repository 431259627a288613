"""Analytics events read back: ``vis.event/1`` record values -> checked, de-duplicated dicts.

Contract: ``EventAssembler.add(value, key)`` returns the event dict of one record value, or
None for a malformed record (not JSON, another schema, an unknown kind, a missing field:
counted in ``malformed``) or one already returned (delivery is at least once: counted in
``duplicates``). Pure logic, no I/O; ``consumer.EventReader`` feeds it from a topic.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from typing import Any

from vis.analytics import EVENT_SCHEMA, KINDS

log = logging.getLogger(__name__)

#: the fields of each kind (besides ``schema`` and ``event``)
FIELDS = {kind: {f.name for f in dataclasses.fields(cls)} for kind, cls in KINDS.items()}


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
        ValueError: not a ``vis.event/1`` event of a known kind with all its fields.
    """
    if value is None:
        raise ValueError("empty record")
    event = json.loads(value)
    if not isinstance(event, dict) or event.get("schema") != EVENT_SCHEMA:
        raise ValueError(f"not a {EVENT_SCHEMA} record")
    kind = event.get("event")
    if kind not in FIELDS:
        raise ValueError(f"unknown event kind {kind!r}")
    missing = FIELDS[kind] - set(event)
    if missing:
        raise ValueError(f"{kind} event without {', '.join(sorted(missing))}")
    return event


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
        except (ValueError, TypeError) as exc:
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
