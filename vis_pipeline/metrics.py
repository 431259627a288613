"""Every Prometheus metric the pipeline exports: names, types, labels and meaning, in one place.

Contract: ``METRICS`` maps each name (as scraped, without a histogram's ``_bucket``/``_sum``/
``_count`` suffixes) to its ``MetricSpec``; the collectors of ``vis_pipeline/telemetry.py``
export exactly these and nothing else. Names follow Prometheus conventions: base units in the
name (``_seconds``, ``_bytes``), counters end in ``_total``, labels take bounded values
(stream ids and sink types, never track ids, job ids or URIs). Metrics are off unless
``metrics.port`` (or ``--metrics-port``) is set; see docs/operations.md.

name{labels}                                       type       meaning
-------------------------------------------------  ---------  --------------------------------------
vis_stream_frames_processed_total{stream}          counter    Frames tracked.
vis_stream_frames_written_total{stream}            counter    Results that reached every sink.
vis_stream_keyframes_total{stream}                 counter    Frames the detector ran on.
vis_stream_frames_dropped_total{stream,reason}     counter    Frames lost by reason: buffer_full
                                                              (a live stream's oldest frame
                                                              dropped: processing slower than
                                                              the camera), sink_failed
                                                              (processed, not delivered: a sink
                                                              failed).
vis_stream_corrupt_frames_total{stream}            counter    Undecodable frames skipped.
vis_stream_backlog_frames_skipped_total{stream}    counter    Stale frames skipped after a
                                                              (re)connect.
vis_stream_reconnects_total{stream}                counter    Reconnect attempts of a live
                                                              stream.
vis_stream_stalls_total{stream}                    counter    Live stream dropped or silent for
                                                              live.read_timeout_s.
vis_stream_connected{stream}                       gauge      1 while the source is connected (a
                                                              file: while it is read).
vis_stream_last_frame_timestamp_seconds{stream}    gauge      Unix time of the last decoded
                                                              frame.
vis_stream_tracks_active{stream}                   gauge      Confirmed tracks now.
vis_stream_tracks_started_total{stream}            counter    Tracks started.
vis_stream_latency_seconds{stream}                 histogram  Capture to result handed to the
                                                              writer.
vis_stream_stage_seconds{stream,stage}             histogram  Time per call of a stage: decode,
                                                              detect (a frame's share of its
                                                              batch), flow, propagate, track,
                                                              ...
vis_events_delivered_total{stream,type}            counter    Analytics events delivered to
                                                              every sink, by type: line_cross,
                                                              zone_enter, zone_exit,
                                                              zone_occupancy.
vis_detector_calls_total                           counter    Detector calls (one batch each).
vis_detector_frames_total                          counter    Frames detected.
vis_detector_seconds_total                         counter    Seconds spent in detector calls.
vis_detector_info{engine,precision,requested,cpu_model,cpu_features}
                                                   info       Value 1: the detector's engine,
                                                              its precision (and the one
                                                              requested) and the CPU's model and
                                                              features.
vis_sink_records_sent_total{sink}                  counter    Records acknowledged (Kafka) or
                                                              lines written (files).
vis_sink_records_failed_total{sink}                counter    Failed send attempts or writes.
vis_sink_records_retried_total{sink}               counter    Records re-sent after a producer
                                                              failure.
vis_sink_records_pending{sink}                     gauge      Records queued and not yet
                                                              acknowledged.
vis_sink_bytes_sent_total{sink}                    counter    Value bytes acknowledged.
vis_sink_blocked_seconds_total{sink}               counter    Seconds write waited on a full
                                                              buffer (back-pressure).
vis_sink_recoveries_total{sink}                    counter    New producers after a failure.
vis_sink_track_events_total{sink}                  counter    Track lifecycle events queued
                                                              (Kafka tracks topic).
vis_worker_jobs_running                            gauge      Jobs running on this worker.
vis_worker_jobs_started_total                      counter    Jobs taken from the jobs topic.
vis_worker_jobs_finished_total{outcome}            counter    Jobs ended by outcome: done,
                                                              failed, handed_over (stopped:
                                                              another worker resumes it),
                                                              sink_failed.
vis_worker_partitions_held                         gauge      Jobs-topic partitions assigned.
vis_worker_last_checkpoint_age_seconds             gauge      Seconds since the last checkpoint
                                                              (or the start) of the running job
                                                              longest without one; 0 when idle.
vis_worker_info{worker_id,group,jobs_topic}        info       Value 1: this worker's id,
                                                              consumer group and jobs topic.
vis_up{check}                                      gauge      1 when /healthz (check=live) or
                                                              /readyz (check=ready) would answer
                                                              200.

The ``sink`` label is the sink's type: ``kafka``, ``jsonl``, ``events_jsonl``, ``overlay``,
``export``. Counters of a stream or sink continue across the runs (worker jobs) of one process.
"""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class MetricSpec:
    """Attributes:
    kind: ``counter``, ``gauge``, ``histogram`` or ``info``.
    labels: label names, in order.
    help: the ``# HELP`` line.
    """

    kind: str
    labels: tuple[str, ...]
    help: str


def _spec(kind: str, labels: str, text: str) -> MetricSpec:
    return MetricSpec(kind, tuple(labels.split()) if labels else (), text)


#: every exported metric; histograms' and infos' names as scraped without suffixes
METRICS: dict[str, MetricSpec] = {
    # -- per stream ------------------------------------------------------------------------
    "vis_stream_frames_processed_total": _spec("counter", "stream", "Frames tracked."),
    "vis_stream_frames_written_total": _spec(
        "counter", "stream", "Results that reached every sink."
    ),
    "vis_stream_keyframes_total": _spec("counter", "stream", "Frames the detector ran on."),
    "vis_stream_frames_dropped_total": _spec(
        "counter",
        "stream reason",
        "Frames lost: buffer_full (live, processing too slow), sink_failed (not delivered).",
    ),
    "vis_stream_corrupt_frames_total": _spec("counter", "stream", "Undecodable frames skipped."),
    "vis_stream_backlog_frames_skipped_total": _spec(
        "counter", "stream", "Stale frames skipped after a (re)connect."
    ),
    "vis_stream_reconnects_total": _spec(
        "counter", "stream", "Reconnect attempts of a live stream."
    ),
    "vis_stream_stalls_total": _spec(
        "counter", "stream", "Live stream dropped or silent for live.read_timeout_s."
    ),
    "vis_stream_connected": _spec("gauge", "stream", "1 while the source is connected."),
    "vis_stream_last_frame_timestamp_seconds": _spec(
        "gauge", "stream", "Unix time of the last decoded frame."
    ),
    "vis_stream_tracks_active": _spec("gauge", "stream", "Confirmed tracks now."),
    "vis_stream_tracks_started_total": _spec("counter", "stream", "Tracks started."),
    "vis_stream_latency_seconds": _spec(
        "histogram", "stream", "Capture to result handed to the writer."
    ),
    "vis_stream_stage_seconds": _spec(
        "histogram", "stream stage", "Time per call of a processing stage."
    ),
    "vis_events_delivered_total": _spec(
        "counter", "stream type", "Analytics events delivered to every sink."
    ),
    # -- detector --------------------------------------------------------------------------
    "vis_detector_calls_total": _spec("counter", "", "Detector calls (one batch each)."),
    "vis_detector_frames_total": _spec("counter", "", "Frames detected."),
    "vis_detector_seconds_total": _spec("counter", "", "Seconds spent in detector calls."),
    "vis_detector_info": _spec(
        "info",
        "engine precision requested cpu_model cpu_features",
        "Detector engine and numeric precision, and the CPU.",
    ),
    # -- sinks -----------------------------------------------------------------------------
    "vis_sink_records_sent_total": _spec(
        "counter", "sink", "Records acknowledged (Kafka) or lines written (files)."
    ),
    "vis_sink_records_failed_total": _spec("counter", "sink", "Failed send attempts or writes."),
    "vis_sink_records_retried_total": _spec(
        "counter", "sink", "Records re-sent after a producer failure."
    ),
    "vis_sink_records_pending": _spec("gauge", "sink", "Records queued and not yet acknowledged."),
    "vis_sink_bytes_sent_total": _spec("counter", "sink", "Value bytes acknowledged."),
    "vis_sink_blocked_seconds_total": _spec(
        "counter", "sink", "Seconds write waited on a full buffer (back-pressure)."
    ),
    "vis_sink_recoveries_total": _spec("counter", "sink", "New producers after a failure."),
    "vis_sink_track_events_total": _spec(
        "counter", "sink", "Track lifecycle events queued (Kafka tracks topic)."
    ),
    # -- worker ----------------------------------------------------------------------------
    "vis_worker_jobs_running": _spec("gauge", "", "Jobs running on this worker."),
    "vis_worker_jobs_started_total": _spec("counter", "", "Jobs taken from the jobs topic."),
    "vis_worker_jobs_finished_total": _spec(
        "counter", "outcome", "Jobs ended: done, failed, handed_over, sink_failed."
    ),
    "vis_worker_partitions_held": _spec("gauge", "", "Jobs-topic partitions assigned."),
    "vis_worker_last_checkpoint_age_seconds": _spec(
        "gauge", "", "Seconds since the last checkpoint of the running job longest without one."
    ),
    "vis_worker_info": _spec("info", "worker_id group jobs_topic", "This worker."),
    # -- process ---------------------------------------------------------------------------
    "vis_up": _spec("gauge", "check", "1 when /healthz (live) or /readyz (ready) answers 200."),
}

#: label values of ``vis_stream_frames_dropped_total{reason}`` and of the worker's outcomes
DROP_REASONS = ("buffer_full", "sink_failed")
JOB_OUTCOMES = ("done", "failed", "handed_over", "sink_failed")

#: histogram buckets (seconds): a stage call (sub-millisecond flow to seconds of Mask R-CNN)
#: and a frame's end-to-end latency (a live frame's should stay well under a second)
STAGE_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
#: a camera's latency is tens to hundreds of ms; a file's frames wait in the read-ahead queue
#: for seconds, so the bounds stay fine enough up to 20 s for its quantiles to mean something
LATENCY_BUCKETS = (
    0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 0.75, 1, 1.5, 2, 3, 4, 5, 7.5, 10, 15, 20, 30, 60,
)  # fmt: skip

#: the ``sink`` label of each sink class
SINK_LABELS = {
    "KafkaSink": "kafka",
    "JsonlSink": "jsonl",
    "EventsJsonlSink": "events_jsonl",
    "OverlayVideoSink": "overlay",
    "ExportSink": "export",
    "MemorySink": "memory",
}
