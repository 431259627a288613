"""Small pure geometry for analytics: lines, polygons, a mask's ground point and zone overlap.

Contract: every function takes plain numbers or arrays and returns new values; masks are
``BoxMask`` crops, read only inside their boxes (a zone's raster is cut to the mask's box).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import cv2
import numpy as np

from vis.ops.masks import BoxMask

Point = tuple[float, float]


def polygon_area(polygon: Sequence[Sequence[float]]) -> float:
    """Signed area of a polygon (shoelace), in square pixels."""
    p = np.asarray(polygon, np.float64).reshape(-1, 2)
    x, y = p[:, 0], p[:, 1]
    return 0.5 * float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1)))


def side_of_line(line: Sequence[Point], point: Point) -> tuple[float, float]:
    """(signed distance of ``point`` to the infinite line, position along the segment).

    The distance is positive on the right of the line looking from its first point to its
    second on the image (y down); the position is 0 at the first point, 1 at the second.
    """
    (x1, y1), (x2, y2) = line
    dx, dy = x2 - x1, y2 - y1
    length2 = dx * dx + dy * dy
    px, py = point[0] - x1, point[1] - y1
    return (dx * py - dy * px) / math.sqrt(length2), (dx * px + dy * py) / length2


def ground_point(mask: BoxMask, rows_fraction: float = 0.03) -> Point | None:
    """Where a mask touches the ground: the middle of its lowest rows, at the lowest row.

    Args:
        mask: the instance's box-local mask.
        rows_fraction: the rows taken, as a fraction of the mask's height (at least one
            row), so that a foot lifted by a pixel still counts.

    Returns:
        (x, y) in frame pixels (pixel centres), or None for an empty mask.
    """
    bits = mask.bits
    rows = bits.any(axis=1).nonzero()[0]
    if rows.size == 0:
        return None
    last = int(rows[-1])
    span = max(1, int((last - int(rows[0]) + 1) * rows_fraction + 0.5))
    cols = bits[last - span + 1 : last + 1].any(axis=0).nonzero()[0]
    return mask.x0 + 0.5 * (int(cols[0]) + int(cols[-1]) + 1), mask.y0 + last + 0.5


def box_ground_point(box: Sequence[float]) -> Point:
    """The bottom-centre of an ``x1, y1, x2, y2`` box."""
    return 0.5 * (float(box[0]) + float(box[2])), float(box[3])


def rasterise(polygon: Sequence[Point], height: int, width: int) -> np.ndarray:
    """(H, W) bool: the pixels whose centres lie inside ``polygon`` (its edges included)."""
    out = np.zeros((height, width), np.uint8)
    pts = np.round(np.asarray(polygon, np.float64) * 16).astype(np.int32)
    cv2.fillPoly(out, [pts], 1, lineType=cv2.LINE_8, shift=4)
    return out.astype(bool)


def overlap_fraction(mask: BoxMask, zone: np.ndarray, zone_box: tuple[int, int, int, int]) -> float:
    """Fraction of the mask's pixels inside a zone.

    Args:
        mask: the instance's box-local mask.
        zone: (H, W) bool raster of the zone (``rasterise``).
        zone_box: the raster's non-empty extent ``x0, y0, x1, y1`` (a quick reject).

    Returns:
        In [0, 1]; 0 for an empty mask or a mask outside the zone's extent.
    """
    zx0, zy0, zx1, zy1 = zone_box
    x0, y0 = max(mask.x0, zx0), max(mask.y0, zy0)
    x1, y1 = min(mask.x1, zx1), min(mask.y1, zy1)
    if x0 >= x1 or y0 >= y1 or mask.area == 0:
        return 0.0
    bits = mask.bits[y0 - mask.y0 : y1 - mask.y0, x0 - mask.x0 : x1 - mask.x0]
    inside = np.count_nonzero(bits & zone[y0:y1, x0:x1])
    return inside / mask.area


def point_in_polygon(polygon: Sequence[Point], point: Point) -> bool:
    """Whether ``point`` lies inside ``polygon`` or on its edge."""
    contour = np.asarray(polygon, np.float32).reshape(-1, 1, 2)
    return cv2.pointPolygonTest(contour, (float(point[0]), float(point[1])), False) >= 0
