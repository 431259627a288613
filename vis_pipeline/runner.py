"""``run(cfg)``: a whole run, from the configured sources to the summary.

Contract: ``run`` builds the detector and the sinks (raising ``ConfigError``,
``WeightsError``, ``PrecomputedError`` or ``SinkError`` before any work), then processes
every input: one reader thread per stream feeds the processing loop (``scheduler.py``) on
this thread, which hands results to the writer thread (``writer.py``). Bad inputs are
reported in the summary (exit code 2) while the others are processed; a sink that fails
stops the run (exit code 3), except the overlay video: a stream's video that cannot be written
is given up, listed in ``failed_outputs`` (not in ``outputs``) and the run goes on (exit code
3 at its end); whatever happens, every processed frame is delivered and every sink closed
before ``run`` returns or re-raises.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections import deque
from pathlib import Path

from streams.kafka import KafkaSink, KafkaSinkConfig
from streams.sinks.export import ExportSink
from streams.sinks import (
    EventsJsonlSink,
    JsonlSink,
    OverlayVideoSink,
    Sink,
    SinkError,
    events_path,
    jsonl_path,
)
from streams.sinks.paths import make_output_folder
from streams.sources import SourceError
from vis.config import ConfigError, from_mapping
from vis.detection.factory import build_detector
from vis.detection.precision import cpu_features
from vis_pipeline.config import PipelineConfig
from vis_pipeline.inputs import StreamInput, declared_frames, expand_inputs
from vis_pipeline.logs import JOB_ID
from vis_pipeline.progress import ProgressBars
from vis_pipeline.resume import (
    CheckpointStore,
    OverlayRedraw,
    ResumeError,
    check_file_names,
    open_store,
)
from vis_pipeline.scheduler import Scheduler
from vis_pipeline.stream_run import RunContext, StreamRun
from vis_pipeline.summary import EXIT_INPUT, EXIT_SINK, RunSummary
from vis_pipeline.telemetry import RunProbe, Telemetry
from vis_pipeline.writer import Writer

log = logging.getLogger(__name__)


def run(
    cfg: PipelineConfig,
    *,
    progress: bool = True,
    stop: threading.Event | None = None,
    extra_sinks: list[Sink] | None = None,
    restart: bool = False,
    store: CheckpointStore | None = None,
    telemetry: Telemetry | None = None,
) -> RunSummary:
    """Run every source of ``cfg``.

    Args:
        cfg: the run.
        progress: show progress bars on stderr.
        stop: set it to end the run early (everything processed is still delivered).
        extra_sinks: sinks that receive every result besides the configured ones.
        restart: forget checkpoints and finished markers of these inputs first.
        store: where checkpoints and finished markers go instead of ``<output>/.state``
            (e.g. a Kafka topic, ``vis_pipeline/worker``); used only when ``resume`` is on.
        telemetry: the process's metrics and health (a worker's, shared by its jobs); None
            with ``metrics.port`` set: the run serves its own while it lasts.

    Raises:
        ConfigError: also when ``metrics.port`` cannot be listened on.
    """
    if telemetry is None and cfg.metrics.port:
        with Telemetry(cfg.metrics) as own:
            own.start()
            return run(
                cfg,
                progress=progress,
                stop=stop,
                extra_sinks=extra_sinks,
                restart=restart,
                store=store,
                telemetry=own,
            )
    stop = stop or threading.Event()
    inputs, errors = expand_inputs(cfg)
    check_file_names([item.stream_id for item in inputs])  # one stream per file name
    out_dir = Path(cfg.output)
    make_output_folder(out_dir, ConfigError, named=cfg.output)
    detector = build_detector(cfg.detector)
    try:
        cfg.analytics.check_classes(detector.labels)
    except ConfigError:
        detector.close()
        raise
    summary = RunSummary(
        failed_inputs=list(errors),
        detector={
            "engine": detector.engine,
            "requested": cfg.detector.precision,
            "precision": detector.precision,
        },
        cpu=cpu_features().to_json(),
    )
    if store is None or not cfg.resume:
        store = open_store(cfg, [item.stream_id for item in inputs], restart=restart)
    sinks: list[Sink] = list(extra_sinks or [])
    if cfg.sinks.jsonl:
        sinks.append(JsonlSink(out_dir, resume=True, record_version=cfg.sinks.record_version))
    if cfg.analytics.enabled and cfg.sinks.events_jsonl:  # files cut back by StreamRun
        sinks.append(EventsJsonlSink(out_dir, resume=True))
    if cfg.sinks.kafka is not None:
        kafka = from_mapping(KafkaSinkConfig, cfg.sinks.kafka, "sinks.kafka")
        if not cfg.analytics.enabled:  # no events: no events topic to create
            kafka = dataclasses.replace(kafka, events_topic=None)
        sinks.append(KafkaSink(kafka, record_version=cfg.sinks.record_version))
    if cfg.sinks.exports:  # after the JSONL sink: exports read the stream's finished JSONL
        sinks.append(ExportSink(out_dir, cfg.sinks.exports, images=cfg.sinks.export_images))
    overlay = (
        OverlayVideoSink(out_dir, analytics=cfg.analytics if cfg.analytics.enabled else None)
        if cfg.sinks.overlay
        else None
    )
    if overlay is not None:
        sinks.append(overlay)
    # redrawing a resumed overlay needs the kept results, which are in the JSONL file
    redraw = OverlayRedraw(out_dir, overlay) if overlay is not None and cfg.sinks.jsonl else None
    writer = Writer(sinks, stop=stop, queue_size=cfg.queue_size, store=store, redraw=redraw)
    context = RunContext(
        config=cfg,
        labels=detector.labels,
        stop=stop,
        activity=threading.Event(),
        store=store,
        redraw_overlay=redraw is not None,
        telemetry=telemetry,
    )
    bars = ProgressBars(declared_frames(inputs)) if progress else None
    admission = Admission(inputs, context, summary, overlay=overlay, bars=bars)
    scheduler = Scheduler(context, detector, writer, admission, bars)
    probe = RunProbe(
        scheduler,
        writer,
        sinks,
        summary.detector,
        summary.cpu,
        read_budget_s=cfg.live.read_timeout_s + cfg.live.connect_timeout_s,
        name=f"job {JOB_ID.get()}" if JOB_ID.get() else "run",
    )
    if telemetry is not None:
        telemetry.attach(probe)
    started = time.perf_counter()
    failure: BaseException | None = None
    writer.start()
    try:
        scheduler.run()
    except BaseException as exc:  # noqa: BLE001 - re-raised after the sinks are flushed
        failure = exc
    finally:
        if failure is not None:
            stop.set()
        else:  # stopped (signal, worker shutdown): checkpoint at the last delivered frame
            try:
                scheduler.settle()
            except Exception:  # noqa: BLE001 - the streams resume from their last checkpoint
                log.exception("could not checkpoint the stopped streams at their last frame")
        scheduler.abandon_active()  # interrupted: record what was processed
        writer.finish()
        stop.set()
        for stream in scheduler.finished:
            stream.unblock_reader()
        writer.close_sinks()
        detector.close()
        if bars is not None:
            bars.close()
        if telemetry is not None:
            telemetry.detach(probe)
    summary.seconds = time.perf_counter() - started
    summary.sink_seconds = writer.timer.seconds.get("sink", 0.0)
    summary.detector_calls = scheduler.detector_calls
    summary.detections_skipped = detector.malformed
    summary.streams = [stream.summary() for stream in scheduler.finished]
    for record in summary.streams:  # what reached the sinks, not what was processed
        record["written_frames"] = writer.delivered.get(record["stream_id"], 0)
        record["unwritten_frames"] = writer.undelivered.get(record["stream_id"], 0)
    for sink in sinks:
        stats = sink.stats()
        if stats:
            summary.sink_stats[type(sink).__name__] = dict(stats)
    lost = list(overlay.failures.values()) if overlay is not None else []
    if lost:  # videos given up: not written, whatever was admitted
        gone = {str(overlay.path_for(stream_id)) for stream_id in overlay.failures}
        summary.outputs = [path for path in summary.outputs if path not in gone]
        summary.failed_outputs = [str(exc) for exc in lost]
    _conclude(summary, scheduler.finished, writer.errors, failure)
    return summary


class Admission:
    """Starts waiting inputs while fewer than ``parallel_streams`` file streams are active
    (live streams do not count: they never finish on their own).

    Args:
        inputs: the run's streams, in order.
        context: what the streams share.
        summary: where failed, already complete and written outputs are recorded.
        overlay: the overlay sink (told each stream's frame rate), or None.
        bars: progress bars, or None.
    """

    def __init__(
        self,
        inputs: list[StreamInput],
        context: RunContext,
        summary: RunSummary,
        *,
        overlay: OverlayVideoSink | None = None,
        bars: ProgressBars | None = None,
    ) -> None:
        self.pending = deque(inputs)
        self.context = context
        self.summary = summary
        self.overlay = overlay
        self.bars = bars

    def __call__(self, active: list[StreamRun]) -> list[StreamRun]:
        """The streams to start now, already started."""
        started: list[StreamRun] = []
        limit = self.context.config.parallel_streams
        while self.pending and sum(not s.live for s in [*active, *started]) < limit:
            item = self.pending.popleft()
            try:
                stream = StreamRun(item, self.context)
            except (SourceError, ResumeError, ConfigError) as exc:
                self.summary.failed_inputs.append(str(exc))
                continue
            if stream.complete:
                self.summary.skipped_complete.append(item.stream_id)
                continue
            if self.overlay is not None:
                self.overlay.set_fps(stream.stream_id, stream.source.fps)
            if self.bars is not None:
                self.bars.add_stream(stream)
            stream.start()
            started.append(stream)
            self._record_outputs(stream.stream_id)
        return started

    def _record_outputs(self, stream_id: str) -> None:
        cfg = self.context.config
        if cfg.sinks.jsonl:
            self.summary.outputs.append(str(jsonl_path(cfg.output, stream_id)))
        if cfg.analytics.enabled and cfg.sinks.events_jsonl:
            self.summary.outputs.append(str(events_path(cfg.output, stream_id)))
        if self.overlay is not None:
            self.summary.outputs.append(str(self.overlay.path_for(stream_id)))


def _conclude(
    summary: RunSummary,
    streams: list[StreamRun],
    sink_errors: list[BaseException],
    failure: BaseException | None,
) -> None:
    """Set the exit code and error line; re-raise ``failure`` (or a stream's unexpected
    error) unless a sink failed. An output given up (``failed_outputs``) is a sink failure
    too, reported before the inputs that failed."""
    for stream in streams:
        if stream.failure is not None and not isinstance(stream.failure, SourceError | ConfigError):
            failure = failure or stream.failure
        elif stream.failure is not None:
            summary.failed_inputs.append(str(stream.failure))
    if sink_errors:
        exc = sink_errors[0]
        summary.exit_code = EXIT_SINK
        summary.error = str(exc) if isinstance(exc, SinkError) else f"sink failed: {exc!r}"
        return
    if failure is not None:
        raise failure
    for stream in summary.streams:
        if stream["truncated"]:
            summary.failed_inputs.append(
                f"video {stream['source']} is truncated: decoded frames were processed and written"
            )
    if summary.failed_outputs:
        summary.exit_code = EXIT_SINK
        summary.error = summary.failed_outputs[0]
        return
    if summary.failed_inputs:
        summary.exit_code = EXIT_INPUT
        summary.error = (
            summary.failed_inputs[0]
            if len(summary.failed_inputs) == 1
            else f"{len(summary.failed_inputs)} inputs failed (see summary)"
        )
