"""Optical flow where the objects are, at a resolution chosen from their sizes.

Contract: ``object_windows`` gives each mask the window its flow must cover (box + motion
margin); ``plan_regions`` merges those windows into a few rectangles, each with the factor it
is shrunk by (one bounding rectangle when they cover most of the frame);
``FlowEstimator.field(a, b, regions)`` computes a frame pair's flow on those rectangles and
returns a ``FlowField``, which samples it, in full-resolution pixels, for any window with
``window(x0, y0, x1, y1)``. The estimator keeps bounded caches (a DIS instance per region
size, the last few shrunk frames); everything else is pure. No I/O.
"""

from __future__ import annotations

import dataclasses
import time
from collections import OrderedDict
from collections.abc import Sequence
from typing import Literal

import cv2
import numpy as np

from vis.ops.masks import BoxMask

FlowMethod = Literal["dis_ultrafast", "dis_fast", "dis_medium", "farneback"]

#: a flow region is never smaller than this many pixels a side at its reduced resolution
#: (DIS needs a few patches to stand on)
MIN_REGION_PX = 32
#: pyramid levels DIS keeps above its finest one on every region (its coarsest level is
#: about log2(longer side / (4 * patch size))): the coarse-to-fine search that follows
#: large motions (0 levels: PETS09 and DAVIS lose a little, see docs/configuration.md)
COARSE_LEVELS = 1
#: the fixed cost of one more flow call, in reduced-resolution pixels: two windows closer
#: than this are cheaper computed as one
CALL_OVERHEAD_PX = 64 * 64


@dataclasses.dataclass(frozen=True)
class Region:
    """A rectangle of the frame whose flow is computed at 1/``scale`` resolution.

    Attributes:
        x0, y0, x1, y1: the rectangle in full-resolution pixels (x1, y1 exclusive).
        scale: downscale factor (1 = full resolution).
    """

    x0: int
    y0: int
    x1: int
    y1: int
    scale: float = 1.0


def object_windows(
    masks: Sequence[BoxMask], *, margin: int = 16, margin_frac: float = 0.25
) -> np.ndarray:
    """(N, 4) int windows (x0, y0, x1, y1) each mask's flow must cover: its box grown by
    ``margin`` + ``margin_frac`` of its larger side + twice its last per-frame motion, clipped
    to the image. Empty masks get an empty window."""
    out = np.zeros((len(masks), 4), np.int64)
    for i, m in enumerate(masks):
        if m.prob.size == 0:
            continue
        h, w = m.image_size
        g = margin + margin_frac * max(m.x1 - m.x0, m.y1 - m.y0)
        g += 2.0 * float(np.hypot(*m.velocity))
        g = int(np.ceil(g))
        out[i] = (max(m.x0 - g, 0), max(m.y0 - g, 0), min(m.x1 + g, w), min(m.y1 + g, h))
    return out


def auto_scale(masks: Sequence[BoxMask], *, min_size: float, max_scale: float) -> np.ndarray:
    """(N,) downscale per mask so that its shorter box side stays >= ``min_size`` pixels
    (integer factors in [1, ``max_scale``]: area resizing by a whole factor is exact and fast)."""
    side = np.array([min(m.x1 - m.x0, m.y1 - m.y0) for m in masks], np.float64)
    return np.clip(np.floor(side / min_size), 1.0, max_scale)


def _grow(
    box: np.ndarray, scale: np.ndarray, image_size: tuple[int, int], min_side: float
) -> np.ndarray:
    """(N, 4) boxes grown about their centres to at least ``min_side`` pixels and
    ``MIN_REGION_PX`` reduced pixels a side (the whole frame side where it is shorter), kept
    inside the frame."""
    out = box.astype(np.float64).copy()
    need = np.ceil(np.maximum(MIN_REGION_PX * scale, min_side))
    for lo, size in ((0, image_size[1]), (1, image_size[0])):
        a, b = out[:, lo], out[:, lo + 2]
        short = b - a < need
        n = np.minimum(need, size)
        start = np.clip(a - (n - (b - a)) // 2, 0, size - n)
        out[:, lo] = np.where(short, start, a)
        out[:, lo + 2] = np.where(short, start + n, b)
    return out


def _union(a: Region, b: Region) -> Region:
    return Region(
        min(a.x0, b.x0), min(a.y0, b.y0), max(a.x1, b.x1), max(a.y1, b.y1), min(a.scale, b.scale)
    )


def plan_regions(
    windows: np.ndarray,
    scales: np.ndarray,
    image_size: tuple[int, int],
    *,
    cover: float = 0.6,
    min_side: float = 0.0,
) -> list[Region]:
    """Merge object windows into the rectangles their flow is computed on.

    Two rectangles are merged while computing their union costs no more than computing both
    (cost: reduced pixels + ``CALL_OVERHEAD_PX`` per call; the union takes the finer scale).
    When the rectangles left cover more than ``cover`` of the frame, the flow is computed
    once on their bounding rectangle.

    Args:
        windows: (N, 4) int (x0, y0, x1, y1) per object; empty windows are ignored.
        scales: (N,) downscale factor per object.
        image_size: (H, W) of the frame.
        cover: fraction of the frame above which one bounding rectangle is used.
        min_side: every region is at least this many pixels a side (see
            ``FlowEstimator.min_side``).

    Returns:
        The regions (empty when there is no object).
    """
    keep = (windows[:, 2] > windows[:, 0]) & (windows[:, 3] > windows[:, 1])
    if not keep.any():
        return []
    sc = np.asarray(scales, np.float64)[keep]
    box = _grow(windows[keep], sc, image_size, min_side)
    alive = np.ones(len(box), bool)

    def union_cost(i: int) -> np.ndarray:
        """(N,) cost of the union of region i with every region."""
        wu = np.maximum(box[:, 2], box[i, 2]) - np.minimum(box[:, 0], box[i, 0])
        hu = np.maximum(box[:, 3], box[i, 3]) - np.minimum(box[:, 1], box[i, 1])
        return wu * hu / np.minimum(sc, sc[i]) ** 2 + CALL_OVERHEAD_PX

    cost = (box[:, 2] - box[:, 0]) * (box[:, 3] - box[:, 1]) / sc**2 + CALL_OVERHEAD_PX
    wu = np.maximum(box[:, None, 2], box[None, :, 2]) - np.minimum(box[:, None, 0], box[None, :, 0])
    hu = np.maximum(box[:, None, 3], box[None, :, 3]) - np.minimum(box[:, None, 1], box[None, :, 1])
    union = wu * hu / np.minimum(sc[:, None], sc[None, :]) ** 2 + CALL_OVERHEAD_PX
    saving = cost[:, None] + cost[None, :] - union
    np.fill_diagonal(saving, -np.inf)
    while alive.sum() > 1:
        k = int(np.argmax(saving))
        i, j = divmod(k, len(box))
        if saving[i, j] < 0:
            break
        box[i] = (*np.minimum(box[i, :2], box[j, :2]), *np.maximum(box[i, 2:], box[j, 2:]))
        sc[i] = min(sc[i], sc[j])
        cost[i] = (box[i, 2] - box[i, 0]) * (box[i, 3] - box[i, 1]) / sc[i] ** 2
        cost[i] += CALL_OVERHEAD_PX
        alive[j] = False
        saving[j, :] = saving[:, j] = -np.inf
        row = cost + cost[i] - union_cost(i)
        row[~alive] = -np.inf
        row[i] = -np.inf
        saving[i, :] = saving[:, i] = row
    regions = [Region(*map(int, box[i]), float(sc[i])) for i in np.flatnonzero(alive)]
    h, w = image_size
    area = sum((r.x1 - r.x0) * (r.y1 - r.y0) for r in regions)
    if len(regions) > 1 and area > cover * h * w:
        u = regions[0]
        for r in regions[1:]:
            u = _union(u, r)
        regions = [u]
    return regions


@dataclasses.dataclass(frozen=True)
class RegionFlow:
    """The flow of one region at reduced resolution.

    Attributes:
        flow: (h, w, 2) float32 flow in reduced pixels.
        u0, v0: the region's top-left pixel in the reduced frame.
        sx, sy: full-resolution pixels per reduced pixel; reduced pixel u (frame coords) has
            its centre at full-resolution x = (u + 0.5) * sx - 0.5.
    """

    flow: np.ndarray
    u0: int = 0
    v0: int = 0
    sx: float = 1.0
    sy: float = 1.0

    @property
    def box(self) -> tuple[float, float, float, float]:
        """(x0, y0, x1, y1) of the region in full-resolution pixels."""
        h, w = self.flow.shape[:2]
        return (
            self.u0 * self.sx,
            self.v0 * self.sy,
            (self.u0 + w) * self.sx,
            (self.v0 + h) * self.sy,
        )


class FlowField:
    """The flow of a frame pair on some regions, sampled per window at full resolution.

    Args:
        image_size: (H, W) of the frame.
        parts: the regions' flows (none: no flow was computed; every window reads zero).
    """

    def __init__(self, image_size: tuple[int, int], parts: Sequence[RegionFlow]) -> None:
        self.image_size = image_size
        self.parts = list(parts)
        self._boxes = np.array([p.box for p in self.parts], np.float64).reshape(-1, 4)

    @classmethod
    def full(cls, flow: np.ndarray) -> FlowField:
        """A field holding one (H, W, 2) full-resolution flow of the whole frame."""
        return cls(flow.shape[:2], [RegionFlow(flow)])

    @property
    def pixels(self) -> int:
        """Reduced-resolution pixels the flow was computed on."""
        return int(sum(p.flow.shape[0] * p.flow.shape[1] for p in self.parts))

    def window(self, x0: int, y0: int, x1: int, y1: int) -> np.ndarray:
        """(y1 - y0, x1 - x0, 2) float32 flow, full-resolution pixels, of a frame window.

        The window is read from the region that overlaps it most; where it extends past that
        region, the region's edge flow is repeated. No region: zero flow.
        """
        if not self.parts:
            return np.zeros((y1 - y0, x1 - x0, 2), np.float32)
        if len(self.parts) == 1:
            p = self.parts[0]
        else:
            b = self._boxes
            ox = np.maximum(np.minimum(b[:, 2], x1) - np.maximum(b[:, 0], x0), 0)
            oy = np.maximum(np.minimum(b[:, 3], y1) - np.maximum(b[:, 1], y0), 0)
            p = self.parts[int(np.argmax(ox * oy))]
        f = p.flow
        h, w = f.shape[:2]
        if p.sx == 1.0 and p.sy == 1.0:
            a, c = x0 - p.u0, y0 - p.v0
            if a >= 0 and c >= 0 and x1 - p.u0 <= w and y1 - p.v0 <= h:
                return f[c : c + y1 - y0, a : a + x1 - x0]
        # window pixel (i, j) -> the region's reduced pixel, centres aligned as cv2.resize does
        m = np.array(
            [
                [1 / p.sx, 0, (x0 + 0.5) / p.sx - 0.5 - p.u0],
                [0, 1 / p.sy, (y0 + 0.5) / p.sy - 0.5 - p.v0],
            ],
            np.float64,
        )
        out = cv2.warpAffine(
            f,
            m,
            (x1 - x0, y1 - y0),
            flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
            borderMode=cv2.BORDER_REPLICATE,
        )
        out[..., 0] *= p.sx
        out[..., 1] *= p.sy
        return out


class FlowEstimator:
    """Dense optical flow between grey frames, on regions of the frame.

    Args:
        method: one of ``FlowMethod``.
        downscale: ``compute`` works at 1/downscale resolution and scales the flow back up.
        keep_detail: on a region shrunk by a factor s, DIS starts its patch search log2(s)
            pyramid levels finer (its presets stop 1-2 levels above full resolution), so
            shrinking by up to 2**finest loses no detail: DIS sees the same patches and skips
            building and filling the finest levels. False: the preset as it is.
        finest_scale: DIS's finest pyramid level (0 = full resolution) in place of the
            preset's; None: the preset's. The coarse-to-fine search above it (``min_side``)
            stays the preset's. Farneback: ignored.
    """

    _DIS = {
        "dis_ultrafast": cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST,
        "dis_fast": cv2.DISOPTICAL_FLOW_PRESET_FAST,
        "dis_medium": cv2.DISOPTICAL_FLOW_PRESET_MEDIUM,
    }
    #: reduced frames kept for the next call (the previous frame is the next call's first one)
    _KEEP = 4
    #: DIS instances kept, one per image size (region sizes are rounded up to ``_STEP``)
    _SIZES = 16
    _STEP = 16

    def __init__(
        self,
        *,
        method: FlowMethod = "dis_ultrafast",
        downscale: float = 1.0,
        keep_detail: bool = False,
        finest_scale: int | None = None,
    ) -> None:
        if method not in (*self._DIS, "farneback"):
            raise ValueError(f"unknown flow method {method!r}")
        self.method = method
        self.downscale = downscale
        self.keep_detail = keep_detail
        # (h, w, finest scale) -> DIS instance, least recently used first: an instance fed
        # images of another size reallocates its buffers, and after a few sizes runs several
        # times slower (measured: 2.4 -> 13-160 ms at 640x360); one instance per size
        self._dis: OrderedDict[tuple[int, int, int], cv2.DISOpticalFlow] = OrderedDict()
        #: the preset's finest pyramid level (0 = full resolution; Farneback: 0)
        self.preset_finest = (
            cv2.DISOpticalFlow_create(self._DIS[method]).getFinestScale()
            if method in self._DIS
            else 0
        )
        #: the finest pyramid level used
        self.finest_scale = (
            self.preset_finest if finest_scale is None or method not in self._DIS else finest_scale
        )
        self._reduced: list[tuple[np.ndarray, float, np.ndarray]] = []
        #: seconds spent resizing / in the flow algorithm, and reduced pixels, since creation
        self.stats = {"resize_s": 0.0, "flow_s": 0.0, "pixels": 0, "calls": 0}

    @property
    def min_side(self) -> float:
        """The smallest region side, in full-resolution pixels, on which DIS still builds
        ``COARSE_LEVELS`` pyramid levels above its finest one (it derives the number of
        levels from the image size); fewer levels shorten the motion it can follow."""
        if self.method not in self._DIS:
            return 0.0
        return 32.0 * 2.0 ** (self.preset_finest + COARSE_LEVELS - 0.5)

    def _calc(self, a: np.ndarray, b: np.ndarray, scale: float) -> np.ndarray:
        t0 = time.perf_counter()
        if self.method in self._DIS:
            finest = self.finest_scale
            if self.keep_detail and scale > 1.0:
                finest = max(finest - round(np.log2(scale)), 0)
            key = (*a.shape[:2], finest)
            dis = self._dis.pop(key, None)
            if dis is None:
                dis = cv2.DISOpticalFlow_create(self._DIS[self.method])
                dis.setFinestScale(finest)
            self._dis[key] = dis
            while len(self._dis) > self._SIZES:
                self._dis.popitem(last=False)
            flow = dis.calc(a, b, None)
        else:
            flow = cv2.calcOpticalFlowFarneback(a, b, None, 0.5, 3, 15, 3, 5, 1.2, 0)
        self.stats["flow_s"] += time.perf_counter() - t0
        self.stats["pixels"] += a.shape[0] * a.shape[1]
        self.stats["calls"] += 1
        return flow

    def reduce(self, img: np.ndarray, scale: float) -> np.ndarray:
        """``img`` shrunk by ``scale`` (area interpolation); the last few are kept, so each
        frame is resized once per scale however many regions and frame pairs use it."""
        if scale <= 1.0:
            return img
        for src, s, out in self._reduced:
            if src is img and s == scale:
                return out
        t0 = time.perf_counter()
        h, w = img.shape
        k = int(scale)
        if k == scale and h >= 8 * k and w >= 8 * k:
            # a whole factor on a frame cut to a multiple of it: OpenCV's fast area path
            # (a fractional ratio takes the generic one, measured 10x slower); the cut-off
            # last rows/columns read the flow of their neighbours
            img = img[: h - h % k, : w - w % k]
            size = (w // k, h // k)
        else:
            size = (max(8, round(w / scale)), max(8, round(h / scale)))
        out = cv2.resize(img, size, interpolation=cv2.INTER_AREA)
        self.stats["resize_s"] += time.perf_counter() - t0
        self._reduced = [(img, scale, out), *self._reduced[: self._KEEP - 1]]
        return out

    def field(self, a: np.ndarray, b: np.ndarray, regions: Sequence[Region]) -> FlowField:
        """Flow with a(x) ~ b(x + flow(x)) on each region, at the region's scale.

        Args:
            a, b: (H, W) uint8 frames.
            regions: where to compute it (see ``vis.ops.flow.plan_regions``); none: no flow.
        """
        h, w = a.shape
        parts = []
        for r in regions:
            ra, rb = self.reduce(a, r.scale), self.reduce(b, r.scale)
            k = int(r.scale)
            if ra is not a and k == r.scale and ra.shape == (h // k, w // k):
                sx = sy = float(k)
            else:
                sx, sy = w / ra.shape[1], h / ra.shape[0]
            u0, u1 = _snap(int(np.floor(r.x0 / sx)), int(np.ceil(r.x1 / sx)), ra.shape[1])
            v0, v1 = _snap(int(np.floor(r.y0 / sy)), int(np.ceil(r.y1 / sy)), ra.shape[0])
            ca = np.ascontiguousarray(ra[v0:v1, u0:u1])
            cb = np.ascontiguousarray(rb[v0:v1, u0:u1])
            parts.append(RegionFlow(self._calc(ca, cb, r.scale), u0, v0, sx, sy))
        return FlowField((h, w), parts)

    def compute(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """(H, W) uint8 images a, b -> (H, W, 2) float32 flow with a(x) ~ b(x + flow(x)).

        ``compute(prev, cur)`` is the forward flow, ``compute(cur, prev)`` the backward one.
        """
        h, w = a.shape
        f = self.field(a, b, [Region(0, 0, w, h, self.downscale)])
        return f.window(0, 0, w, h)


def _snap(a: int, b: int, size: int, step: int = FlowEstimator._STEP) -> tuple[int, int]:
    """[a, b) grown to a multiple of ``step`` long (or the whole [0, size)), kept inside it:
    regions of a few sizes let ``FlowEstimator`` reuse its DIS instances."""
    a, b = max(a, 0), min(b, size)
    n = min(-(-(b - a) // step) * step, size)
    a = min(a, size - n)
    return a, a + n
