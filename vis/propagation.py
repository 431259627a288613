"""Mask propagation between keyframes by dense optical flow.

Contract: ``Propagator(config).warp_fn(prev_gray, gray)`` returns a function that moves a
``BoxMask`` from the previous frame to the current one, touching only a window around the
object.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence
from typing import Literal

import cv2
import numpy as np

from vis.config import require
from vis.ops.flow import (
    FlowEstimator,
    FlowField,
    FlowMethod,
    Region,
    auto_scale,
    object_windows,
    plan_regions,
)
from vis.ops.masks import BoxMask

WarpMode = Literal["ecc", "affine", "dense"]
#: the coarsest ``finest_scale`` accepted (1/16 resolution)
MAX_FINEST = 4
#: ``finest_scale: auto`` for files processed offline: half resolution. Chosen on two folds of
#: DAVIS (tuned on one, reported on the other; bench/results/propagation_fast.md): mean J at
#: N=10 both directions 0.720 -> 0.748 and 0.886 -> 0.898, at about 3.6x the flow time
OFFLINE_FINEST_SCALE = 1
FlowRegion = Literal["objects", "frame"]
#: offline, where a track's box between two keyframes comes from (``PropagationConfig.boxes``)
BoxSource = Literal["interpolate", "mask"]


@dataclasses.dataclass(frozen=True)
class PropagationConfig:
    """Optical-flow propagation and smoothing settings.

    Attributes:
        warp: how a mask moves: ``ecc`` (per-object rigid alignment, initialised by the
            flow), ``affine`` (per-object similarity fitted to the flow), ``dense``
            (per-pixel remap by the flow).
        method: flow algorithm.
        region: where the flow is computed: ``objects`` (only the tracks' windows, merged
            into a few rectangles) or ``frame`` (the whole frame).
        downscale: compute flow on a frame shrunk by this factor (1 = full resolution), or
            ``auto``: per region, the largest whole factor that keeps the smallest object in
            it at least ``min_object_px`` pixels a side, at most ``max_downscale``.
        min_object_px: ``downscale: auto``: the shorter box side an object keeps.
        max_downscale: ``downscale: auto``: the largest factor used.
        finest_scale: the finest pyramid level DIS computes the flow on (0 = full resolution,
            1 = half, 2 = quarter), ``preset``: the method's own (2 for ``dis_ultrafast``
            and ``dis_fast``, 1 for ``dis_medium``), or ``auto``: ``OFFLINE_FINEST_SCALE``
            for files processed offline, the preset for live streams (where it keeps a
            25 fps camera real-time at N=10). Finer levels follow thin, fast parts
            (limbs) that a coarse patch grid averages with the background; each level finer
            costs about 2-4x the flow time. The coarse-to-fine search above it is the preset's.
        smoothing: weight of the new detection when blending on keyframes (1 = no smoothing).
        min_area: a propagated mask smaller than this many pixels has collapsed; also the
            size of specks removed and holes filled when cleaning masks.
        boxes: offline, the box of a track between two keyframes that both hold it:
            ``interpolate`` (its two keyframe boxes interpolated linearly in frame index, as
            annotation tools interpolate a track between keyframes: the detector's box
            kept through occlusions and flow drift) or ``mask`` (the tight box of the
            carried mask). Live streams and the frames after a file's last keyframe always
            use the mask's box.
    """

    warp: WarpMode = "dense"
    method: FlowMethod = "dis_ultrafast"
    region: FlowRegion = "objects"
    downscale: float | Literal["auto"] = 1.0
    min_object_px: float = 24.0
    max_downscale: float = 4.0
    finest_scale: int | Literal["preset", "auto"] = "auto"
    smoothing: float = 0.7
    min_area: int = 20
    boxes: BoxSource = "interpolate"

    def __post_init__(self) -> None:
        require(
            self.downscale == "auto" or self.downscale >= 1.0,
            "propagation.downscale",
            self.downscale,
            "must be >= 1 or auto",
        )
        require(
            self.min_object_px >= 4, "propagation.min_object_px", self.min_object_px, "must be >= 4"
        )
        require(
            self.max_downscale >= 1, "propagation.max_downscale", self.max_downscale, "must be >= 1"
        )
        require(
            self.finest_scale in ("preset", "auto")
            or (not isinstance(self.finest_scale, bool) and 0 <= self.finest_scale <= MAX_FINEST),
            "propagation.finest_scale",
            self.finest_scale,
            f"must be auto, preset or an integer level in [0, {MAX_FINEST}] (0 = full resolution)",
        )
        require(
            0.0 < self.smoothing <= 1.0,
            "propagation.smoothing",
            self.smoothing,
            "must be in (0, 1]",
        )
        require(self.min_area >= 1, "propagation.min_area", self.min_area, "must be >= 1")
        require(
            self.boxes in ("interpolate", "mask"),
            "propagation.boxes",
            self.boxes,
            "must be interpolate or mask",
        )


def warp_mask_dense(mask: BoxMask, flow: FlowField, *, margin: int = 3) -> BoxMask | None:
    """Move ``mask`` from the previous frame into the current one.

    Args:
        mask: the object's soft mask in the previous frame.
        flow: backward flow (current -> previous) from ``FlowEstimator.field``.
        margin: extra pixels around the moved window.

    Returns:
        The warped mask (cropped to its new support), or None if nothing is left (the
        object left the frame or the mask collapsed).
    """
    h, w = mask.image_size
    bits = mask.bits
    if not bits.any():
        return None
    # one flow window around the box, wide enough for the usual motion: read once
    g = margin + 4 + math.ceil(2 * math.hypot(*mask.velocity))
    gx0, gy0 = max(mask.x0 - g, 0), max(mask.y0 - g, 0)
    gx1, gy1 = min(mask.x1 + g, w), min(mask.y1 + g, h)
    around = flow.window(gx0, gy0, gx1, gy1)
    inside = around[mask.y0 - gy0 : mask.y1 - gy0, mask.x0 - gx0 : mask.x1 - gx0][bits]
    d = -column_medians(inside)  # object motion, previous -> current
    dx, dy = float(d[0]), float(d[1])
    if _leaving(mask) and math.hypot(dx, dy) < 0.5 * math.hypot(*mask.velocity):
        # nothing of the object is left at the border to match: the flow there fades to the
        # still background and the mask would stick to the edge; keep the last motion instead
        return _apply_affine(mask, _translation(*mask.velocity))
    spread = float(np.abs(inside + d).max()) if len(inside) > 1 else 0.0
    m = margin + math.ceil(spread)
    x0 = math.floor(mask.x0 + min(dx, 0)) - m
    y0 = math.floor(mask.y0 + min(dy, 0)) - m
    x1 = math.ceil(mask.x1 + max(dx, 0)) + m
    y1 = math.ceil(mask.y1 + max(dy, 0)) + m
    x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
    if x1 <= x0 or y1 <= y0:
        return None
    if gx0 <= x0 and gy0 <= y0 and x1 <= gx1 and y1 <= gy1:
        f = around[y0 - gy0 : y1 - gy0, x0 - gx0 : x1 - gx0]
    else:
        f = flow.window(x0, y0, x1, y1)
    map_x = f[..., 0] + np.arange(x0 - mask.x0, x1 - mask.x0, dtype=np.float32)[None, :]
    map_y = f[..., 1] + np.arange(y0 - mask.y0, y1 - mask.y0, dtype=np.float32)[:, None]
    warped = cv2.remap(
        mask.prob, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0.0
    )
    out = BoxMask.from_full(warped)
    if out is None:
        return None
    # at the border the flow is unreliable: the motion seen before reaching it is kept
    v = mask.velocity if mask.touches_border else (dx, dy)
    return BoxMask(out.x0 + x0, out.y0 + y0, out.prob, (h, w), v)


def column_medians(a: np.ndarray) -> np.ndarray:
    """(n, k) -> (k,) median of each column, as ``np.median(a, axis=0)`` (n >= 1) without its
    generic machinery: a partial sort (called for every mask of every propagated frame)."""
    n = len(a)
    k = n // 2
    if n % 2:
        return np.partition(a, k, axis=0)[k]
    q = np.partition(a, (k - 1, k), axis=0)
    return (q[k - 1] + q[k]) / 2


def _translation(dx: float, dy: float) -> np.ndarray:
    """The (2, 3) image transform that shifts by (dx, dy)."""
    return np.array([[1.0, 0.0, dx], [0.0, 1.0, dy]], np.float64)


def _leaving(mask: BoxMask, *, min_speed: float = 0.5) -> bool:
    """The mask touches an image border and its last motion points out through it."""
    h, w = mask.image_size
    vx, vy = mask.velocity
    return (
        (mask.x0 <= 0 and vx < -min_speed)
        or (mask.y0 <= 0 and vy < -min_speed)
        or (mask.x1 >= w and vx > min_speed)
        or (mask.y1 >= h and vy > min_speed)
    )


def _apply_affine(mask: BoxMask, m: np.ndarray) -> BoxMask | None:
    """Warp ``mask`` by the (2, 3) image-coordinate transform ``m`` (previous -> current)."""
    h, w = mask.image_size
    corners = (
        np.array(
            [
                [mask.x0, mask.y0, 1],
                [mask.x1, mask.y0, 1],
                [mask.x0, mask.y1, 1],
                [mask.x1, mask.y1, 1],
            ],
            np.float64,
        )
        @ m.T
    )
    x0, y0 = (np.floor(corners.min(0)) - 1).astype(int)
    x1, y1 = (np.ceil(corners.max(0)) + 1).astype(int)
    x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
    if x1 <= x0 or y1 <= y0:
        return None
    # crop coordinates -> window coordinates: shift in, apply m, shift out
    a = m.astype(np.float64).copy()
    a[:, 2] += a[:, :2] @ np.array([mask.x0, mask.y0]) - np.array([x0, y0])
    warped = cv2.warpAffine(
        mask.prob,
        a,
        (x1 - x0, y1 - y0),
        flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=0.0,
    )
    out = BoxMask.from_full(warped)
    if out is None:
        return None
    centre = np.array([(mask.x0 + mask.x1) / 2, (mask.y0 + mask.y1) / 2, 1.0])
    dx, dy = m @ centre - centre[:2]
    return BoxMask(int(out.x0 + x0), int(out.y0 + y0), out.prob, (h, w), (float(dx), float(dy)))


def fit_similarity(mask: BoxMask, flow: FlowField, *, max_points: int = 400) -> np.ndarray:
    """(2, 3) rotation + scale + translation (previous -> current) that best explains the
    forward ``flow`` inside the mask's eroded interior (RANSAC); median shift as fallback."""
    bits = mask.bits
    inner = cv2.erode(bits.astype(np.uint8), np.ones((3, 3), np.uint8), iterations=2).astype(bool)
    if inner.sum() < 12:
        inner = bits
    ys, xs = np.nonzero(inner)
    if len(xs) > max_points:  # deterministic subsample
        step = len(xs) / max_points
        idx = (np.arange(max_points) * step).astype(int)
        ys, xs = ys[idx], xs[idx]
    gx, gy = xs + mask.x0, ys + mask.y0
    f = flow.window(mask.x0, mask.y0, mask.x1, mask.y1)[ys, xs]
    m = None
    if len(xs) >= 6:
        src = np.stack([gx, gy], 1).astype(np.float32)
        m, _ = cv2.estimateAffinePartial2D(
            src,
            src + f.astype(np.float32),
            method=cv2.RANSAC,
            ransacReprojThreshold=1.5,
            maxIters=200,
        )
    if m is None or not np.isfinite(m).all():
        d = column_medians(f) if len(f) else np.zeros(2)
        m = _translation(*d)
    return m


def warp_mask_affine(mask: BoxMask, flow: FlowField) -> BoxMask | None:
    """Move ``mask`` by the similarity fitted to the forward ``flow`` (see ``fit_similarity``)."""
    if not mask.bits.any():
        return None
    return _apply_affine(mask, fit_similarity(mask, flow))


def warp_mask_ecc(
    mask: BoxMask,
    flow: FlowField,
    prev_gray: np.ndarray,
    gray: np.ndarray,
    *,
    iterations: int = 15,
    pad: int = 6,
    min_correlation: float = 0.6,
) -> BoxMask | None:
    """Move ``mask`` by a rigid (rotation + translation) alignment of the object's pixels.

    The previous frame's pixels under the mask are aligned to the current frame with ECC
    (``cv2.findTransformECCWithMask``), starting from the median forward ``flow`` inside
    the mask (or from the mask's last velocity where it touches the image border). Where
    ECC fails or correlates below ``min_correlation`` (occlusion, blur), that starting
    estimate is used instead.
    """
    h, w = mask.image_size
    bits = mask.bits
    if not bits.any():
        return None
    if mask.touches_border and any(mask.velocity):
        # flow is unreliable at the image border: keep the last velocity as the prior
        init = _translation(*mask.velocity)
    else:
        # the median forward flow inside the mask; ECC finds the rotation itself (a RANSAC
        # similarity fitted to the flow here cost a third of the warp and scored no better)
        d = column_medians(flow.window(mask.x0, mask.y0, mask.x1, mask.y1)[bits])
        init = _translation(*d)
    tx0, ty0 = max(mask.x0 - pad, 0), max(mask.y0 - pad, 0)
    tx1, ty1 = min(mask.x1 + pad, w), min(mask.y1 + pad, h)
    tmpl = prev_gray[ty0:ty1, tx0:tx1].astype(np.float32)
    tmask = np.zeros(tmpl.shape, np.uint8)
    tmask[mask.y0 - ty0 : mask.y1 - ty0, mask.x0 - tx0 : mask.x1 - tx0] = bits
    d = (
        init[:, 2]
        + init[:, :2] @ np.array([(tx0 + tx1) / 2, (ty0 + ty1) / 2])
        - np.array([(tx0 + tx1) / 2, (ty0 + ty1) / 2])
    )
    mg = 8 + int(np.ceil(np.abs(d).max()))
    # input window around the expected position; it may extend past the frame border, where
    # its pixels are padding marked invalid in the ECC input mask
    ix0, iy0 = int(np.floor(tx0 + min(d[0], 0))) - mg, int(np.floor(ty0 + min(d[1], 0))) - mg
    ix1, iy1 = int(np.ceil(tx1 + max(d[0], 0))) + mg, int(np.ceil(ty1 + max(d[1], 0))) + mg
    cx0, cy0, cx1, cy1 = max(ix0, 0), max(iy0, 0), min(ix1, w), min(iy1, h)
    m = init
    if cx1 - cx0 >= 4 and cy1 - cy0 >= 4 and tmask.sum() >= 30:
        inp = np.zeros((iy1 - iy0, ix1 - ix0), np.float32)
        valid = np.zeros(inp.shape, np.uint8)
        inp[cy0 - iy0 : cy1 - iy0, cx0 - ix0 : cx1 - ix0] = gray[cy0:cy1, cx0:cx1]
        valid[cy0 - iy0 : cy1 - iy0, cx0 - ix0 : cx1 - ix0] = 255
        # template coords -> input-window coords, from the flow estimate (rigid part only)
        r = init[:, :2] / max(np.sqrt(abs(np.linalg.det(init[:, :2]))), 1e-6)
        wm = np.zeros((2, 3), np.float32)
        wm[:, :2] = r
        wm[:, 2] = init[:, :2] @ np.array([tx0, ty0]) + init[:, 2] - np.array([ix0, iy0])
        try:
            cc, wm = cv2.findTransformECCWithMask(
                tmpl,
                inp,
                tmask,
                valid,
                wm,
                cv2.MOTION_EUCLIDEAN,
                (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, iterations, 1e-4),
                3,
            )
            if cc >= min_correlation:
                m = wm.astype(np.float64)
                m[:, 2] += np.array([ix0, iy0]) - m[:, :2] @ np.array([tx0, ty0])
        except cv2.error:
            pass  # no convergence: keep the flow estimate
    return _apply_affine(mask, m)


class Propagator:
    """Makes, once per frame, the function that moves masks from the previous frame."""

    def __init__(self, config: PropagationConfig) -> None:
        self.config = config
        auto = config.downscale == "auto"
        fixed = 1.0 if auto else float(config.downscale)
        finest = None if config.finest_scale in ("preset", "auto") else int(config.finest_scale)
        self.flow = FlowEstimator(
            method=config.method, downscale=fixed, keep_detail=auto, finest_scale=finest
        )
        # ``auto`` shrinks no further than the flow preset's own coarsening: nothing is lost
        self.max_scale = min(config.max_downscale, 2.0**self.flow.finest_scale)

    def regions(self, masks: Sequence[BoxMask] | None, image_size: tuple[int, int]) -> list[Region]:
        """Where the frame's flow is computed for ``masks`` (None: the whole frame)."""
        c = self.config
        h, w = image_size
        if masks is None or c.region == "frame":
            masks = list(masks or [])
            if c.downscale != "auto":
                return [Region(0, 0, w, h, float(c.downscale))]
            # the whole frame at the scale of the smallest object (no object: the coarsest)
            scale = auto_scale(masks, min_size=c.min_object_px, max_scale=self.max_scale)
            return [Region(0, 0, w, h, float(scale.min()) if len(scale) else self.max_scale)]
        masks = [m for m in masks if m.prob.size]
        if not masks:
            return []
        if c.downscale == "auto":
            scales = auto_scale(masks, min_size=c.min_object_px, max_scale=self.max_scale)
        else:
            scales = np.full(len(masks), float(c.downscale))
        return plan_regions(object_windows(masks), scales, image_size, min_side=self.flow.min_side)

    def warp_fn(
        self,
        prev_gray: np.ndarray,
        gray: np.ndarray,
        masks: Sequence[BoxMask] | None = None,
    ) -> Callable[[BoxMask], BoxMask | None]:
        """Compute the frame's flow and return ``warp(mask) -> mask | None``.

        Args:
            prev_gray, gray: (H, W) uint8 previous and current frames.
            masks: the masks ``warp`` will be asked to move (in the previous frame): with
                ``region: objects`` the flow is computed around them only (none: no flow at
                all). None: the whole frame.
        """
        regions = self.regions(masks, gray.shape)
        if self.config.warp == "dense":
            backward = self.flow.field(gray, prev_gray, regions)
            return lambda m: warp_mask_dense(m, backward)
        forward = self.flow.field(prev_gray, gray, regions)
        if self.config.warp == "affine":
            return lambda m: warp_mask_affine(m, forward)
        return lambda m: warp_mask_ecc(m, forward, prev_gray, gray)
