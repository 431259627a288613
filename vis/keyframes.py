"""When the detector runs: a fixed interval, adaptively where propagation degrades, or where
tracks are about to interact.

Contract: ``make_schedule(config).is_keyframe(frame)`` is called once per frame, in order,
before the frame is processed. The adaptive schedule also reads ``observe(tracked,
keyframe)``, called by the stream processor after each tracked frame with the frame's
tracked ``Detections``, and keeps to an average budget of one detector call per
``interval`` frames: every frame earns
``1 / interval`` of a call (at most ``MAX_CREDIT`` calls are saved); a frame whose health
check fails (below) spends a saved call, and unspent credit is spent in quiet stretches, so
over a long stream it makes as many calls as the fixed schedule.

Health checks (adaptive), each on what the last tracked frame and the new frame show:

* ``lost``: a track alive at the last keyframe has lost its mask (propagation collapsed);
* ``shape``: a track's mask area changed by more than ``SHAPE_CHANGE`` since that keyframe;
* ``border``: a track touches the image border that did not at that keyframe (leaving, or
  entering half-seen);
* ``motion``: more than ``MOTION_FRACTION`` of the image moved (grey difference on a
  quarter-size frame) outside every tracked object's box: something no track covers;
* ``cut``: the mean grey difference is above ``CUT_LEVEL`` (a scene cut, a camera jump).

A keyframe is also taken after ``max_interval`` frames whatever the credit.

Interaction (``policy: interaction``): the same credit, one check: the *contacts* (pairs of
tracks whose boxes, each grown by ``interaction_margin`` of its width and height on every
side, overlap: propagated masks stop at each other rather than overlap) of the
tracks' boxes predicted ``interaction_lookahead`` frames ahead (each box moved at its track's
recent velocity) or of their boxes now differ from the contacts at the last keyframe: two
tracks are about to meet, or tracks that met are parting (``interaction``). Its credit starts
with the saved call full, so on a stream without interactions its keyframes are the fixed
policy's (frames 0, ``interval``, 2 x ``interval``, ...); a saved call spent is paid back
by the keyframes of quiet stretches coming one frame late until the credit is whole again.
Offline processing (``vis.offline``) turns the prediction off and instead, once the next
keyframe has come, asks for detections of the held frames where a contact began or ended,
paid from the same credit (``spend``; counted as ``interaction_held``). Measured on PETS09
(bench/results/interaction_keyframes.md), it does not beat the fixed policy: not the default.
"""

from __future__ import annotations

import dataclasses
from collections import Counter

import cv2
import numpy as np

from vis.config import require
from vis.types import Detections, Frame

MAX_CREDIT = 2.0
SHAPE_CHANGE = 0.35
MOTION_FRACTION = 0.004
MOTION_LEVEL = 24
CUT_LEVEL = 40.0
_SHRINK = 4
#: velocity of a track's box, per frame: this share of the last step, the rest the old one
_VELOCITY_MOMENTUM = 0.5


@dataclasses.dataclass(frozen=True)
class KeyframeConfig:
    """When the detector runs.

    Attributes:
        interval: run the detector every ``interval`` frames (1 = every frame); with
            ``policy: adaptive``, the average number of frames per detector call.
        policy: ``fixed`` (every ``interval`` frames), ``adaptive`` (where the health
            checks fail, within the same average budget) or ``interaction`` (where tracks
            meet or part, within the same average budget).
        max_interval: adaptive: a keyframe at the latest after this many frames (0 = three
            times ``interval``).
        max_interval_ms: also run it when this much stream time passed since the last
            keyframe (0 = off); matters for live sources that drop frames.
        after_gap_ms: a frame arriving this long after the previous one (a reconnect, a
            burst of dropped frames) is a keyframe.
        backfill: offline mode: a track born at a keyframe is carried back into the frames
            before it, down to the previous keyframe (an object the detector missed there is
            output from its first frame).
        interaction_margin: ``policy: interaction``: two tracks are in contact when their
            boxes overlap once each is grown by this share of its width and height on every
            side (0 = the boxes themselves overlap; at most 2).
        interaction_lookahead: ``policy: interaction``, live: contacts are also looked for
            between the boxes predicted this many frames ahead (0 = the boxes now only).
        interaction_at: ``policy: interaction``, offline: the held frames detected after
            the fact: where a contact ``begins``, where it ``ends``, or ``both``.
    """

    interval: int = 10
    policy: str = "fixed"
    max_interval: int = 0
    max_interval_ms: float = 0.0
    after_gap_ms: float = 500.0
    backfill: bool = True
    interaction_margin: float = 0.25
    interaction_lookahead: int = 2
    interaction_at: str = "begins"

    def __post_init__(self) -> None:
        require(self.interval >= 1, "keyframes.interval", self.interval, "must be >= 1")
        require(
            self.policy in ("fixed", "adaptive", "interaction"),
            "keyframes.policy",
            self.policy,
            "must be 'fixed', 'adaptive' or 'interaction'",
        )
        require(self.max_interval >= 0, "keyframes.max_interval", self.max_interval, "must be >= 0")
        require(
            self.max_interval_ms >= 0,
            "keyframes.max_interval_ms",
            self.max_interval_ms,
            "must be >= 0",
        )
        require(
            0 <= self.interaction_margin <= 2,
            "keyframes.interaction_margin",
            self.interaction_margin,
            "must be 0 to 2",
        )
        require(
            0 <= self.interaction_lookahead <= 100,
            "keyframes.interaction_lookahead",
            self.interaction_lookahead,
            "must be 0 to 100 frames",
        )
        require(
            self.interaction_at in ("begins", "ends", "both"),
            "keyframes.interaction_at",
            self.interaction_at,
            "must be 'begins', 'ends' or 'both'",
        )

    @property
    def latest(self) -> int:
        """Frames after which the adaptive policy takes a keyframe whatever the credit."""
        return self.max_interval or 3 * self.interval


class KeyframeSchedule:
    """Decides, frame by frame and in order, which frames are keyframes (fixed interval)."""

    def __init__(self, config: KeyframeConfig) -> None:
        self.config = config
        self._last_index: int | None = None
        self._last_ts = 0.0
        self._seen_ts: float | None = None
        self.reasons: Counter[str] = Counter()

    def is_keyframe(self, frame: Frame) -> bool:
        reason = self._reason(frame)
        self._seen_ts = frame.timestamp_ms
        if reason:
            self._last_index, self._last_ts = frame.index, frame.timestamp_ms
            self.reasons[reason] += 1
        return reason is not None

    def _must(self, frame: Frame) -> str | None:
        """The reasons every policy obeys: first frame, a gap, the stream-time limit."""
        c = self.config
        if self._last_index is None:
            return "start"
        if self._seen_ts is not None and frame.timestamp_ms - self._seen_ts > c.after_gap_ms:
            return "gap"
        if c.max_interval_ms > 0 and frame.timestamp_ms - self._last_ts >= c.max_interval_ms:
            return "max_interval_ms"
        return None

    def _reason(self, frame: Frame) -> str | None:
        must = self._must(frame)
        if must:
            return must
        return "interval" if frame.index - self._last_index >= self.config.interval else None

    def observe(self, tracked: Detections, keyframe: bool) -> None:
        """What the last tracked frame showed: its tracked instances (``track_ids`` set), and
        whether the detector ran on it (used by the adaptive policy only)."""

    def restart(self) -> None:
        """The next frame is a keyframe (a resumed offline stream starts with one)."""
        self._last_index = None

    def state_dict(self) -> dict:
        return {"last_index": self._last_index, "last_ts": self._last_ts, "seen_ts": self._seen_ts}

    def load_state_dict(self, state: dict) -> None:
        self._last_index = state["last_index"]
        self._last_ts = float(state["last_ts"])
        self._seen_ts = state["seen_ts"]


class AdaptiveSchedule(KeyframeSchedule):
    """Keyframes where the health checks fail, within the fixed policy's budget (see the
    module docstring)."""

    def __init__(self, config: KeyframeConfig) -> None:
        super().__init__(config)
        self.credit = 1.0
        self._small: np.ndarray | None = None
        self._boxes: np.ndarray = np.zeros((0, 4), np.float32)
        self._track_alarm: str | None = None
        self._at_key: dict[int, tuple[int, bool]] = {}  # track id -> (area, touches border)

    def is_keyframe(self, frame: Frame) -> bool:
        self.credit = min(self.credit + 1.0 / self.config.interval, MAX_CREDIT)
        key = super().is_keyframe(frame)
        if key:
            self.credit -= 1.0
            self._track_alarm = None
        return key

    def _reason(self, frame: Frame) -> str | None:
        small = cv2.resize(
            cv2.cvtColor(frame.image, cv2.COLOR_BGR2GRAY),
            (max(frame.width // _SHRINK, 1), max(frame.height // _SHRINK, 1)),
            interpolation=cv2.INTER_AREA,
        )
        prev, self._small = self._small, small
        return self._credit_reason(frame) or (
            None if self.credit < 1.0 else self._track_alarm or self._image_alarm(prev, small)
        )

    def _credit_reason(self, frame: Frame) -> str | None:
        """The reasons that do not wait for an alarm: the must reasons, ``max_interval``,
        and ``budget`` (the saved calls are full)."""
        must = self._must(frame)
        if must:
            return must
        if frame.index - self._last_index >= self.config.latest:
            return "max_interval"
        if self.credit >= MAX_CREDIT - 1e-9:
            return "budget"
        return None

    def spend(self, reason: str) -> bool:
        """Spend a saved call on a frame already processed (offline: a held frame detected
        after the fact) if one is saved; counted under ``reason``. Whether it was."""
        if self.credit < 1.0 - 1e-9:
            return False
        self.credit -= 1.0
        self.reasons[reason] += 1
        return True

    def _image_alarm(self, prev: np.ndarray | None, small: np.ndarray) -> str | None:
        if prev is None or prev.shape != small.shape:
            return None
        diff = cv2.absdiff(prev, small)
        if float(diff.mean()) > CUT_LEVEL:
            return "cut"
        moving = diff > MOTION_LEVEL
        for x0, y0, x1, y1 in self._boxes / _SHRINK:
            pw, ph = 0.25 * (x1 - x0) + 2, 0.25 * (y1 - y0) + 2
            moving[
                max(int(y0 - ph), 0) : max(int(np.ceil(y1 + ph)), 0),
                max(int(x0 - pw), 0) : max(int(np.ceil(x1 + pw)), 0),
            ] = False
        return "motion" if moving.mean() > MOTION_FRACTION else None

    def observe(self, tracked: Detections, keyframe: bool) -> None:
        self._boxes = tracked.xyxy.copy()
        now = {
            int(tid): (m.area, m.touches_border) for tid, m in zip(tracked.track_ids, tracked.masks)
        }
        if keyframe:
            self._at_key = now
            return
        for tid, (area, border) in self._at_key.items():
            if tid not in now:
                self._track_alarm = self._track_alarm or "lost"
                continue
            a, b = now[tid]
            if abs(a / max(area, 1) - 1.0) > SHAPE_CHANGE:
                self._track_alarm = self._track_alarm or "shape"
            elif b and not border:
                self._track_alarm = self._track_alarm or "border"

    def state_dict(self) -> dict:
        return {**super().state_dict(), "credit": self.credit}

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        self.credit = float(state.get("credit", 1.0))


def contacts(ids: np.ndarray, boxes: np.ndarray, margin: float) -> frozenset[tuple[int, int]]:
    """Pairs of tracks in contact: boxes that overlap once each is grown by ``margin`` of its
    width and height on every side.

    Args:
        ids: (N,) track ids.
        boxes: (N, 4) x1 y1 x2 y2, in the order of ``ids``.
        margin: the share of a box's size added on each side, >= 0.

    Returns:
        The pairs ``(smaller id, larger id)``.
    """
    if len(ids) < 2:
        return frozenset()
    b = np.asarray(boxes, np.float64).reshape(-1, 4)
    w = np.clip(b[:, 2] - b[:, 0], 0, None) * margin
    h = np.clip(b[:, 3] - b[:, 1], 0, None) * margin
    g = np.stack([b[:, 0] - w, b[:, 1] - h, b[:, 2] + w, b[:, 3] + h], axis=1)
    meet = (np.minimum(g[:, None, 2], g[None, :, 2]) > np.maximum(g[:, None, 0], g[None, :, 0])) & (
        np.minimum(g[:, None, 3], g[None, :, 3]) > np.maximum(g[:, None, 1], g[None, :, 1])
    )
    rows, cols = np.nonzero(np.triu(meet, 1))
    return frozenset(
        (min(int(ids[r]), int(ids[c])), max(int(ids[r]), int(ids[c]))) for r, c in zip(rows, cols)
    )


class InteractionSchedule(AdaptiveSchedule):
    """Keyframes where tracks meet or part, within the fixed policy's budget (see the module
    docstring). ``predict`` False (offline processing) leaves only the credit's reasons: the
    processor spends the saved call after the fact (``spend``)."""

    def __init__(self, config: KeyframeConfig) -> None:
        super().__init__(config)
        self.credit = MAX_CREDIT - 1.0 / config.interval  # the first frame fills it
        self.predict = True
        self._alarm: str | None = None
        self._key_contacts: frozenset[tuple[int, int]] = frozenset()
        self._last: dict[int, tuple[int, np.ndarray]] = {}  # track id -> (frame, box)
        self._velocity: dict[int, np.ndarray] = {}  # track id -> (4,) box step per frame
        self._observed = 0  # tracked frames seen: the clock of the velocities
        self._key_credit = 1.0  # the credit left by the last keyframe (and spends after it)

    def is_keyframe(self, frame: Frame) -> bool:
        key = super().is_keyframe(frame)
        if key:
            self._key_credit = self.credit
        return key

    def spend(self, reason: str) -> bool:
        spent = super().spend(reason)
        if spent:
            self._key_credit -= 1.0
        return spent

    def _credit_reason(self, frame: Frame) -> str | None:
        """As the adaptive policy's, but the saved call spent is paid back one frame per
        keyframe: the keyframe of a quiet stretch is due ``interval`` frames after the last,
        or one frame later while the credit that keyframe left is under a whole call."""
        must = self._must(frame)
        if must:
            return must
        since = frame.index - self._last_index
        if since >= self.config.latest:
            return "max_interval"
        due = self.config.interval + (0 if self._key_credit >= 1.0 - 1e-9 else 1)
        if (since >= due and self.credit >= 1.0 - 1e-9) or self.credit >= MAX_CREDIT - 1e-9:
            return "budget"
        return None

    def _reason(self, frame: Frame) -> str | None:
        reason = self._credit_reason(frame)
        if reason or self.credit < 1.0 - 1e-9 or not self.predict:
            return reason
        return self._alarm

    def observe(self, tracked: Detections, keyframe: bool) -> None:
        ids, boxes = tracked.track_ids, tracked.xyxy
        self._observed += 1
        frame = self._observed
        for tid, box in zip(ids.tolist(), boxes):
            last = self._last.get(tid)
            if last is not None and frame > last[0]:
                step = (box - last[1]) / (frame - last[0])
                old = self._velocity.get(tid)
                self._velocity[tid] = (
                    step
                    if old is None
                    else _VELOCITY_MOMENTUM * step + (1 - _VELOCITY_MOMENTUM) * old
                )
            self._last[tid] = (frame, box.copy())
        alive = set(ids.tolist())
        for tid in [t for t in self._last if t not in alive]:
            del self._last[tid]
            self._velocity.pop(tid, None)
        overlap = self.config.interaction_margin
        now = contacts(ids, boxes, overlap)
        if keyframe:
            self._key_contacts, self._alarm = now, None
            return
        ahead = self.config.interaction_lookahead
        if ahead:
            moved = np.array(
                [
                    box + ahead * self._velocity.get(tid, 0.0)
                    for tid, box in zip(ids.tolist(), boxes)
                ]
            ).reshape(-1, 4)
            now = now | contacts(ids, moved, overlap)
        # a pair parting is a contact of the keyframe that neither now nor ahead shows
        gone = {p for p in self._key_contacts if p[0] in alive and p[1] in alive}
        self._alarm = "interaction" if (now - self._key_contacts) or (gone - now) else None

    def state_dict(self) -> dict:
        return {
            **super().state_dict(),
            "key_contacts": [list(p) for p in sorted(self._key_contacts)],
            "key_credit": self._key_credit,
        }

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        self._key_contacts = frozenset(tuple(p) for p in state.get("key_contacts", []))
        self._key_credit = float(state.get("key_credit", 1.0))
        self._alarm = None


def make_schedule(config: KeyframeConfig) -> KeyframeSchedule:
    """The schedule of ``config.policy``."""
    if config.policy == "interaction":
        return InteractionSchedule(config)
    return AdaptiveSchedule(config) if config.policy == "adaptive" else KeyframeSchedule(config)
