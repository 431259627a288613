"""One stream inside a run: its source and reader thread, frame queue, processor, counters.

Contract: ``StreamRun(stream_input, context)`` opens the source (raising ``SourceError``)
and restores the stream's checkpoint (raising ``ResumeError``); ``complete`` is True when
a finished marker says there is nothing to do. ``start()`` starts the reader thread, which
fills the bounded queue: files apply back-pressure (the reader waits), live streams keep
only the newest ``live.buffer_frames`` frames (older ones are dropped and counted). The
processing loop moves frames to ``buffer`` with ``pull`` (the keyframe schedule is decided
there, in order) and takes them from its head once ``head_ready``.
"""

from __future__ import annotations

import contextvars
import dataclasses
import logging
import queue
import threading
import time
from collections import deque
from typing import TYPE_CHECKING, NamedTuple

from streams.live import LiveSource, is_live_uri, put_latest
from streams.sinks.paths import events_path
from streams.sources import open_source
from vis.analytics import Analytics
from vis.config import ConfigError
from vis.offline import make_processor
from vis.pipeline import StageTimer
from vis.types import Detections, Frame
from vis_pipeline import resume
from vis_pipeline.config import PipelineConfig
from vis_pipeline.inputs import StreamInput
from vis_pipeline.logs import STREAM_ID

if TYPE_CHECKING:
    from vis_pipeline.telemetry import Telemetry

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class RunContext:
    """What every stream of a run shares.

    Attributes:
        config: the run's configuration.
        labels: the detector's label per class index.
        stop: set to end the run (signals, failures).
        activity: set by readers when a frame (or the end) arrives; the loop waits on it.
        store: checkpoints and finished markers (None: resume off).
        redraw_overlay: on resume, send the frames up to the resume point for the overlay.
        telemetry: observes each stream's stage times and latency (None: metrics off).
    """

    config: PipelineConfig
    labels: list[str]
    stop: threading.Event
    activity: threading.Event
    store: resume.CheckpointStore | None
    redraw_overlay: bool
    telemetry: Telemetry | None = None


class QueuedFrame(NamedTuple):
    """A decoded frame; ``written``: its result is already in the outputs (resumed stream)."""

    frame: Frame
    written: bool


class BufferedFrame(NamedTuple):
    """A frame waiting to be processed; ``detect``: the detector must run on it first."""

    frame: Frame
    detect: bool
    written: bool


class StreamRun:
    """A stream inside a run (see the module docstring)."""

    def __init__(self, stream_input: StreamInput, context: RunContext) -> None:
        cfg = context.config
        self.context_config = cfg
        self.uri = stream_input.uri
        self.stop, self.activity = context.stop, context.activity
        self.live = is_live_uri(self.uri)
        point = resume.ResumePoint()
        if context.store is not None and not self.live:
            point = context.store.resume_point(
                stream_input.stream_id, source=resume.source_identity(self.uri)
            )
        self.complete = point.complete
        self.resume_from = point.frame_index
        self.delivered = point.frame_index  # the last frame whose result went to the writer
        if self.complete:
            log.info(
                "%s: already complete in %s, skipped (--restart to redo)",
                stream_input.stream_id,
                cfg.output,
            )
            return
        if self.live:
            self.source = LiveSource(
                self.uri, stream_id=stream_input.stream_id, config=cfg.live, stop=self.stop
            )
        else:
            self.source = open_source(
                self.uri,
                stream_id=stream_input.stream_id,
                fps=cfg.fps,
                max_pixels=cfg.frame.max_pixels,
            )
        self.stream_id: str = self.source.stream_id
        self.analytics = self._analytics(cfg, point)
        if cfg.sinks.jsonl:  # a fresh start empties the file; a resume keeps what it resumes from
            resume.prepare_jsonl(cfg.output, self.stream_id, self.resume_from)
        self.processor = make_processor(
            offline=not self.live and cfg.mode == "offline",
            stream_id=self.stream_id,
            labels=context.labels,
            tracker=cfg.tracker,
            propagation=cfg.propagation,
            keyframes=cfg.keyframes,
            repair=cfg.repair,
            max_gap_ms=cfg.live.max_gap_ms if self.live else 0.0,
        )
        width, height = getattr(self.source, "width", None), getattr(self.source, "height", None)
        size = (int(width), int(height)) if width and height else None
        resume.restore(self.processor, point, self.stream_id, frame_size=size)
        self.frames_before = self.processor.frames  # processed by the runs this one resumes
        self.redraw_overlay = context.redraw_overlay
        self.queue: queue.Queue[QueuedFrame] = queue.Queue(
            cfg.live.buffer_frames if self.live else cfg.queue_size
        )
        self.buffer: deque[BufferedFrame] = deque()
        self.detections: dict[int, Detections] = {}  # keyframe index -> detections, ahead of use
        self.reader_done = False
        self.failure: BaseException | None = None
        self.timer = StageTimer()
        self.latency = StageTimer()
        self.dropped = {"dropped": 0}
        self.started_at = time.perf_counter()
        self.seconds = 0.0
        self.last_frame_at = time.monotonic()  # the source opened, then each frame read
        if context.telemetry is not None:
            context.telemetry.watch_stream(self)
        self.thread = threading.Thread(  # the job id of the logs goes along
            target=contextvars.copy_context().run,
            args=(self._read,),
            name=f"reader-{self.stream_id}",
            daemon=True,
        )

    def start(self) -> None:
        self.thread.start()

    def _analytics(self, cfg: PipelineConfig, point: resume.ResumePoint) -> Analytics | None:
        """The stream's analytics (None: no lines or zones), checked against the frame size
        when the source knows it (files; live sources at their first frame), restored from
        the checkpoint, its events file cut back to the resume point.

        Raises:
            ConfigError: a line or zone does not fit the frame (nothing written yet).
            ResumeError: the checkpoint's analytics state is not one this configuration
                writes (nothing written yet).
        """
        self._frame_checked = False
        if not cfg.analytics.enabled:
            return None
        width, height = getattr(self.source, "width", None), getattr(self.source, "height", None)
        if width and height:
            self._check_frame(width, height)
        # a track missing longer than the tracker keeps it (plus a tolerated outage) is gone
        forget_ms = 1000.0 * cfg.tracker.max_lost_s + (cfg.live.max_gap_ms if self.live else 0)
        analytics = Analytics(cfg.analytics, stream_id=self.stream_id, forget_after_ms=forget_ms)
        if point.state is not None and "analytics" in point.state:  # before any file is cut
            resume.restore_part(analytics, point.state["analytics"], self.stream_id)
        if cfg.sinks.events_jsonl:
            resume.cut_jsonl(events_path(cfg.output, self.stream_id), self.resume_from)
        return analytics

    def _check_frame(self, width: int, height: int) -> None:
        self._frame_checked = True
        try:
            self.context_config.analytics.check_frame(width, height)
        except ConfigError as exc:
            raise ConfigError(f"{self.uri}: {exc}") from None

    def checkpoint_state(self, state: dict) -> dict:
        """The processor's ``state`` plus the analytics state (both after the same frame)."""
        if self.analytics is None:
            return state
        return {**state, "analytics": self.analytics.state_dict()}

    # -- reader thread ---------------------------------------------------------------------------
    def _read(self) -> None:
        STREAM_ID.set(self.stream_id)
        frames = iter(self.source)
        try:
            while not self.stop.is_set():
                with self.timer("decode"):
                    frame = next(frames, None)
                if frame is None:
                    break
                frame.captured_at = frame.captured_at or time.monotonic()
                self.last_frame_at = time.monotonic()
                item = QueuedFrame(frame, frame.index <= self.resume_from)
                if self.live:
                    put_latest(self.queue, item, self.dropped)
                else:
                    self._put_waiting(item)
                self.activity.set()
        except BaseException as exc:  # noqa: BLE001 - reported by the processing loop
            self.failure = exc
        finally:
            self.reader_done = True
            self.activity.set()

    def _put_waiting(self, item: QueuedFrame) -> None:
        """Back-pressure: wait for room (or the run to stop)."""
        while not self.stop.is_set():
            try:
                self.queue.put(item, timeout=0.2)
                return
            except queue.Full:
                continue

    def unblock_reader(self) -> None:
        """After the run stopped: empty the queue until the reader thread has ended."""
        while self.thread.is_alive():
            try:
                self.queue.get_nowait()
            except queue.Empty:
                self.thread.join(0.05)

    # -- processing-loop side --------------------------------------------------------------------
    def pull(self, block: bool) -> bool:
        """Move one frame from the queue to the buffer (schedule decided here, in order)."""
        while True:
            try:
                item = self.queue.get(timeout=0.1) if block else self.queue.get_nowait()
            except queue.Empty:
                if not block or self.reader_done or self.stop.is_set():
                    if self.reader_done and not self.queue.empty():
                        continue
                    return False
                continue
            if self.analytics is not None and not self._frame_checked:
                try:  # a live source's frame size is known only now
                    self._check_frame(item.frame.width, item.frame.height)
                except ConfigError as exc:
                    self.failure = exc
                    return False
            is_keyframe = self.processor.is_keyframe(item.frame)
            self.buffer.append(
                BufferedFrame(item.frame, is_keyframe and not item.written, item.written)
            )
            return True

    @property
    def finished(self) -> bool:
        return self.reader_done and self.queue.empty() and not self.buffer

    def pending_keyframes(self) -> list[Frame]:
        return [b.frame for b in self.buffer if b.detect and b.frame.index not in self.detections]

    def head_ready(self) -> bool:
        head = self.buffer[0]
        return not head.detect or head.frame.index in self.detections

    def summary(self) -> dict:
        """The stream's line of the run summary (also its finished marker)."""
        p50, p99 = self.latency.percentiles_ms("end_to_end")
        stats = self.source.stats
        stages: dict[str, float] = {}
        percentiles: dict[str, list[float]] = {}
        for timer in (self.timer, self.processor.timer):
            for stage, seconds in timer.seconds.items():
                stages[stage] = stages.get(stage, 0.0) + seconds
                percentiles[stage] = [round(x, 2) for x in timer.percentiles_ms(stage)]
        frames = self.processor.frames
        this_run = frames - self.frames_before
        repair = getattr(self.processor, "repair", None)
        return {
            "stream_id": self.stream_id,
            "source": self.uri,
            "live": self.live,
            "frames": frames,
            "frames_this_run": this_run,
            "keyframes": self.processor.keyframes,
            "keyframe_reasons": dict(self.processor.schedule.reasons),
            "repair": repair.summary() if repair is not None else None,
            "tracks": self.processor.tracker.total_started,
            "score_scale": round(self.processor.tracker.score_scale(), 4),
            "corrupt_frames": stats["corrupt"],
            "truncated": bool(stats["truncated"]),
            "dropped_frames": self.dropped["dropped"],
            "reconnects": stats.get("reconnects", 0),
            "backlog_frames": stats.get("backlog", 0),
            "resumed_after_frame": self.resume_from,
            "rtsp_transport": self.source.transport if self.live else None,
            "seconds": round(self.seconds, 3),
            "fps": round(this_run / self.seconds, 3) if self.seconds > 0 else 0.0,
            "latency_ms_p50": round(p50, 1),
            "latency_ms_p99": round(p99, 1),
            "stage_seconds": {k: round(v, 4) for k, v in stages.items()},
            "stage_ms_p50_p99": percentiles,
        }
