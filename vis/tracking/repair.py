"""Identity repair: interactions re-solved once the frames after them are known.

Contract: ``IdentityRepair.push(ready)`` takes a stream's final ``(FrameResult, Frame)`` pairs,
in frame order, as a processor emits them, and returns pairs in the same order, later, with
the track ids repaired; ``finish()`` returns the rest at the stream's end. It holds at most
``RepairConfig.window`` frames (their results and images), fewer where that many would pass
``RepairConfig.max_held_mb``: a bounded delay and memory.
Pure computation, no I/O.

An *interaction* is a connected group of tracks whose boxes meet (IoU above ``meet_iou``) on
the same frame, or meet the box of a track that left the results inside the image (lost
behind someone: a *ghost*, its last box moving on with its last motion, ``ghosts``); it
closes when no two of its tracks have met for ``apart`` frames and ``apart_keyframes``
keyframes (the tracker has decided again since) and its ghosts are back in view (or when the
held frames would exceed ``window``, or what ``max_held_mb`` allows). At its close the frames
from its first meeting on are known, and who is who is decided over them at once, for groups
of at most ``max_group`` tracks (a meeting that would join more first decides the groups
there are, on what is known), by a dynamic programme (Viterbi) over the permutations of their
ids, one per frame:

* per frame, each track's appearance (hue-saturation and value histograms of its visible
  mask pixels, upper and lower half of the box, weighted by how much of the mask no other
  track covers) against each identity's appearance before the interaction, and its box
  against each identity's motion before it extrapolated through it (``motion_weight``);
* between frames, the continuity of each identity's box (1 - IoU of consecutive boxes,
  ``continuity_weight``) and ``switch_cost`` for a change of permutation.

The frames before the interaction are already written under the identity permutation, which
is where the programme starts. A swap the tracker made and undid inside the interaction is
undone on its frames (two switches cost less than the appearance and the jumps they explain);
an exchange the tracker kept (the permutation at the close is not the identity) is undone
from the interaction on, for the rest of the stream (a persistent map of tracker ids to the
written ids), only when the best path ending in it beats the best path ending in the
identity by ``margin``; of several ends within ``margin`` of the best, the one moving the
fewest ids is taken. Ids are permuted, never invented: every written id is a tracker id.

A track the tracker lost inside the image and replaced by a new one (``stitch``): a track id
seen for the first time while a ghost's box is near its box (``stitch_reach`` heights of the
ghost, the nearest ghost first, one newborn per ghost) and whose appearance is not clearly
another's (``STITCH_MAX_APPEARANCE``) is written under the ghost's id for the rest of the
stream. Where the ghost's own track comes back while the newborn's is present, the newborn
keeps its own id from that frame on (and on its frames still held): no frame holds one
written id twice.

Memory: at most ``window`` held frames (each a result and its image), and at most as many as
fit in ``max_held_mb`` (``held_frames``: at least 2), plus per track seen in
the last ``FORGET_S`` seconds of stream time an appearance histogram (``APPEARANCE_DIM``
floats) and its last ``MOTION_BOXES`` boxes; the id map keeps only ids seen in that time.
Latency: a frame leaves when no open interaction began at or before it; at most ``window``
frames (offline, on top of the keyframe interval held by the offline processor).

Checkpoints: ``state_dict`` only while nothing is held (``idle``): the map, the tracks'
appearance and motion memory, the tracks that took a ghost's id (``joined``, where there are
any) and the counts.
"""

from __future__ import annotations

import collections
import dataclasses
import itertools
import logging

import cv2
import numpy as np

from vis.config import require
from vis.schema import shown
from vis.types import Detections, Frame, FrameResult

log = logging.getLogger(__name__)

#: histogram bins (hue, saturation, value) per stripe of the box, and stripes (upper, lower)
BINS = (12, 4, 8)
STRIPES = 2
APPEARANCE_DIM = STRIPES * (BINS[0] * BINS[1] + BINS[2])
#: boxes remembered per track for its motion before an interaction
MOTION_BOXES = 8
#: a track unseen this long (stream time) is forgotten (its memory and its entry in the map)
FORGET_S = 60.0
#: momentum of a track's remembered appearance (per frame it is seen unoccluded)
APPEARANCE_MOMENTUM = 0.9
#: a frame's appearance counts when at least this fraction of the mask is visible
MIN_VISIBLE = 0.5
#: a newborn takes a ghost's id only when the Hellinger distance of their appearances is at most
#: this (either unknown: no gate)
STITCH_MAX_APPEARANCE = 0.5
#: the largest ``repair.stitch_reach`` (box heights)
MAX_STITCH_REACH = 5.0
#: what ``IdentityRepair.counts`` counts; the last two only with ``repair.stitch`` (in summaries
#: and checkpoints)
COUNTS = (
    "interactions",
    "exchanges_undone",
    "swaps_undone",
    "ids_changed",
    "tracks_joined",
    "joins_undone",
)
STITCH_COUNTS = ("tracks_joined", "joins_undone")
#: the most held frames any setting may ask for
MAX_WINDOW = 1000
#: the largest ``repair.max_held_mb`` (MiB: 1 TiB)
MAX_HELD_MB = 1 << 20
#: a held frame's result, estimated per pixel of its image: soft masks (float32 crops and
#: their binary copies, 5 bytes a pixel) covering a quarter of the image
RESULT_BYTES_PER_PIXEL = 1.25
#: a checkpoint's repair state: the most ids in each of its lists (the tracks seen in the last
#: ``FORGET_S`` seconds), ids within a ``vis.frame`` record's track ids, box coordinates within
#: this many pixels
MAX_STATE_IDS = 100_000
MAX_STATE_ID = 2**53
MAX_STATE_COORD = 2.0**24


@dataclasses.dataclass(frozen=True)
class RepairConfig:
    """Identity repair (``repair:`` in the YAML config; see the module docstring).

    Attributes:
        enabled: repair offline streams (files, ``mode: offline``).
        live_delay: cameras and ``mode: live``: hold this many frames for the same repair
            (0: off, results at once).
        window: offline: the most frames held (an interaction still open when it is reached
            is decided on what is known).
        max_held_mb: the most memory (MiB) the held frames of one stream may take, images and
            an estimate of their results (``held_frames``): where ``window`` (or
            ``live_delay``) frames of the stream's size would take more, fewer are held (at
            least 2). The default leaves a 48-frame window whole up to 1920x1080 (60 frames
            fit there; 15 at 3840x2160).
        meet_iou: two tracks meet on a frame where their boxes' IoU is above this.
        apart: an interaction closes once no two of its tracks have met for this many frames.
        apart_keyframes: ... and once this many keyframes have come since they last met: the
            tracker has decided again that often after the meeting (at N > 1 ``apart``
            frames can pass without a keyframe).
        max_group: the most tracks an interaction decides: a meeting that would join more
            decides the interactions there are first, on what is known, and starts its own.
        ghosts: a track that leaves the results inside the image (lost behind someone) stays
            in an interaction, its last box moving on with its last motion, until it is back
            (or ``window`` frames): tracks meeting that box join the interaction.
        motion_weight: weight of the distance (box heights) to each identity's
            extrapolated motion, per frame.
        continuity_weight: weight of 1 - IoU of an identity's consecutive boxes.
        switch_cost: cost of changing the permutation between two frames.
        margin: of the permutations the paths may end in, those within this cost of the
            best are equally likely; the one moving the fewest ids is taken (the tracker's
            ids when they are among them: an exchange is undone only with this margin).
        stitch: a track id seen for the first time near a ghost's box (a track lost inside
            the image), with an appearance not clearly different, is written under the
            ghost's id for the rest of the stream (the tracker lost the person and started a
            new track; needs ``ghosts``). Chosen on two folds of PETS09 (reach tuned on A):
            mean HOTA over N=5, N=10 and the ground truth at N=5 A 63.28 -> 63.80, B 71.09 ->
            71.15 (bench/results/repair_tuning.md), N=1 and
            ground-truth boxes unchanged.
        stitch_reach: ... when the centres of the newborn's box and the ghost's box are less
            than this many of the ghost's box heights apart (0-5).
    """

    enabled: bool = True
    live_delay: int = 0
    window: int = 48
    max_held_mb: int = 512
    meet_iou: float = 0.05
    apart: int = 4
    apart_keyframes: int = 2
    max_group: int = 4
    ghosts: bool = True
    motion_weight: float = 0.5
    continuity_weight: float = 1.0
    switch_cost: float = 2.0
    margin: float = 1.0
    stitch: bool = True
    stitch_reach: float = 1.5

    def __post_init__(self) -> None:
        require(
            2 <= self.window <= MAX_WINDOW,
            "repair.window",
            self.window,
            f"must be in [2, {MAX_WINDOW}]",
        )
        require(
            0 <= self.live_delay <= MAX_WINDOW,
            "repair.live_delay",
            self.live_delay,
            f"must be in [0, {MAX_WINDOW}]",
        )
        require(
            1 <= self.max_held_mb <= MAX_HELD_MB,
            "repair.max_held_mb",
            self.max_held_mb,
            f"must be in [1, {MAX_HELD_MB}] (MiB)",
        )
        require(0.0 <= self.meet_iou < 1.0, "repair.meet_iou", self.meet_iou, "must be in [0, 1)")
        require(1 <= self.apart < self.window, "repair.apart", self.apart, "must be in [1, window)")
        require(2 <= self.max_group <= 5, "repair.max_group", self.max_group, "must be in [2, 5]")
        require(
            0 <= self.apart_keyframes <= 100,
            "repair.apart_keyframes",
            self.apart_keyframes,
            "must be in [0, 100]",
        )
        for key in ("motion_weight", "continuity_weight", "switch_cost", "margin"):
            v = getattr(self, key)
            require(0.0 <= v <= 100.0, f"repair.{key}", v, "must be in [0, 100]")
        require(
            0.0 <= self.stitch_reach <= MAX_STITCH_REACH,
            "repair.stitch_reach",
            self.stitch_reach,
            f"must be in [0, {MAX_STITCH_REACH:g}] (box heights)",
        )


@dataclasses.dataclass
class _Held:
    """A frame waiting: its result, image, ids (as written so far: mapped) and per instance
    its appearance and how much of its mask is visible."""

    result: FrameResult
    frame: Frame
    ids: np.ndarray  # (M,) int64
    appearance: np.ndarray  # (M, APPEARANCE_DIM) float32, rows sum to STRIPES (or 0)
    visible: np.ndarray  # (M,) float32 in [0, 1]


@dataclasses.dataclass
class _Group:
    members: set[int]
    start: int  # position in the stream: frame index of the first meeting
    last_meet: int  # frame index of the latest meeting
    keys_after: int = 0  # keyframes since the latest meeting


@dataclasses.dataclass
class _Memory:
    """What is known of one written id from the frames already out."""

    appearance: np.ndarray | None
    boxes: collections.deque  # of (timestamp_ms, (4,) box)
    last_ms: float


def appearance(image: np.ndarray, box: np.ndarray, bits: np.ndarray) -> np.ndarray:
    """Colour histograms of the pixels ``bits`` of ``image`` inside ``box``.

    Args:
        image: (H, W, 3) uint8 BGR frame.
        box: (4,) integer box x0 y0 x1 y1 inside the image; ``bits`` covers it.
        bits: (y1 - y0, x1 - x0) bool, the pixels that count.

    Returns:
        (APPEARANCE_DIM,) float32: per stripe (upper, lower half of the box) a hue-saturation
        histogram and a value histogram, each summing to 1/2 (zeros where a stripe has none).
    """
    x0, y0, x1, y1 = (int(v) for v in box)
    out = np.zeros(APPEARANCE_DIM, np.float32)
    crop = image[y0:y1, x0:x1]
    if crop.size == 0 or not bits.any():
        return out
    hsv = cv2.cvtColor(crop, cv2.COLOR_BGR2HSV)
    h, s, v = BINS
    hs_bins = (hsv[..., 0].astype(np.int32) * h // 180) * s + hsv[..., 1].astype(
        np.int32
    ) * s // 256
    v_bins = hsv[..., 2].astype(np.int32) * v // 256
    rows = np.linspace(0, crop.shape[0], STRIPES + 1).astype(int)
    per = h * s + v
    for k in range(STRIPES):
        sel = bits[rows[k] : rows[k + 1]]
        if not sel.any():
            continue
        a = np.bincount(hs_bins[rows[k] : rows[k + 1]][sel], minlength=h * s).astype(np.float32)
        b = np.bincount(v_bins[rows[k] : rows[k + 1]][sel], minlength=v).astype(np.float32)
        out[k * per : k * per + h * s] = 0.5 * a / a.sum()
        out[k * per + h * s : (k + 1) * per] = 0.5 * b / b.sum()
    return out


def appearance_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Hellinger distance of two ``appearance`` histograms, in [0, 1] (stripes either lacks
    are left out; 0 when they share none)."""
    per = APPEARANCE_DIM // STRIPES
    total, n = 0.0, 0
    for k in range(STRIPES):
        pa, pb = a[k * per : (k + 1) * per], b[k * per : (k + 1) * per]
        if pa.sum() <= 0 or pb.sum() <= 0:
            continue
        bc = float(np.sqrt(pa * pb).sum()) / float(np.sqrt(pa.sum() * pb.sum()))
        total += np.sqrt(max(0.0, 1.0 - bc))
        n += 1
    return total / n if n else 0.0


def _centre_distance(a: np.ndarray, b: np.ndarray) -> np.floating:
    """Pixels between the centres of the (4,) boxes ``a`` and ``b`` (x0 y0 x1 y1)."""
    return np.hypot((a[0] + a[2] - b[0] - b[2]) / 2, (a[1] + a[3] - b[1] - b[3]) / 2)


def _box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(N, 4) x (M, 4) boxes -> (N, M) IoU."""
    x0 = np.maximum(a[:, None, 0], b[None, :, 0])
    y0 = np.maximum(a[:, None, 1], b[None, :, 1])
    x1 = np.minimum(a[:, None, 2], b[None, :, 2])
    y1 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    return inter / np.maximum(area_a[:, None] + area_b[None, :] - inter, 1e-9)


def _describe(result: FrameResult, frame: Frame) -> tuple[np.ndarray, np.ndarray]:
    """Per instance of ``result``: (appearance of its visible pixels, visible fraction)."""
    det = result.detections
    n = len(det)
    app = np.zeros((n, APPEARANCE_DIM), np.float32)
    vis = np.zeros(n, np.float32)
    if n == 0:
        return app, vis
    h, w = frame.image.shape[:2]
    for i, m in enumerate(det.masks):
        x0, y0 = max(m.x0, 0), max(m.y0, 0)
        x1, y1 = min(m.x1, w), min(m.y1, h)
        if x1 <= x0 or y1 <= y0:
            continue
        bits = m.window(x0, y0, x1, y1) >= 0.5
        area = int(bits.sum())
        if area == 0:
            continue
        free = bits.copy()
        for j, o in enumerate(det.masks):
            if j == i or o.x1 <= x0 or o.x0 >= x1 or o.y1 <= y0 or o.y0 >= y1:
                continue
            free &= ~(o.window(x0, y0, x1, y1) >= 0.5)
        vis[i] = free.sum() / area
        if vis[i] > 0:
            app[i] = appearance(frame.image, np.array([x0, y0, x1, y1]), free)
    return app, vis


def held_bytes(image: np.ndarray) -> int:
    """Bytes of one held frame: ``image`` (H, W[, C]) itself and an estimate of its result
    (``RESULT_BYTES_PER_PIXEL`` per pixel)."""
    pixels = int(image.shape[0]) * int(image.shape[1]) if image.ndim >= 2 else int(image.size)
    return int(image.nbytes) + int(RESULT_BYTES_PER_PIXEL * pixels)


def held_frames(window: int, max_held_mb: int, image: np.ndarray) -> int:
    """The most frames of ``image``'s size a stream may hold: ``window``, or as many as fit
    in ``max_held_mb`` MiB (``held_bytes`` each) when fewer, and never fewer than 2."""
    fit = (max_held_mb << 20) // max(held_bytes(image), 1)
    return min(window, max(2, fit))


class IdentityRepair:
    """Holds a stream's results for a bounded window and repairs ids across interactions.

    Args:
        config: the settings.
        window: the most frames held (default ``config.window``; live: ``live_delay``).

    Attributes:
        counts: ``interactions`` (closed interactions of 2 to ``max_group`` tracks decided),
            ``exchanges_undone`` (interactions after which ids were exchanged back for the
            rest of the stream), ``swaps_undone`` (interactions where ids the tracker swapped
            and swapped back were repaired on the frames between), ``ids_changed`` (written
            instances whose id differs from the tracker's), ``tracks_joined`` (newborn tracks
            written under a ghost's id, ``stitch``), ``joins_undone`` (of those, tracks that
            took their own id back when the ghost's own track came back beside them).
        held_cap: the most frames held now: ``window``, or fewer where that many frames of
            the stream's size would pass ``config.max_held_mb`` (``held_frames``, set at the
            first frame and whenever the frame size changes).
        budget_window: the smallest ``held_cap`` below ``window`` the budget set on this
            stream (None: it never bound).
    """

    def __init__(self, config: RepairConfig, window: int | None = None) -> None:
        self.config = config
        self.window = config.window if window is None else window
        self.held_cap = self.window
        self.budget_window: int | None = None
        self._sized: tuple | None = None  # (shape, dtype) of the frames held_cap is for
        self.held: collections.deque[_Held] = collections.deque()
        self.groups: list[_Group] = []
        self.id_map: dict[int, int] = {}  # tracker id -> written id, where they differ
        self.memory: dict[int, _Memory] = {}  # written id -> what the frames out show
        self.seen_ms: dict[int, float] = {}  # tracker id -> last stream time seen
        # written id -> (frame it vanished, time, box, velocity per s) of tracks out of view
        self.ghosts: dict[int, tuple[int, float, np.ndarray, np.ndarray]] = {}
        self._prev_ids: set[int] = set()
        # tracker ids written under a ghost's id (``stitch``): the tracks that share a written
        # id with another, and give it up where both are on one frame
        self._joined: set[int] = set()
        self.counts = {k: 0 for k in COUNTS}

    @property
    def idle(self) -> bool:
        """Nothing held: a checkpoint here loses nothing."""
        return not self.held

    # -- the stream ------------------------------------------------------------------------
    def push(self, ready: list[tuple[FrameResult, Frame]]) -> list[tuple[FrameResult, Frame]]:
        """Take final results in frame order; return those whose ids are now final."""
        out: list[tuple[FrameResult, Frame]] = []
        for result, frame in ready:
            self._take(result, frame)
            out += self._release()
        return out

    def finish(self) -> list[tuple[FrameResult, Frame]]:
        """The stream ended: decide every open interaction and return every held frame."""
        for g in sorted(self.groups, key=lambda g: g.start):
            self._close(g)
        return self._release()

    def summary(self) -> dict:
        """``counts``, and ``budget_window`` where ``max_held_mb`` held fewer frames than
        ``window`` (for the run summary)."""
        counts = self._counts()
        if self.budget_window is None:
            return counts
        return {**counts, "budget_window": self.budget_window}

    def _counts(self) -> dict[str, int]:
        """``counts`` (those of ``stitch`` only where it is on)."""
        return {
            k: v for k, v in self.counts.items() if self.config.stitch or k not in STITCH_COUNTS
        }

    def _size(self, frame: Frame) -> None:
        """``held_cap`` for frames of ``frame``'s size (said once where the budget binds)."""
        self._sized = (frame.image.shape, frame.image.dtype)
        cap = held_frames(self.window, self.config.max_held_mb, frame.image)
        if cap < self.window and cap != self.held_cap:
            log.warning(
                "stream %s: %dx%d frames: identity repair holds at most %d frames, not %d "
                "(repair.max_held_mb=%d, about %.1f MiB a held frame)",
                frame.stream_id,
                frame.width,
                frame.height,
                cap,
                self.window,
                self.config.max_held_mb,
                held_bytes(frame.image) / (1 << 20),
            )
            self.budget_window = min(cap, self.budget_window or cap)
        self.held_cap = cap

    def _take(self, result: FrameResult, frame: Frame) -> None:
        if self._sized != (frame.image.shape, frame.image.dtype):
            self._size(frame)
        det = result.detections
        raw = det.track_ids.astype(np.int64)
        born = [r for r, t in enumerate(raw.tolist()) if t >= 0 and t not in self.seen_ms]
        for t in raw.tolist():
            self.seen_ms[t] = result.timestamp_ms
        ids = self._written(raw)
        app, vis = _describe(result, frame)
        h = _Held(result, frame, ids, app, vis)
        now = result.frame_index
        present = set(ids.tolist())
        if self.config.ghosts:
            self._vanish(h, present, raw, born if self.config.stitch else [])
        self.held.append(h)
        self._meet(h)
        for g in self.groups:
            g.keys_after = 0 if g.last_meet == now else g.keys_after + result.keyframe
        for g in list(self.groups):
            if (
                now - g.last_meet >= self.config.apart
                and g.keys_after >= self.config.apart_keyframes
                and not (g.members & self.ghosts.keys())
            ):
                self._close(g)
        while self.groups and len(self.held) > self.held_cap:  # decided on what is known
            self._close(min(self.groups, key=lambda g: g.start))
        self._prev_ids = set(h.ids.tolist())  # as written now (a decision may relabel them)

    def _written(self, raw: np.ndarray) -> np.ndarray:
        """(M,) tracker ids of one frame -> the ids written for them: mapped, and where two
        would be written under one id (a newborn that took a ghost's id, and the ghost's own
        track back), the newborn keeps its own id from here on, and on its frames still
        held."""
        ids = [self.id_map.get(t, t) for t in raw.tolist()]
        twice = {i for i, n in collections.Counter(ids).items() if n > 1 and i >= 0}
        if twice:
            for t, i in zip(raw.tolist(), ids):
                if i in twice and t in self._joined:
                    self._joined.discard(t)
                    self.id_map.pop(t, None)
                    self.counts["joins_undone"] += 1
                    for h in self.held:  # not written yet: its own id there too
                        h.ids[(h.result.detections.track_ids == t) & (h.ids == i)] = t
            ids = [self.id_map.get(t, t) for t in raw.tolist()]
        return np.array(ids, np.int64)

    def _stitch(self, h: _Held, raw: np.ndarray, born: list[int], present: set[int]) -> None:
        """Tracks of ``h`` seen for the first time (rows ``born``, tracker ids ``raw``) near
        the box of a ghost still in the image (not ``present``), with an appearance not
        clearly different, are written under the ghost's id from here on (the nearest pairs
        first, one newborn per ghost); the ghost is back in view."""
        f = h.result.frame_index
        det = h.result.detections
        pairs = []
        for v, ghost in self.ghosts.items():
            back = v in present or not any(v in g.members for g in self.groups)
            pred = None if back else self._ghost_box(ghost, h)
            if pred is None:
                continue  # back, gone or expired: ``_vanish`` drops it
            since = ghost[0]
            height = max(float(pred[3] - pred[1]), 1.0)
            app = None
            for r in born:
                dc = _centre_distance(det.xyxy[r], pred)
                if dc >= self.config.stitch_reach * height:
                    continue
                if app is None:
                    ref = self._before(v, since)
                    app = ref[0] if ref is not None and ref[0] is not None else False
                if (
                    app is not False
                    and h.visible[r] >= MIN_VISIBLE
                    and h.appearance[r].any()
                    and appearance_distance(h.appearance[r], app) > STITCH_MAX_APPEARANCE
                ):
                    continue
                pairs.append((float(dc / height), v, r))
        taken_v: set[int] = set()
        taken_r: set[int] = set()
        for _, v, r in sorted(pairs):
            if v in taken_v or r in taken_r:
                continue
            taken_v.add(v)
            taken_r.add(r)
            t = int(raw[r])
            self.id_map[t] = v
            self._joined.add(t)
            h.ids[r] = v
            del self.ghosts[v]
            self.counts["tracks_joined"] += 1
            g = next((g for g in self.groups if v in g.members), None)
            if g is not None:
                g.last_meet = f

    def _close(self, g: _Group) -> dict[int, int]:
        """Decide ``g`` and drop it -> the ids its decision exchanged (as written before ->
        after; empty: none)."""
        renamed = self._decide(g)
        self.groups.remove(g)
        for m in g.members:
            self.ghosts.pop(m, None)
        return renamed

    def _vanish(self, h: _Held, present: set[int], raw: np.ndarray, born: list[int]) -> None:
        """Tracks of the previous frame missing from ``h`` become ghosts (their last box
        moving on with their last motion) inside an interaction; ghosts back in view become
        tracks again, and so do those a newborn track takes (rows ``born`` of ``h``, tracker
        ids ``raw``: ``_stitch``); tracks meeting a ghost's box join its interaction."""
        f = h.result.frame_index
        for v in sorted(self._prev_ids - present):
            ref = self._before(v, f)
            if ref is None:
                continue
            self.ghosts[v] = (f, ref[1], ref[2], ref[3])
            if not any(v in g.members for g in self.groups):
                self.groups.append(_Group({v}, f, f))
        if born and self.ghosts:
            self._stitch(h, raw, born, present)
        det = h.result.detections
        for v, ghost in list(self.ghosts.items()):
            if self.ghosts.get(v) is None or self.ghosts[v][0] != ghost[0]:
                continue  # a decision in this loop closed or renamed it: the next frame's
            g = next((g for g in self.groups if v in g.members), None)
            if v in present or g is None:
                del self.ghosts[v]
                if g is not None:
                    g.last_meet = f
                continue
            pred = self._ghost_box(ghost, h)
            if pred is None:
                del self.ghosts[v]
                continue
            if not len(det):
                continue
            near = np.flatnonzero(_box_iou(pred[None], det.xyxy)[0] > self.config.meet_iou)
            for r in near.tolist():
                if v not in self.ghosts:
                    break  # its interaction was decided (and closed) by the join before
                self._join(v, int(h.ids[r]), f)

    def _ghost_box(self, ghost: tuple, h: _Held) -> np.ndarray | None:
        """A ghost's (4,) box on ``h``'s frame: its last box moved on with its last motion (at
        most 2 s of it); None once its centre has left the image or it has been a ghost for
        ``window`` frames."""
        since, t0, box, vel = ghost
        res = h.result
        pred = box + vel * min((res.timestamp_ms - t0) / 1000.0, 2.0)
        cx, cy = (pred[0] + pred[2]) / 2, (pred[1] + pred[3]) / 2
        if not (0 <= cx < res.width and 0 <= cy < res.height) or res.frame_index - since >= (
            self.window
        ):
            return None
        return pred

    def _meet(self, h: _Held) -> None:
        """Join the tracks of ``h`` whose boxes meet into the open interactions."""
        det = h.result.detections
        if len(det) < 2:
            return
        iou = _box_iou(det.xyxy, det.xyxy)
        f = h.result.frame_index
        for i, j in zip(*np.nonzero(np.triu(iou > self.config.meet_iou, 1))):
            self._join(int(h.ids[i]), int(h.ids[j]), f)

    def _join(self, a: int, b: int, f: int) -> None:
        """Tracks ``a`` and ``b`` meet on frame ``f``: one interaction holds both."""
        ga = next((g for g in self.groups if a in g.members), None)
        gb = next((g for g in self.groups if b in g.members), None)
        if ga is None and gb is None:
            self.groups.append(_Group({a, b}, f, f))
        elif ga is gb:
            ga.last_meet = f
        elif len((ga.members if ga else set()) | (gb.members if gb else set()) | {a, b}) > (
            self.config.max_group
        ):
            # one interaction would outgrow what can be decided: decide the ones there are on
            # what is known, and let the new meeting start its own
            for g in sorted((g for g in (ga, gb) if g is not None), key=lambda g: g.start):
                renamed = self._close(g)
                a, b = renamed.get(a, a), renamed.get(b, b)
            self.groups.append(_Group({a, b}, f, f))
        elif gb is None or ga is None:
            g = ga or gb
            g.members |= {a, b}
            g.last_meet = f
        else:
            ga.members |= gb.members
            ga.start = min(ga.start, gb.start)
            ga.last_meet = f
            self.groups.remove(gb)

    def _release(self) -> list[tuple[FrameResult, Frame]]:
        first_open = min((g.start for g in self.groups), default=None)
        out = []
        while self.held and (first_open is None or self.held[0].result.frame_index < first_open):
            h = self.held.popleft()
            out.append(self._emit(h))
        if len(self.held) > self.held_cap:  # cannot happen: _take decides the oldest first
            raise RuntimeError("identity repair held more than its window")
        return out

    def _emit(self, h: _Held) -> tuple[FrameResult, Frame]:
        det = h.result.detections
        ts = h.result.timestamp_ms
        for r, i in enumerate(h.ids.tolist()):
            mem = self.memory.get(i)
            if mem is None:
                mem = self.memory[i] = _Memory(None, collections.deque(maxlen=MOTION_BOXES), ts)
            mem.boxes.append((ts, det.xyxy[r].astype(np.float32).copy()))
            mem.last_ms = ts
            if h.visible[r] >= 0.9 and h.appearance[r].any():
                a = h.appearance[r]
                mem.appearance = (
                    a.copy()
                    if mem.appearance is None
                    else APPEARANCE_MOMENTUM * mem.appearance + (1 - APPEARANCE_MOMENTUM) * a
                )
        self._forget(ts)
        if np.array_equal(h.ids, det.track_ids):
            return h.result, h.frame
        self.counts["ids_changed"] += int((h.ids != det.track_ids).sum())
        order = np.argsort(h.ids, kind="stable")
        fixed = det[order]
        fixed.track_ids = h.ids[order].copy()
        return dataclasses.replace(h.result, detections=fixed), h.frame

    def _forget(self, now_ms: float) -> None:
        horizon = now_ms - 1000.0 * FORGET_S
        for i in [i for i, m in self.memory.items() if m.last_ms < horizon]:
            del self.memory[i]
        for t in [t for t, s in self.seen_ms.items() if s < horizon]:
            del self.seen_ms[t]
            self.id_map.pop(t, None)
            self._joined.discard(t)

    # -- one interaction ----------------------------------------------------------------------
    def _decide(self, g: _Group) -> dict[int, int]:
        """Re-solve who is who over the held frames from ``g.start`` on; relabel them and map
        the tracker's ids for the rest of the stream -> the ids exchanged for good (as written
        before -> after; empty: none)."""
        cfg = self.config
        members = sorted(g.members)
        frames = [h for h in self.held if h.result.frame_index >= g.start]
        if not 2 <= len(members) <= cfg.max_group or not frames:
            return {}
        before = {m: self._before(m, g.start) for m in members}
        known = [m for m in members if before[m] is not None]
        if len(known) < 2:
            return {}
        self.counts["interactions"] += 1
        k = len(known)
        perms = list(itertools.permutations(range(k)))
        # emission[t, p]: cost of frame t under permutation p (observed known[j] is identity
        # known[p[j]])
        n = len(frames)
        rows = []  # per frame: {observed j: (row index)}
        for h in frames:
            pos = {int(i): r for r, i in enumerate(h.ids.tolist())}
            rows.append([pos.get(m) for m in known])
        obs_cost = np.zeros((n, k, k))  # observed j as identity i
        for t, h in enumerate(frames):
            for j in range(k):
                r = rows[t][j]
                if r is None:
                    continue
                for i in range(k):
                    obs_cost[t, j, i] = self._cost(h, r, before[known[i]])
        emission = np.array(
            [[sum(obs_cost[t, j, p[j]] for j in range(k)) for p in perms] for t in range(n)]
        )
        # continuity between frames t-1 and t: identity i's box under p (at t-1) and q (at t)
        boxes = [
            [
                None if rows[t][j] is None else frames[t].result.detections.xyxy[rows[t][j]]
                for j in range(k)
            ]
            for t in range(n)
        ]
        ident = perms.index(tuple(range(k)))
        cost = emission[0].copy()
        cost += np.where(np.arange(len(perms)) == ident, 0.0, cfg.switch_cost)
        back = np.zeros((n, len(perms)), np.int64)
        for t in range(1, n):
            trans = self._transitions(perms, boxes[t - 1], boxes[t])
            total = cost[:, None] + trans
            back[t] = np.argmin(total, axis=0)
            cost = total[back[t], np.arange(len(perms))] + emission[t]
        end = int(np.argmin(cost))
        log.debug(
            "interaction %s frames %d-%d: identity %.2f, best %s %.2f",
            known,
            frames[0].result.frame_index,
            frames[-1].result.frame_index,
            cost[ident],
            perms[end],
            cost[end],
        )
        # of the ends within ``margin`` of the best, the one that moves the fewest ids (the
        # tracker's own ids when they are within it)
        near = [e for e in range(len(perms)) if cost[e] <= cost[end] + cfg.margin]
        end = min(near, key=lambda e: (sum(j != i for j, i in enumerate(perms[e])), cost[e]))
        path = [end]
        for t in range(n - 1, 0, -1):  # the path back from its end
            path.append(int(back[t, path[-1]]))
        path.reverse()
        if all(p == ident for p in path):
            return {}
        if path[-1] != ident:
            self.counts["exchanges_undone"] += 1
        else:
            self.counts["swaps_undone"] += 1
        last = perms[path[-1]]
        for t, h in enumerate(frames):
            p = perms[path[t]]
            h.ids = self._relabel(h.ids, known, p)
        relabel: dict[int, int] = {}
        if path[-1] != ident:
            relabel = {known[j]: known[last[j]] for j in range(k)}
            inverse = {}
            for t in list(self.seen_ms):
                cur = self.id_map.get(t, t)
                if cur in relabel:
                    inverse[t] = relabel[cur]
            for t, v in inverse.items():
                if v == t:
                    self.id_map.pop(t, None)
                else:
                    self.id_map[t] = v
            for gg in self.groups:  # open interactions speak of the ids as now written
                gg.members = {relabel.get(m, m) for m in gg.members}
            self.ghosts = {relabel.get(m, m): v for m, v in self.ghosts.items()}
            self._prev_ids = {relabel.get(m, m) for m in self._prev_ids}
        return relabel

    @staticmethod
    def _relabel(ids: np.ndarray, known: list[int], p: tuple[int, ...]) -> np.ndarray:
        m = {known[j]: known[p[j]] for j in range(len(known))}
        return np.array([m.get(int(i), int(i)) for i in ids.tolist()], np.int64)

    def _transitions(self, perms, prev, cur) -> np.ndarray:
        """(P, P): switch cost plus the continuity of each identity's box from ``prev`` under
        the first permutation to ``cur`` under the second."""
        cfg = self.config
        k = len(prev)
        gap = np.ones((k, k))  # 1 - IoU of observed a at t-1 and observed b at t
        valid = np.zeros((k, k), bool)
        a_idx = [j for j in range(k) if prev[j] is not None]
        b_idx = [j for j in range(k) if cur[j] is not None]
        if a_idx and b_idx:
            iou = _box_iou(np.stack([prev[j] for j in a_idx]), np.stack([cur[j] for j in b_idx]))
            for x, a in enumerate(a_idx):
                for y, b in enumerate(b_idx):
                    gap[a, b] = 1.0 - iou[x, y]
                    valid[a, b] = True
        inv = np.argsort(np.asarray(perms), axis=1)  # (P, k): identity i -> observed j
        cont = np.where(valid, gap, 0.0)  # (k, k)
        out = cfg.switch_cost * (1.0 - np.eye(len(perms)))
        for i in range(k):
            out += cfg.continuity_weight * cont[inv[:, i][:, None], inv[:, i][None, :]]
        return out

    def _cost(self, h: _Held, r: int, ref: tuple) -> float:
        """Cost of instance ``r`` of ``h`` being the identity described by ``ref``."""
        cfg = self.config
        app, ts, box, vel = ref
        c = 0.0
        if app is not None and h.visible[r] >= MIN_VISIBLE and h.appearance[r].any():
            c += h.visible[r] * appearance_distance(h.appearance[r], app)
        if cfg.motion_weight and box is not None:
            dt = (h.result.timestamp_ms - ts) / 1000.0
            pred = box + vel * dt
            height = max(float(pred[3] - pred[1]), 1.0)
            dc = _centre_distance(h.result.detections.xyxy[r], pred)
            c += cfg.motion_weight * min(dc / height / (1.0 + dt), 2.0)
        return c

    def _before(self, m: int, start: int) -> tuple | None:
        """Identity ``m`` before frame ``start``: (appearance, time, box, velocity per s) from
        the frames out and the held frames before ``start``; None if never seen."""
        mem = self.memory.get(m)
        app = None if mem is None or mem.appearance is None else mem.appearance.copy()
        boxes = list(mem.boxes) if mem is not None else []
        for h in self.held:
            if h.result.frame_index >= start:
                break
            r = np.flatnonzero(h.ids == m)
            if not len(r):
                continue
            r = int(r[0])
            boxes.append((h.result.timestamp_ms, h.result.detections.xyxy[r].astype(np.float32)))
            if h.visible[r] >= 0.9 and h.appearance[r].any():
                a = h.appearance[r]
                app = (
                    a.copy()
                    if app is None
                    else APPEARANCE_MOMENTUM * app + (1 - APPEARANCE_MOMENTUM) * a
                )
        if not boxes:
            return None
        boxes = boxes[-MOTION_BOXES:]
        t1, b1 = boxes[-1]
        t0, b0 = boxes[0]
        vel = (b1 - b0) / ((t1 - t0) / 1000.0) if t1 > t0 else np.zeros(4, np.float32)
        return app, t1, b1, vel

    # -- checkpoints ----------------------------------------------------------------------------
    def state_dict(self) -> dict:
        """The map, the memory and the counts as data (only while ``idle``).

        Raises:
            RuntimeError: frames are held.
        """
        if self.held:
            raise RuntimeError("identity repair holds frames: no consistent state")
        return {
            "id_map": [[int(k), int(v)] for k, v in sorted(self.id_map.items())],
            "seen": [[int(k), float(v)] for k, v in sorted(self.seen_ms.items())],
            "memory": [
                {
                    "id": int(i),
                    "appearance": None if m.appearance is None else m.appearance.copy(),
                    "times": [float(t) for t, _ in m.boxes],
                    "boxes": np.stack([b for _, b in m.boxes]).astype(np.float32)
                    if m.boxes
                    else np.zeros((0, 4), np.float32),
                    "last_ms": float(m.last_ms),
                }
                for i, m in sorted(self.memory.items())
            ],
            "prev_ids": sorted(int(i) for i in self._prev_ids),
            "counts": self._counts(),
        } | ({"joined": sorted(int(t) for t in self._joined)} if self._joined else {})

    def load_state_dict(self, state: dict) -> None:
        """Restore a ``state_dict`` (same configuration).

        Raises:
            ValueError: ``state`` is not one ``state_dict`` writes (``check_state``).
        """
        check_state(state)
        self.held.clear()
        self.groups = []
        self.ghosts = {}
        self._prev_ids = {int(i) for i in state["prev_ids"]}
        self.id_map = {int(k): int(v) for k, v in state["id_map"]}
        self.seen_ms = {int(k): float(v) for k, v in state["seen"]}
        self._joined = {int(t) for t in state.get("joined", [])}
        self.memory = {}
        for d in state["memory"]:
            a = d["appearance"]
            boxes = np.asarray(d["boxes"], np.float32).reshape(-1, 4)
            times = [float(t) for t in d["times"]]
            if len(times) != len(boxes) or len(boxes) > MOTION_BOXES:
                raise ValueError("repair memory: times and boxes differ")
            self.memory[int(d["id"])] = _Memory(
                None if a is None else np.asarray(a, np.float32).reshape(APPEARANCE_DIM),
                collections.deque(zip(times, boxes), maxlen=MOTION_BOXES),
                float(d["last_ms"]),
            )
        self.counts = {k: int(state["counts"].get(k, 0)) for k in self.counts}


def check_state(state: object) -> None:
    """A repair state read from a checkpoint (untrusted) is one ``state_dict`` writes: lists of
    at most ``MAX_STATE_IDS`` entries, ids integers in [-1, ``MAX_STATE_ID``] giving every
    track seen its own written id (but the ``joined`` ones, mapped tracks that took a ghost's
    id, whose own ids no track writes), finite times, per remembered id an appearance of
    ``APPEARANCE_DIM`` values in [0, 1] and at most ``MOTION_BOXES`` finite (4,) boxes with
    their times, counts integers >= 0; checked before anything is built from it.

    Raises:
        ValueError: ``identity repair state: <what is wrong>`` (one line).
    """

    def refuse(why: str) -> ValueError:
        return ValueError(f"identity repair state: {why}")

    def is_int(v: object, lo: int, hi: int) -> bool:
        return isinstance(v, (int, np.integer)) and not isinstance(v, bool) and lo <= v <= hi

    def is_time(v: object) -> bool:  # finite (an int past the float range is not either)
        number = isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool)
        return number and -1e300 < v < 1e300  # type: ignore[operator]

    def is_id(v: object) -> bool:
        return is_int(v, -1, MAX_STATE_ID)

    def finite_array(a: object, shape: tuple[int, ...], lo: float, hi: float) -> bool:
        return (
            isinstance(a, np.ndarray)
            and a.shape == shape
            and a.dtype.kind in "fiu"
            and bool(np.all((a >= lo) & (a <= hi)))  # NaN is not within
        )

    if not isinstance(state, dict):
        raise refuse("not a mapping")
    for key in ("id_map", "seen", "memory", "prev_ids"):
        value = state.get(key)
        if not isinstance(value, list):
            raise refuse(f"{key} is not a list")
        if len(value) > MAX_STATE_IDS:
            raise refuse(f"{key} holds {len(value)} entries, more than {MAX_STATE_IDS}")
    counts = state.get("counts")
    if not isinstance(counts, dict) or not all(
        is_int(counts.get(k, 0), 0, MAX_STATE_ID) for k in COUNTS
    ):
        raise refuse("counts are not integers >= 0")
    if not all(is_id(i) for i in state["prev_ids"]):
        raise refuse("prev_ids are not track ids")
    for key, second in (("id_map", is_id), ("seen", is_time)):
        for pair in state[key]:
            if not (
                isinstance(pair, list) and len(pair) == 2 and is_id(pair[0]) and second(pair[1])
            ):
                raise refuse(f"{key} holds {shown(pair)}, not a pair of an id and a value")
    id_map = {int(k): int(v) for k, v in state["id_map"]}
    if len(id_map) != len(state["id_map"]) or any(k == v for k, v in id_map.items()):
        raise refuse("id_map repeats an id or maps one to itself")
    joined = state.get("joined", [])
    if (
        not isinstance(joined, list)
        or len(joined) > MAX_STATE_IDS
        or not all(is_id(t) and int(t) in id_map for t in joined)
    ):
        raise refuse("joined is not a list of mapped track ids")
    joined = {int(t) for t in joined}
    tracks = {int(t) for t, _ in state["seen"]} | id_map.keys()
    own = tracks - joined  # every track but those that took a ghost's id writes its own
    writes = {id_map.get(t, t) for t in tracks}
    if len({id_map.get(t, t) for t in own}) != len(own) or joined & writes:
        raise refuse("id_map writes two tracks under one id")
    ids: set[int] = set()
    for d in state["memory"]:
        if not isinstance(d, dict) or not is_id(d.get("id")) or int(d["id"]) in ids:
            raise refuse("memory holds an entry without an id of its own")
        ids.add(int(d["id"]))
        a, boxes, times = d.get("appearance"), d.get("boxes"), d.get("times")
        if "appearance" not in d or (
            a is not None and not finite_array(a, (APPEARANCE_DIM,), 0.0, 1.0)
        ):
            raise refuse(f"the appearance of id {d['id']} is not {APPEARANCE_DIM} values in [0, 1]")
        if (
            not isinstance(times, list)
            or len(times) > MOTION_BOXES
            or not all(is_time(t) for t in times)
            or not finite_array(boxes, (len(times), 4), -MAX_STATE_COORD, MAX_STATE_COORD)
            or not is_time(d.get("last_ms"))
        ):
            raise refuse(
                f"the motion of id {d['id']} is not at most {MOTION_BOXES} finite boxes "
                "(n, 4) with their times"
            )


#: the key of the repair's state in a processor's checkpoint state
STATE_KEY = "repair"


class RepairedProcessor:
    """A stream processor whose results pass through ``IdentityRepair`` (everything else is
    the wrapped processor's: ``frames``, ``tracker``, ``timer``, ...).

    Checkpoints are taken only where the repair holds nothing and has written exactly the
    frames the wrapped processor's checkpoint covers, so that every result written is
    final and a resumed run writes what an uninterrupted one would.

    Args:
        inner: a ``StreamProcessor`` (``emit``, ``finish``, ``request_checkpoint``,
            ``take_checkpoint``, ``stop_point``, ``state_dict``, ``load_state_dict``).
        config: the repair's settings.
        offline: ``inner`` holds frames until its next keyframe (``OfflineStreamProcessor``):
            its checkpoints are asked for at every keyframe and kept where consistent;
            otherwise ``config.live_delay`` is the window.
    """

    def __init__(self, inner, config: RepairConfig, *, offline: bool) -> None:
        self.inner = inner
        self.offline = offline
        self.repair = IdentityRepair(config, None if offline else max(config.live_delay, 2))
        self._wanted = False
        self._last_out: int | None = None  # the last frame whose result left
        self._clean: tuple[int, dict] | None = None  # a checkpoint at exactly _last_out
        if offline:
            inner.request_checkpoint()

    def __getattr__(self, name: str):
        return getattr(self.inner, name)

    def emit(self, frame: Frame, detections: Detections | None) -> list[tuple[FrameResult, Frame]]:
        return self._after(self.inner.emit(frame, detections))

    def detected(self, found: list[Detections]) -> list[tuple[FrameResult, Frame]]:
        """The wrapped processor's ``detected`` (held frames it asked to detect), repaired."""
        return self._after(self.inner.detected(found))

    def _after(self, ready: list[tuple[FrameResult, Frame]]) -> list[tuple[FrameResult, Frame]]:
        """``ready`` through the repair; a consistent checkpoint kept if there is one."""
        with self.inner.timer("repair"):
            out = self.repair.push(ready)
        if out:
            self._last_out = out[-1][0].frame_index
            self._clean = None
        if self.offline:
            point = self.inner.take_checkpoint()
            self.inner.request_checkpoint()
            if point is not None and self.repair.idle and point[0] == self._last_out:
                self._clean = (point[0], {**point[1], STATE_KEY: self.repair.state_dict()})
        return out

    def finish(self) -> list[tuple[FrameResult, Frame]]:
        ready = self.inner.finish()
        with self.inner.timer("repair"):
            return self.repair.push(ready) + self.repair.finish()

    def release(self) -> list[tuple[FrameResult, Frame]]:
        """The run stops: every open interaction decided on what is known and the held
        frames returned, so ``stop_point`` can follow the last of them (the identity map
        carries the decisions into the resumed run)."""
        with self.inner.timer("repair"):
            out = self.repair.finish()
        if out:
            self._last_out = out[-1][0].frame_index
        return out

    def request_checkpoint(self) -> None:
        self._wanted = True
        if not self.offline:
            self.inner.request_checkpoint()

    def take_checkpoint(self) -> tuple[int, dict] | None:
        if self.offline:
            point = self._clean if self._wanted else None
        else:
            point = self.inner.take_checkpoint()
            if point is not None and not (self.repair.idle and point[0] == self._last_out):
                self.inner.request_checkpoint()  # not consistent here: at a later frame
                point = None
            elif point is not None:
                point = (point[0], {**point[1], STATE_KEY: self.repair.state_dict()})
        if point is not None:
            self._wanted = False
            self._clean = None
        return point

    def stop_point(self) -> tuple[int, dict] | None:
        """The run stops: the latest checkpoint after which nothing was written (after
        ``release``: the wrapped processor's stop point; otherwise None when results left
        since the last consistent one, and the stream resumes from its last saved
        checkpoint); frames still held are dropped and redone on resume."""
        held = list(self.repair.held)
        point = self.inner.stop_point()
        self.inner.frames -= len(held)
        self.inner.keyframes -= sum(h.result.keyframe for h in held)
        self.repair.held.clear()
        self.repair.groups = []
        self.repair.ghosts = {}
        if self.offline and not (point is not None and not held and point[0] == self._last_out):
            return self._clean
        if point is None or held or point[0] != self._last_out:
            return None
        return point[0], {**point[1], STATE_KEY: self.repair.state_dict()}

    def state_dict(self) -> dict:
        return {**self.inner.state_dict(), STATE_KEY: self.repair.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        state = dict(state)
        mine = state.pop(STATE_KEY, None)
        self.inner.load_state_dict(state)
        if mine is None:
            raise ValueError("the checkpoint has no identity repair state")
        self.repair.load_state_dict(mine)
        if self.offline:
            self.inner.request_checkpoint()
