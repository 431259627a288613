"""The writer thread: hands results to the sinks, in order, off the processing thread.

Contract: ``Writer.put(msg)`` queues a typed message (``messages.py``) on a bounded queue,
waiting while it is full (False once the run stopped); ``finish()`` sends ``STOP`` and joins
the thread; ``close_sinks()`` closes every sink (each flushes). When a sink fails, the error
is kept in ``errors``, ``stop`` is set and later messages are drained unhandled, so the
processing loop never blocks on a dead writer. ``delivered`` and ``undelivered`` count, per
stream, the results that reached every sink and those that did not.
"""

from __future__ import annotations

import contextvars
import logging
import queue
import threading
import time

from streams.sinks import Sink, SinkError
from vis.pipeline import StageTimer
from vis_pipeline.messages import (
    STOP,
    CheckpointMsg,
    RedrawMsg,
    ResultMsg,
    StreamDoneMsg,
    WriterMsg,
)
from vis_pipeline.resume import CheckpointStore, OverlayRedraw

log = logging.getLogger(__name__)


class Writer:
    """Runs the sinks in a thread of their own.

    Args:
        sinks: every sink of the run (``write``/``end_stream``/``flush``/``close``).
        stop: set when a sink fails (and checked while waiting for room in the queue).
        queue_size: messages in flight between the processing loop and the sinks.
        store: where checkpoints and finished markers go (None: resume off).
        redraw: redraws resumed streams' overlays (None: no overlay).
    """

    def __init__(
        self,
        sinks: list[Sink],
        *,
        stop: threading.Event,
        queue_size: int,
        store: CheckpointStore | None = None,
        redraw: OverlayRedraw | None = None,
    ) -> None:
        self.sinks = sinks
        self.stop = stop
        self.store = store
        self.redraw = redraw
        self.queue: queue.Queue[WriterMsg] = queue.Queue(maxsize=queue_size)
        self.timer = StageTimer()
        self.errors: list[BaseException] = []
        # per stream: results that reached every sink, and results that did not (a sink
        # failed on them, or they were drained or refused after a failure)
        self.delivered: dict[str, int] = {}
        self.undelivered: dict[str, int] = {}
        #: analytics events delivered to every sink, per (stream, event kind)
        self.events: dict[tuple[str, str], int] = {}
        #: when the message being handled was taken (None: waiting for one)
        self.busy_since: float | None = None
        self.thread = threading.Thread(
            target=contextvars.copy_context().run, args=(self._run,), name="writer", daemon=True
        )

    def start(self) -> None:
        self.thread.start()

    def put(self, msg: WriterMsg, *, after_stop: bool = False) -> bool:
        """Queue ``msg``, waiting for room; False (not queued) once the run has stopped,
        unless ``after_stop`` (settling a stopped run: the thread drains its queue until
        ``STOP``, so waiting for room always ends)."""
        while True:
            try:
                self.queue.put(msg, timeout=0.2)
                return True
            except queue.Full:
                if self.stop.is_set() and not after_stop:
                    self._count(msg, self.undelivered)
                    return False

    def finish(self) -> None:
        """Let the writer deliver what is queued, then end the thread."""
        self.queue.put(STOP)
        self.thread.join()

    def close_sinks(self) -> None:
        """Close every sink (even after one failed); errors are added to ``errors``."""
        for sink in self.sinks:
            try:
                sink.close()
            except BaseException as exc:  # noqa: BLE001 - reported in the run summary
                self.errors.append(exc)

    def _run(self) -> None:
        failed = False
        try:
            while True:
                msg = self.queue.get()
                if msg is STOP:
                    break
                if failed:
                    self._count(msg, self.undelivered)
                    continue  # drain so the processing loop never blocks
                self.busy_since = time.monotonic()
                try:
                    with self.timer("sink"):
                        self._handle(msg)
                except BaseException as exc:  # noqa: BLE001 - reported by the main thread
                    self._count(msg, self.undelivered)
                    self.errors.append(exc)
                    failed = True
                    self.stop.set()
                else:
                    self._count(msg, self.delivered)
                    for event in getattr(msg, "events", ()):
                        key = (event.stream_id, event.KIND)
                        self.events[key] = self.events.get(key, 0) + 1
                finally:
                    self.busy_since = None
        finally:
            if self.redraw is not None:
                self.redraw.close()

    def _state_dir(self) -> str:
        return str(getattr(self.store, "dir", "its state folder"))

    @staticmethod
    def _count(msg: WriterMsg, counts: dict[str, int]) -> None:
        if isinstance(msg, ResultMsg):
            counts[msg.result.stream_id] = counts.get(msg.result.stream_id, 0) + 1

    def _handle(self, msg: WriterMsg) -> None:
        if isinstance(msg, ResultMsg):
            for sink in self.sinks:
                if msg.events:
                    sink.write_events(msg.events)
                sink.write(msg.result, msg.image)
        elif isinstance(msg, RedrawMsg):
            if self.redraw is not None:
                self.redraw.redraw(msg.stream_id, msg.image)
        elif isinstance(msg, CheckpointMsg):
            if self.store is not None:
                for sink in self.sinks:  # a checkpoint promises everything before it is out
                    sink.flush()
                try:
                    self.store.save(msg.stream_id, msg.frame_index, msg.state)
                except OSError as exc:  # disk full: the run stops, exit code 3
                    raise SinkError(
                        f"cannot write the checkpoint of {msg.stream_id} to "
                        f"{exc.filename or self._state_dir()}: {exc.strerror}"
                    ) from exc
        elif isinstance(msg, StreamDoneMsg):
            for sink in self.sinks:
                if msg.events:
                    sink.write_events(msg.events)
                sink.end_stream(msg.stream_id)
            if self.redraw is not None:
                self.redraw.end_stream(msg.stream_id)
            if self.store is not None and msg.summary is not None:
                try:
                    self.store.mark_done(msg.stream_id, msg.summary)
                except OSError as exc:
                    raise SinkError(
                        f"cannot mark {msg.stream_id} finished in "
                        f"{exc.filename or self._state_dir()}: {exc.strerror}"
                    ) from exc
        else:
            raise TypeError(f"the writer got an unknown message {type(msg).__name__}")
