"""Per-stream processing: keyframe schedule, propagation, tracking -> ``FrameResult``.

Contract: for each frame of a stream, in order, call ``processor.is_keyframe(frame)`` once,
run the detector on keyframes, then ``processor.process(frame, detections_or_None)``.
The processor owns the stream's tracker and flow state; it does no I/O.
"""

from __future__ import annotations

import time
from collections import defaultdict, deque
from collections.abc import Callable
from contextlib import contextmanager

import cv2
import numpy as np

from vis.keyframes import KeyframeConfig, make_schedule
from vis.propagation import PropagationConfig, Propagator
from vis.tracking.tracker import Tracker, TrackerConfig
from vis.types import Detections, Frame, FrameResult

#: version of what ``StreamProcessor.state_dict`` holds; bump when the tracker's state changes
#: shape, so that checkpoints of an older version are refused rather than misread
STATE_FORMAT = 3


class StageTimer:
    """Accumulates wall time per named stage, plus the latest ``keep`` samples for percentiles."""

    def __init__(self, keep: int = 4096) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self.calls: dict[str, int] = defaultdict(int)
        self.samples: dict[str, deque] = defaultdict(lambda: deque(maxlen=keep))
        #: called with ``(stage, seconds)`` after each ``add`` (e.g. a metrics histogram)
        self.listener: Callable[[str, float], None] | None = None

    @contextmanager
    def __call__(self, stage: str):
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.add(stage, time.perf_counter() - t0)

    def add(self, stage: str, seconds: float) -> None:
        self.seconds[stage] += seconds
        self.calls[stage] += 1
        self.samples[stage].append(seconds)
        if self.listener is not None:
            self.listener(stage, seconds)

    def percentiles_ms(self, stage: str) -> tuple[float, float]:
        """(p50, p99) in milliseconds of the kept samples of ``stage`` (0, 0 if none)."""
        import numpy as np

        xs = self.samples.get(stage)
        if not xs:
            return 0.0, 0.0
        p50, p99 = np.percentile(np.fromiter(xs, float), [50, 99])
        return float(p50 * 1000), float(p99 * 1000)


class StreamProcessor:
    """Turns a stream's frames (+ keyframe detections) into tracked ``FrameResult``s.

    Args:
        stream_id: the stream.
        labels: label per class index.
        tracker: tracker settings.
        propagation: flow and smoothing settings.
        max_gap_ms: a gap in stream time longer than this ends every track (a camera that
            was away too long); shorter gaps keep them.
        max_flow_gap: frames further apart than this are not linked by optical flow (masks
            are kept as they were and re-associated at the next keyframe).
    """

    def __init__(
        self,
        *,
        stream_id: str,
        labels: list[str],
        tracker: TrackerConfig,
        propagation: PropagationConfig,
        keyframes: KeyframeConfig | None = None,
        max_gap_ms: float = 0.0,
        max_flow_gap: int = 5,
    ) -> None:
        self.stream_id = stream_id
        self.labels = labels
        self.propagation = propagation
        self.tracker = Tracker(
            tracker, min_mask_area=propagation.min_area, smoothing=propagation.smoothing
        )
        self.propagator = Propagator(propagation)
        self.schedule = make_schedule(keyframes or KeyframeConfig())
        self.timer = StageTimer()
        self.max_gap_ms = max_gap_ms
        self.max_flow_gap = max_flow_gap
        self._prev_gray: np.ndarray | None = None
        self._prev_index = -1
        self._prev_ts: float | None = None
        self.frames = 0
        self.keyframes = 0
        self.gaps_ended = 0
        self.last_keyframe: int | None = None
        self._checkpoint_wanted = False

    def is_keyframe(self, frame: Frame) -> bool:
        """Whether the detector should run on ``frame``; call once per frame, in order."""
        return self.schedule.is_keyframe(frame)

    # -- what the processing loop calls ------------------------------------------------------
    def emit(self, frame: Frame, detections: Detections | None) -> list[tuple[FrameResult, Frame]]:
        """Track one frame and return the results ready for the sinks, in frame order, each
        with its frame. Here: the frame's own result at once (causal, for live streams)."""
        return [(self.process(frame, detections), frame)]

    def finish(self) -> list[tuple[FrameResult, Frame]]:
        """The stream ended (or the run stops): the results still held back."""
        return []

    def release(self) -> list[tuple[FrameResult, Frame]]:
        """The run stops and ``stop_point`` follows: the results that must be written first
        for the stop point to cover them (held by a stage after tracking). Here: none."""
        return []

    def wanted(self) -> list[Frame]:
        """Frames given to ``emit`` that the processor asks to be detected before it goes on
        (``vis.offline.advance``); here none."""
        return []

    def detected(self, found: list[Detections]) -> list[tuple[FrameResult, Frame]]:
        """The detections of ``wanted()``'s frames, in its order -> the results they
        release; here none is ever asked."""
        raise ValueError("no frames were asked to be detected")

    def request_checkpoint(self) -> None:
        """Ask for a checkpoint at the next point where one is consistent."""
        self._checkpoint_wanted = True

    def take_checkpoint(self) -> tuple[int, dict] | None:
        """(last frame whose result was emitted, state to resume after it) once requested and
        consistent; the state's arrays must be copied before the next frame. Here: at once."""
        point = self.stop_point() if self._checkpoint_wanted else None
        if point is not None:
            self._checkpoint_wanted = False
        return point

    def stop_point(self) -> tuple[int, dict] | None:
        """The run stops: (last frame whose result is out, state to resume after it), None
        before the first frame. Here every tracked frame's result is out."""
        if self._prev_index < 0:
            return None
        return self._prev_index, self.state_dict()

    def process(self, frame: Frame, detections: Detections | None) -> FrameResult:
        """Track one frame; ``detections`` on keyframes, None between them."""
        tracked = self.track(frame, detections)
        keyframe = detections is not None
        source = () if keyframe or self.last_keyframe is None else (self.last_keyframe,)
        return self.result(frame, tracked, keyframe=keyframe, propagated_from=source)

    def track(self, frame: Frame, detections: Detections | None) -> Detections:
        """``process`` without the result: the frame's tracked instances (``Tracker.update``:
        track ids set, masks box-local, in track-id order)."""
        gray = cv2.cvtColor(frame.image, cv2.COLOR_BGR2GRAY)
        if (
            self.max_gap_ms
            and self._prev_ts is not None
            and frame.timestamp_ms - self._prev_ts > self.max_gap_ms
        ):
            self.tracker.end_all()
            self.gaps_ended += 1
            self._prev_gray = None
        warp = None
        if (
            self._prev_gray is not None
            and self._prev_gray.shape == gray.shape
            and frame.index - self._prev_index <= self.max_flow_gap
        ):
            with self.timer("flow"):
                warp = self.propagator.warp_fn(self._prev_gray, gray, self.tracker.live_masks())
        # "propagate": the tracker moving its tracks to the frame (masks warped); "track":
        # the rest of the update (duplicates, association, lifecycle)
        t0, predict_s = time.perf_counter(), self.tracker.predict_s
        tracked = self.tracker.update(
            detections,
            frame_index=frame.index,
            image_size=gray.shape,
            timestamp_ms=frame.timestamp_ms,
            warp=warp,
        )
        predict_s = self.tracker.predict_s - predict_s
        self.timer.add("propagate", predict_s)
        self.timer.add("track", time.perf_counter() - t0 - predict_s)
        self.schedule.observe(tracked, detections is not None)
        self._prev_gray = gray
        self._prev_index = frame.index
        self._prev_ts = frame.timestamp_ms
        self.frames += 1
        if detections is not None:
            self.keyframes += 1
            self.last_keyframe = frame.index
        return tracked

    def result(
        self,
        frame: Frame,
        tracked: Detections,
        *,
        keyframe: bool,
        propagated_from: tuple[int, ...] = (),
    ) -> FrameResult:
        """The frame's ``FrameResult`` of its ``tracked`` instances (masks stay box-local:
        ``Detections``)."""
        return FrameResult(
            stream_id=self.stream_id,
            frame_index=frame.index,
            timestamp_ms=frame.timestamp_ms,
            keyframe=keyframe,
            width=frame.width,
            height=frame.height,
            detections=tracked,
            labels=self.labels,
            propagated_from=propagated_from,
        )

    @property
    def gray(self) -> np.ndarray | None:
        """The grey image of the last frame tracked (None before the first)."""
        return self._prev_gray

    # -- checkpoints -------------------------------------------------------------------
    def state_dict(self) -> dict:
        """The stream's whole tracking state as data: nested dicts/lists of JSON scalars and
        numpy arrays (for resuming an interrupted job). Includes ``format`` (STATE_FORMAT)."""
        return {
            "format": STATE_FORMAT,
            "tracker": self.tracker.state_dict(),
            "schedule": self.schedule.state_dict(),
            "prev_gray": self._prev_gray,
            "prev_index": self._prev_index,
            "prev_ts": self._prev_ts,
            "frames": self.frames,
            "keyframes": self.keyframes,
            "gaps_ended": self.gaps_ended,
            "last_keyframe": self.last_keyframe,
        }

    def load_state_dict(self, state: dict) -> None:
        """Load a ``state_dict`` taken by a processor with the same configuration.

        Raises:
            ValueError: the state has another ``format`` than this code writes.
        """
        if state.get("format") != STATE_FORMAT:
            raise ValueError(
                f"tracking state format {state.get('format')!r} is not "
                f"{STATE_FORMAT}: it was written by another version"
            )
        self.tracker.load_state_dict(state["tracker"])
        self.schedule.load_state_dict(state["schedule"])
        g = state["prev_gray"]
        self._prev_gray = None if g is None else np.asarray(g, np.uint8)
        self._prev_index = int(state["prev_index"])
        self._prev_ts = None if state["prev_ts"] is None else float(state["prev_ts"])
        self.frames = int(state["frames"])
        self.keyframes = int(state["keyframes"])
        self.gaps_ended = int(state["gaps_ended"])
        k = state.get("last_keyframe")
        self.last_keyframe = None if k is None else int(k)
