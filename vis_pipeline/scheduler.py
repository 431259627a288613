"""The processing loop: every stream served round-robin, keyframes of all streams batched.

Contract: ``Scheduler.run()`` runs on the main thread until every stream is finished or
``stop`` is set. Each turn it (1) moves frames from the readers' queues into the streams'
buffers (files block, which keeps a run deterministic; live streams never block), (2)
gathers the keyframes waiting at the buffers' heads, looking ahead in file streams to fill
a detector batch of ``detector.batch_size``, and runs the detector once on them, (3)
processes one ready frame per stream, starting at a rotating stream so that a busy stream
cannot starve another, and hands each result to the writer, and (4) retires finished
streams and admits waiting inputs in their place. Checkpoints of file streams are taken here
(the state is encoded, arrays copied, on this thread) and saved by the writer.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from vis.detection.base import Detector
from vis.offline import advance
from vis.types import Frame, FrameResult
from vis_pipeline.messages import CheckpointMsg, RedrawMsg, ResultMsg, StreamDoneMsg, WriterMsg
from vis_pipeline.progress import ProgressBars, StatusReporter
from vis_pipeline.resume import encode_state
from vis_pipeline.stream_run import RunContext, StreamRun
from vis_pipeline.writer import Writer

log = logging.getLogger(__name__)


class _Stopped(Exception):
    """The run stopped while a result waited for room in the writer's queue."""


class Scheduler:
    """Round-robin over the active streams (see the module docstring).

    Args:
        context: the run's shared settings and events.
        detector: runs on the batched keyframes.
        writer: receives the results, checkpoints and stream ends.
        admit: called with the active streams; returns the streams to start now.
        bars: progress bars (None: none).
    """

    def __init__(
        self,
        context: RunContext,
        detector: Detector,
        writer: Writer,
        admit: Callable[[list[StreamRun]], list[StreamRun]],
        bars: ProgressBars | None = None,
    ) -> None:
        cfg = context.config
        self.context = context
        self.detector = detector
        self.writer = writer
        self.admit = admit
        self.bars = bars
        self.batch_size = cfg.detector.batch_size
        self.lookahead = max(1, cfg.detector.batch_size * cfg.keyframes.interval)
        self.checkpoint_every = cfg.checkpoint_every
        self.status = StatusReporter(cfg.live.report_every_s)
        self.active: list[StreamRun] = []
        self.finished: list[StreamRun] = []
        self.detector_calls = 0
        self._settling = False
        self.beat = time.monotonic()  # when the loop last turned (liveness)

    def run(self) -> None:
        """Serve the streams until all are done or ``stop`` is set."""
        self.active += self.admit(self.active)
        turn = 0
        try:
            while not self.context.stop.is_set() and self.active:
                self.beat = time.monotonic()
                start = turn % len(self.active)
                order = self.active[start:] + self.active[:start]
                turn += 1
                self._pull_frames(order)
                batch = self._keyframe_batch(order)
                if batch:
                    self._detect(batch)
                progressed = bool(batch)
                for stream in order:
                    progressed = self._process_head(stream) or progressed
                self._retire_finished()
                self.status.maybe_report(self.active)
                if not progressed:
                    self.context.activity.wait(0.02)
                    self.context.activity.clear()
        except _Stopped:
            return

    def settle(self) -> None:
        """The run was stopped: finish the frames already in each file stream's buffer
        (detector included), then checkpoint the stream after its last delivered frame (in
        offline mode: the last frame before its latest keyframe), so a stopped job resumes
        without repeating a result. Nothing new is read."""
        if self.context.store is None or self.writer.errors:
            return
        self._settling = True
        for stream in self.active:
            if stream.live or stream.failure is not None:
                continue
            while stream.buffer:
                if not stream.head_ready():
                    pending = stream.pending_keyframes()[: self.batch_size]
                    self._detect([(stream, frame) for frame in pending])
                self._process_head(stream)
            # results held after tracking (identity repair) go out first: the stop point
            # follows them; offline, the frames held since the last keyframe are dropped and
            # redone on resume
            self._send_results(stream, stream.processor.release())
            point = stream.processor.stop_point()
            if point is not None and point[0] > stream.resume_from:
                index, state = point
                state = encode_state(stream.checkpoint_state(state))
                self.writer.put(CheckpointMsg(stream.stream_id, index, state), after_stop=True)
                log.info("%s: stopped, checkpoint after frame %d", stream.stream_id, index)

    def abandon_active(self) -> None:
        """The run stopped: record the streams still active as they are (no stream end); the
        results an offline stream held back go out as tracked forward, if the writer runs."""
        for stream in self.active:
            try:
                self._send_results(stream, stream.processor.finish())
            except _Stopped:
                pass
            stream.seconds = time.perf_counter() - stream.started_at
            self.finished.append(stream)
        self.active = []

    # -- one turn --------------------------------------------------------------------------------
    def _pull_frames(self, order: list[StreamRun]) -> None:
        """Files block (deterministic), live streams never do."""
        any_live = any(stream.live for stream in order)
        for stream in order:
            if not stream.buffer:
                stream.pull(block=not any_live)

    def _keyframe_batch(self, order: list[StreamRun]) -> list[tuple[StreamRun, Frame]]:
        """Keyframes at the heads, then look-ahead in file streams to fill the batch."""
        batch = [
            (stream, stream.buffer[0].frame)
            for stream in order
            if stream.buffer and not stream.head_ready()
        ]
        for stream in order:
            if len(batch) >= self.batch_size or stream.live or not batch:
                break
            if stream.pending_keyframes():
                while (
                    len(stream.pending_keyframes()) < self.batch_size
                    and len(stream.buffer) < self.lookahead
                    and stream.pull(block=True)
                ):
                    pass
                batch += [(stream, frame) for frame in stream.pending_keyframes()[1:]]
        return batch[: self.batch_size]

    def _detect(self, batch: list[tuple[StreamRun, Frame]]) -> None:
        started = time.perf_counter()
        detections = self.detector.detect_frames([frame for _, frame in batch])
        self.detector_calls += 1
        seconds = time.perf_counter() - started
        for (stream, frame), found in zip(batch, detections):
            stream.detections[frame.index] = found
            stream.timer.add("detect", seconds / len(batch))

    def _detect_held(self, stream: StreamRun, frames: list[Frame]) -> list:
        """The detections of held frames the stream's processor asks for, in batches."""
        found = []
        for i in range(0, len(frames), self.batch_size):
            batch = [(stream, frame) for frame in frames[i : i + self.batch_size]]
            self._detect(batch)
            found += [stream.detections.pop(frame.index) for _, frame in batch]
        return found

    def _process_head(self, stream: StreamRun) -> bool:
        """Process the stream's next frame if it is ready; whether one was taken."""
        if not stream.buffer or not stream.head_ready():
            return False
        item = stream.buffer.popleft()
        if item.written:  # resumed stream: only the overlay needs the frame again
            if stream.redraw_overlay:
                self._send(RedrawMsg(stream.stream_id, item.frame.image))
            return True
        found = stream.detections.pop(item.frame.index) if item.detect else None
        ready = advance(
            stream.processor, item.frame, found, lambda frames: self._detect_held(stream, frames)
        )
        self._send_results(stream, ready)
        if self._checkpoint_due(stream):
            stream.processor.request_checkpoint()
        point = stream.processor.take_checkpoint()
        if point is not None:
            index, state = point
            self.writer.put(
                CheckpointMsg(
                    stream.stream_id, index, encode_state(stream.checkpoint_state(state))
                ),
                after_stop=self._settling,
            )
        if self.bars is not None:
            self.bars.frame_done(stream)
        return True

    def _send_results(self, stream: StreamRun, ready: list[tuple[FrameResult, Frame]]) -> None:
        for result, frame in ready:  # final results, in the order they are written
            events = () if stream.analytics is None else tuple(stream.analytics.update(result))
            self._send(ResultMsg(result, frame.image, events))
            stream.delivered = frame.index
            stream.latency.add("end_to_end", time.monotonic() - frame.captured_at)

    def _checkpoint_due(self, stream: StreamRun) -> bool:
        """Offline streams, every ``checkpoint_every`` frames, when no detections are ahead."""
        return (
            self.context.store is not None
            and not stream.live
            and not stream.detections
            and stream.processor.frames % self.checkpoint_every == 0
        )

    def _retire_finished(self) -> None:
        for stream in list(self.active):
            if not (stream.finished or (stream.failure is not None and not stream.buffer)):
                continue
            stream.seconds = time.perf_counter() - stream.started_at
            if self.bars is not None:
                self.bars.stream_done(stream)
            self._send_results(stream, stream.processor.finish())
            self.active.remove(stream)
            self.finished.append(stream)
            complete = stream.failure is None and not stream.source.stats["truncated"]
            marker = (
                stream.summary()
                if complete and self.context.store is not None and not stream.live
                else None
            )
            # a complete file's tracks still inside a zone exit at its end; a stream that
            # failed or was cut short may be resumed, so its zones stay open
            closing = (
                tuple(stream.analytics.finish())
                if stream.analytics is not None and complete and not stream.live
                else ()
            )
            self.writer.put(StreamDoneMsg(stream.stream_id, marker, closing))
            self.active += self.admit(self.active)

    def _send(self, msg: WriterMsg) -> None:
        if not self.writer.put(msg, after_stop=self._settling):
            raise _Stopped
