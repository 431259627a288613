"""Analytics settings: counting lines and zones, validated at load and against each frame size.

Contract: ``AnalyticsConfig`` (YAML section ``analytics``) checks its own geometry when built
(a line of two distinct points, a polygon of at least 3 points and non-zero area) and raises
``ConfigError`` naming the key and the value; ``check_classes(labels)`` (once the detector's
classes are known) and ``check_frame(width, height)`` (once a stream's frame size is known)
raise ``ConfigError`` in one line naming the line or zone.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Literal

from vis.analytics.geometry import polygon_area
from vis.config import ConfigError, require
from vis.schema import MAX_LABEL_CHARS


def _name_ok(kind: str, name: str) -> None:
    require(bool(name.strip()), "name", name, f"must name the {kind}")
    require(len(name) <= MAX_LABEL_CHARS, "name", name[:40], f"is over {MAX_LABEL_CHARS} chars")


@dataclasses.dataclass(frozen=True)
class LineSpec:
    """A counting line.

    Attributes:
        name: the line's name in events and on the overlay.
        points: ((x1, y1), (x2, y2)) in frame pixels. ``in`` is a crossing from the left of
            the line to its right, looking from the first point to the second on the image
            (a line drawn left to right: from above it to below it).
        classes: labels counted (None: every class).
    """

    name: str
    points: tuple[tuple[float, float], tuple[float, float]]
    classes: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        _name_ok("line", self.name)
        (x1, y1), (x2, y2) = self.points
        require(
            math.hypot(x2 - x1, y2 - y1) >= 1.0,
            "points",
            [list(p) for p in self.points],
            f"of line {self.name!r} is degenerate: its two points must be at least 1 px apart",
        )


@dataclasses.dataclass(frozen=True)
class ZoneSpec:
    """A zone.

    Attributes:
        name: the zone's name in events and on the overlay.
        polygon: ((x, y), ...) in frame pixels, at least 3 points, non-zero area.
        classes: labels counted (None: every class).
        max_occupancy: occupancy above this sets ``overcrowded`` on ``zone_occupancy``
            events (None: no limit).
    """

    name: str
    polygon: tuple[tuple[float, float], ...]
    classes: tuple[str, ...] | None = None
    max_occupancy: int | None = None

    def __post_init__(self) -> None:
        _name_ok("zone", self.name)
        poly = [list(p) for p in self.polygon]
        require(len(poly) >= 3, "polygon", poly, f"of zone {self.name!r} needs at least 3 points")
        for p in poly:
            require(len(p) == 2, "polygon", poly, f"of zone {self.name!r}: points are [x, y]")
        require(
            abs(polygon_area(self.polygon)) >= 1.0,
            "polygon",
            poly,
            f"of zone {self.name!r} is degenerate: its area is zero",
        )
        require(
            self.max_occupancy is None or self.max_occupancy >= 0,
            "max_occupancy",
            self.max_occupancy,
            "must be >= 0",
        )


@dataclasses.dataclass(frozen=True)
class AnalyticsConfig:
    """Counting lines and zones decided on each track's mask (docs/configuration.md).

    Attributes:
        lines, zones: the geometry (empty: analytics off).
        ground: the point a line crossing is decided on: ``mask`` (the bottom of the mask:
            the mean column of its lowest rows) or ``box`` (the box's bottom-centre).
        line_margin_px, line_margin_height: hysteresis: a track changes side only once its
            ground point is more than max(``line_margin_px``, ``line_margin_height`` x its
            box height) pixels past the line.
        zone_enter_overlap, zone_exit_overlap: a track enters a zone when at least this
            fraction of its mask lies inside the polygon, and leaves it below the exit
            fraction (with ``ground: box``: its bottom-centre inside or not).
        min_track_frames: a track's events fire only once it has been in this many results.
        absent_exit_s: a track missing from the results this long leaves its zones
            (``reason: absent``); a shorter gap (occlusion, a missed keyframe) does not.
    """

    lines: tuple[LineSpec, ...] = ()
    zones: tuple[ZoneSpec, ...] = ()
    ground: Literal["mask", "box"] = "mask"
    line_margin_px: float = 3.0
    line_margin_height: float = 0.05
    zone_enter_overlap: float = 0.5
    zone_exit_overlap: float = 0.3
    min_track_frames: int = 3
    absent_exit_s: float = 1.0

    def __post_init__(self) -> None:
        for kind, items in (("lines", self.lines), ("zones", self.zones)):
            names = [i.name for i in items]
            dup = next((n for n in names if names.count(n) > 1), None)
            require(dup is None, kind, dup, "is the name of two items: names must differ")
        require(self.line_margin_px >= 0, "line_margin_px", self.line_margin_px, "must be >= 0")
        require(
            self.line_margin_height >= 0,
            "line_margin_height",
            self.line_margin_height,
            "must be >= 0",
        )
        require(
            0 < self.zone_enter_overlap <= 1,
            "zone_enter_overlap",
            self.zone_enter_overlap,
            "must be in (0, 1]",
        )
        require(
            0 < self.zone_exit_overlap <= self.zone_enter_overlap,
            "zone_exit_overlap",
            self.zone_exit_overlap,
            "must be in (0, zone_enter_overlap]",
        )
        require(
            self.min_track_frames >= 1, "min_track_frames", self.min_track_frames, "must be >= 1"
        )
        require(self.absent_exit_s >= 0, "absent_exit_s", self.absent_exit_s, "must be >= 0")

    @property
    def enabled(self) -> bool:
        return bool(self.lines or self.zones)

    def _items(self) -> list[tuple[str, str, tuple[str, ...] | None, tuple]]:
        """(key, name, classes, points) of every line and zone."""
        return [
            (f"analytics.lines[{i}]", s.name, s.classes, s.points) for i, s in enumerate(self.lines)
        ] + [
            (f"analytics.zones[{i}]", s.name, s.classes, s.polygon)
            for i, s in enumerate(self.zones)
        ]

    def check_classes(self, labels: list[str]) -> None:
        """Every class named by a line or zone is one of the detector's ``labels``.

        Raises:
            ConfigError: one line naming the line or zone and the unknown class.
        """
        known = [x for x in labels if x != "background"]
        for key, name, classes, _ in self._items():
            for c in classes or ():
                if c not in known:
                    raise ConfigError(
                        f"{key}.classes: unknown class {c!r} in {name!r} (the detector's "
                        f"classes: {', '.join(known)})"
                    )

    def check_frame(self, width: int, height: int) -> None:
        """Every point lies inside a ``width`` x ``height`` frame (edges included).

        Raises:
            ConfigError: one line naming the line or zone, the point and the frame size.
        """
        for key, name, _, points in self._items():
            for x, y in points:
                if not (0 <= x <= width and 0 <= y <= height):
                    raise ConfigError(
                        f"{key} {name!r}: point [{x:g}, {y:g}] is outside the "
                        f"{width}x{height} frame"
                    )
