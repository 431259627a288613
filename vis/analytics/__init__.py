"""Analytics on tracked masks: counting lines, zones, dwell and occupancy, as events.

* ``config`` — ``AnalyticsConfig`` (``LineSpec``, ``ZoneSpec``), validated at load, against
  the detector's classes and against each stream's frame size.
* ``geometry`` — small pure ops: side of a line, a mask's ground point, mask-zone overlap.
* ``events`` — the ``vis.event/1`` events (``LineCross``, ``ZoneEnter``, ``ZoneExit``,
  ``ZoneOccupancy``).
* ``analytics`` — ``Analytics``: ``update(result) -> events`` per stream; no I/O.

The sinks that write events live in ``streams/`` (docs/schema.md, docs/kafka.md).
"""

from vis.analytics.analytics import Analytics
from vis.analytics.config import AnalyticsConfig, LineSpec, ZoneSpec
from vis.analytics.events import (
    EVENT_SCHEMA,
    KINDS,
    Event,
    LineCross,
    ZoneEnter,
    ZoneExit,
    ZoneOccupancy,
)

__all__ = [
    "EVENT_SCHEMA",
    "KINDS",
    "Analytics",
    "AnalyticsConfig",
    "Event",
    "LineCross",
    "LineSpec",
    "ZoneEnter",
    "ZoneExit",
    "ZoneOccupancy",
    "ZoneSpec",
]
