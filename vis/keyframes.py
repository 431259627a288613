"""When the detector runs: a fixed interval, or adaptively where propagation degrades.

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


@dataclasses.dataclass(frozen=True)
class KeyframeConfig:
    """When the detector runs.

    Attributes:
        interval: run the detector every ``interval`` frames (1 = every frame); with
            ``policy: adaptive``, the average number of frames per detector call.
        policy: ``fixed`` (every ``interval`` frames) or ``adaptive`` (where the health
            checks fail, within the same average budget).
        max_interval: adaptive: a keyframe at the latest after this many frames (0 = three
            times ``interval``).
        max_interval_ms: also run it when this much stream time passed since the last
            keyframe (0 = off); matters for live sources that drop frames.
        after_gap_ms: a frame arriving this long after the previous one (a reconnect, a
            burst of dropped frames) is a keyframe.
        backfill: offline mode: a track born at a keyframe is carried back into the frames
            before it, down to the previous keyframe (an object the detector missed there is
            output from its first frame).
    """

    interval: int = 10
    policy: str = "fixed"
    max_interval: int = 0
    max_interval_ms: float = 0.0
    after_gap_ms: float = 500.0
    backfill: bool = True

    def __post_init__(self) -> None:
        require(self.interval >= 1, "keyframes.interval", self.interval, "must be >= 1")
        require(
            self.policy in ("fixed", "adaptive"),
            "keyframes.policy",
            self.policy,
            "must be 'fixed' or 'adaptive'",
        )
        require(self.max_interval >= 0, "keyframes.max_interval", self.max_interval, "must be >= 0")
        require(
            self.max_interval_ms >= 0,
            "keyframes.max_interval_ms",
            self.max_interval_ms,
            "must be >= 0",
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
        must = self._must(frame)
        if must:
            return must
        if frame.index - self._last_index >= self.config.latest:
            return "max_interval"
        if self.credit >= MAX_CREDIT - 1e-9:
            return "budget"
        if self.credit < 1.0:
            return None
        return self._track_alarm or self._image_alarm(prev, small)

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


def make_schedule(config: KeyframeConfig) -> KeyframeSchedule:
    """The schedule of ``config.policy``."""
    return AdaptiveSchedule(config) if config.policy == "adaptive" else KeyframeSchedule(config)
