"""Offline propagation between two keyframes: carry masks forward from the first and backward
from the second, then fuse the two by distance to each keyframe.

Contract: ``carry(masks, grays, propagator)`` moves box-local masks through a run of grey
frames (``grays[0]`` is where the masks are) and returns one ``{key: mask}`` per later frame;
``carry`` of the reversed run is the backward pass. ``fuse(forward, backward, w)`` blends two
estimates of one object's mask in one frame. Pure functions: no state, no I/O.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence

import numpy as np

from vis.ops.masks import BoxMask, clean_mask
from vis.propagation import Propagator


def carry(
    masks: dict[Hashable, BoxMask],
    grays: Sequence[np.ndarray],
    propagator: Propagator,
    *,
    min_area: int = 20,
) -> list[dict[Hashable, BoxMask]]:
    """Move ``masks`` (in ``grays[0]``) through ``grays[1:]``, one flow per frame pair.

    Args:
        masks: key -> mask in the first frame.
        grays: (H, W) uint8 frames, in the order to carry through (reverse them for the
            backward pass).
        propagator: makes each frame pair's warp.
        min_area: a mask smaller than this has collapsed and is carried no further.

    Returns:
        ``len(grays) - 1`` dicts, for ``grays[1]``, ``grays[2]``, ...: the keys whose mask is
        still alive in that frame.
    """
    out: list[dict[Hashable, BoxMask]] = []
    live = dict(masks)
    for prev, cur in zip(grays[:-1], grays[1:]):
        if live:
            warp = propagator.warp_fn(prev, cur, list(live.values()))
            moved = {k: warp(m) for k, m in live.items()}
            live = {k: m for k, m in moved.items() if m is not None and m.area >= min_area}
        out.append(dict(live))
    return out


def fuse(
    forward: BoxMask | None,
    backward: BoxMask | None,
    forward_weight: float,
    *,
    min_area: int = 20,
) -> BoxMask | None:
    """Blend two estimates of one object's soft mask in the same frame.

    Args:
        forward: the mask carried from the earlier keyframe (None: not available).
        backward: the mask carried back from the later keyframe (None: not available).
        forward_weight: weight in [0, 1] of ``forward`` (the backward one gets the rest);
            ignored when only one estimate exists.
        min_area: specks and holes below this area are removed / filled.

    Returns:
        The blended mask cleaned like a keyframe mask, the one estimate that exists, or None.
    """
    if forward is None or backward is None:
        return forward if backward is None else backward
    x0, y0 = min(forward.x0, backward.x0), min(forward.y0, backward.y0)
    x1, y1 = max(forward.x1, backward.x1), max(forward.y1, backward.y1)
    blend = np.zeros((y1 - y0, x1 - x0), np.float32)
    for m, w in ((forward, forward_weight), (backward, 1.0 - forward_weight)):
        blend[m.y0 - y0 : m.y1 - y0, m.x0 - x0 : m.x1 - x0] += w * m.prob
    bits = clean_mask(blend, min_area=min_area)
    prob = np.where(bits, np.maximum(blend, 0.5), np.minimum(blend, 0.499)).astype(np.float32)
    out = BoxMask.from_full(prob)
    if out is None:
        return None
    return BoxMask(out.x0 + x0, out.y0 + y0, out.prob, forward.image_size, forward.velocity)


def forward_weight(offset: int, span: int) -> float:
    """Weight of the earlier keyframe's estimate ``offset`` frames after it, with the later
    keyframe ``span`` frames after it: linear in the distance to each (1 at the earlier one,
    0 at the later one)."""
    return 1.0 - offset / span if span > 0 else 1.0
