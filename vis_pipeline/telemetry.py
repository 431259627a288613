"""Metrics, liveness and readiness of one process (a run, a live multi-camera run, a worker).

Contract: ``Telemetry(config)`` owns a private ``CollectorRegistry`` (never the global one) and,
after ``start()``, serves it on ``metrics.host:metrics.port`` from a daemon thread:
``/metrics`` (Prometheus text format), ``/healthz`` and ``/readyz`` (JSON, 200 or 503). A run
``attach``es a ``RunProbe`` (its scheduler, writer and sinks) and ``detach``es it when it
ends; a worker ``attach_worker``s itself. Counters are read from what the code already keeps
(processor and source counters, the writer's delivered counts, each sink's ``stats()``) when
scraped, so a scrape is exact and the hot loop pays nothing for them; a detached run's
counters are folded into per-label totals so they never go back across the jobs of a worker.
Only the latency and stage histograms are observed as they happen (``StageTimer.listener``).
Every metric is named in ``vis_pipeline/metrics.py``; semantics in docs/operations.md.

* live (``/healthz``): every attached run's processing loop turned within ``metrics.stall_s``
  and the worker's poll loop too.
* ready (``/readyz``): live; a run is attached (a single run; a worker is ready when idle);
  every live camera delivered a frame within its reconnect budget (``live.read_timeout_s +
  live.connect_timeout_s``); no sink failed, the writer is not stuck on one message and no
  Kafka record has waited for its acknowledgement longer than ``metrics.sink_stall_s``.
"""

from __future__ import annotations

import dataclasses
import io
import json
import logging
import socket
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Histogram
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    InfoMetricFamily,
    Metric,
)
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4, generate_latest

from vis.config import ConfigError
from vis.detection.precision import feature_text
from vis.tracking.track import TrackState
from vis_pipeline.config import MetricsConfig
from vis_pipeline.metrics import LATENCY_BUCKETS, METRICS, SINK_LABELS, STAGE_BUCKETS

if TYPE_CHECKING:
    from streams.sinks import Sink
    from vis_pipeline.scheduler import Scheduler
    from vis_pipeline.stream_run import StreamRun
    from vis_pipeline.worker.loop import Worker
    from vis_pipeline.writer import Writer

log = logging.getLogger(__name__)

#: per-stream totals kept for streams whose runs ended (a worker's past jobs), oldest dropped
MAX_RETIRED_STREAMS = 1024
#: connections of the metrics endpoint served at once, each by a thread until it is answered;
#: more are closed as soon as they are accepted, without a thread
MAX_CONNECTIONS = 32
#: seconds a connection has to send its whole request (however slowly its bytes arrive)
REQUEST_TIMEOUT_S = 10.0

Key = tuple[str, tuple[str, ...]]  # (metric name, label values)


@dataclasses.dataclass(eq=False)  # one probe per run: compared by identity
class RunProbe:
    """What ``Telemetry`` reads of one run (the objects themselves, read when scraped).

    Attributes:
        scheduler: its active and finished streams, detector calls, loop heartbeat.
        writer: delivered / undelivered results and events per stream, its busy time.
        sinks: every sink (``stats()``, and ``health()`` where a sink has one).
        detector: ``RunSummary.detector`` (engine, requested, precision).
        cpu: ``RunSummary.cpu``.
        read_budget_s: a live stream without a frame for longer is not ready.
        name: the run in health bodies (the job id in a worker).
    """

    scheduler: Scheduler
    writer: Writer
    sinks: list[Sink]
    detector: dict[str, str]
    cpu: dict[str, Any]
    read_budget_s: float
    name: str = "run"

    def streams(self) -> list[StreamRun]:
        return [*list(self.scheduler.active), *list(self.scheduler.finished)]

    def samples(self) -> tuple[dict[Key, float], dict[Key, float]]:
        """(counters, gauges) of this run, keyed by metric name and label values."""
        counters: dict[Key, float] = {}
        gauges: dict[Key, float] = {}
        active = {id(s) for s in list(self.scheduler.active)}
        delivered = dict(self.writer.delivered)
        undelivered = dict(self.writer.undelivered)
        now_mono, now_unix = time.monotonic(), time.time()
        detect_calls, detect_s = 0, 0.0
        for stream in self.streams():
            sid = (stream.stream_id,)
            stats = stream.source.stats
            processor = stream.processor
            counters[("vis_stream_frames_processed_total", sid)] = processor.frames
            counters[("vis_stream_frames_written_total", sid)] = delivered.get(sid[0], 0)
            counters[("vis_stream_keyframes_total", sid)] = processor.keyframes
            counters[("vis_stream_frames_dropped_total", (*sid, "buffer_full"))] = stream.dropped[
                "dropped"
            ]
            counters[("vis_stream_frames_dropped_total", (*sid, "sink_failed"))] = undelivered.get(
                sid[0], 0
            )
            counters[("vis_stream_corrupt_frames_total", sid)] = stats.get("corrupt", 0)
            counters[("vis_stream_backlog_frames_skipped_total", sid)] = stats.get("backlog", 0)
            counters[("vis_stream_reconnects_total", sid)] = stats.get("reconnects", 0)
            counters[("vis_stream_stalls_total", sid)] = stats.get("stalls", 0)
            counters[("vis_stream_tracks_started_total", sid)] = processor.tracker.total_started
            is_active = id(stream) in active
            connected = is_active and getattr(stream.source, "connected", True)
            gauges[("vis_stream_connected", sid)] = float(connected)
            gauges[("vis_stream_last_frame_timestamp_seconds", sid)] = now_unix - (
                now_mono - stream.last_frame_at
            )
            tracks = list(processor.tracker.tracks)
            gauges[("vis_stream_tracks_active", sid)] = float(
                is_active and sum(t.state is TrackState.CONFIRMED for t in tracks)
            )
            detect_calls += stream.timer.calls.get("detect", 0)
            detect_s += stream.timer.seconds.get("detect", 0.0)
        for (stream_id, kind), n in list(self.writer.events.items()):
            counters[("vis_events_delivered_total", (stream_id, kind))] = n
        counters[("vis_detector_calls_total", ())] = self.scheduler.detector_calls
        counters[("vis_detector_frames_total", ())] = detect_calls
        counters[("vis_detector_seconds_total", ())] = detect_s
        for sink in self.sinks:
            label = (SINK_LABELS.get(type(sink).__name__, type(sink).__name__.lower()),)
            for name, value in sink_samples(sink.stats()).items():
                target = gauges if name == "vis_sink_records_pending" else counters
                key = (name, label)
                target[key] = target.get(key, 0.0) + value
        return counters, gauges

    def stalled(self, stall_s: float) -> dict[str, Any]:
        """The processing loop's heartbeat."""
        age = time.monotonic() - self.scheduler.beat
        return {"loop_age_s": round(age, 3), "ok": age <= stall_s}

    def not_ready(self, sink_stall_s: float) -> list[str]:
        """Why this run is not ready (empty: ready)."""
        reasons: list[str] = []
        now = time.monotonic()
        for stream in list(self.scheduler.active):
            if not stream.live:
                continue
            age = now - stream.last_frame_at
            if age > self.read_budget_s:
                reasons.append(
                    f"stream {stream.stream_id}: no frame for {age:.1f} s (reconnect budget "
                    f"{self.read_budget_s:g} s = live.read_timeout_s + live.connect_timeout_s; "
                    f"{stream.source.stats.get('reconnects', 0)} reconnects)"
                )
        if self.writer.errors:
            reasons.append(f"a sink failed: {self.writer.errors[0]}")
        busy = self.writer.busy_since
        if busy is not None and now - busy > sink_stall_s:
            reasons.append(f"the writer has waited {now - busy:.1f} s on a sink")
        for sink in self.sinks:
            health = getattr(sink, "health", None)
            if health is None:
                continue
            state = health()
            if state.get("failed"):
                reasons.append(f"sink {type(sink).__name__} failed: {state.get('last_error')}")
            elif state.get("oldest_pending_s", 0.0) > sink_stall_s:
                reasons.append(
                    f"sink {type(sink).__name__}: a record unacknowledged for "
                    f"{state['oldest_pending_s']:.1f} s"
                    + (f" (last error: {state['last_error']})" if state.get("last_error") else "")
                )
        return reasons


def sink_samples(stats: dict[str, Any]) -> dict[str, float]:
    """A sink's ``stats()`` -> ``vis_sink_*`` values (counts each sink type already keeps)."""
    sent = stats.get("sent", stats.get("lines", stats.get("events", stats.get("frames_written"))))
    pairs = {
        "vis_sink_records_sent_total": sent,
        "vis_sink_records_failed_total": stats.get("failed", 0 if sent is not None else None),
        "vis_sink_records_retried_total": stats.get("retried"),
        "vis_sink_records_pending": stats.get("pending"),
        "vis_sink_bytes_sent_total": stats.get("bytes"),
        "vis_sink_blocked_seconds_total": stats.get("blocked_s"),
        "vis_sink_recoveries_total": stats.get("recoveries"),
        "vis_sink_track_events_total": stats.get("track_events"),
    }
    return {name: float(value) for name, value in pairs.items() if value is not None}


class Telemetry:
    """A process's metrics registry, health and HTTP endpoint (see the module docstring).

    Args:
        config: ``metrics.*``.
        needs_run: a single run is ready only while a run is attached; a worker is ready idle.
    """

    def __init__(self, config: MetricsConfig, *, needs_run: bool = True) -> None:
        self.config = config
        self.needs_run = needs_run
        self.registry = CollectorRegistry(auto_describe=False)
        self._lock = threading.Lock()
        self.runs: list[RunProbe] = []
        self.worker: Worker | None = None
        self.worker_labels: dict[str, str] = {}
        self._retired: dict[Key, float] = {}
        self._retired_streams: OrderedDict[str, None] = OrderedDict()
        self._info: dict[str, str] | None = None
        self._stage_labels: dict[str, set[str]] = {}  # stream -> stages observed
        self.latency = Histogram(
            "vis_stream_latency_seconds",
            METRICS["vis_stream_latency_seconds"].help,
            ["stream"],
            registry=self.registry,
            buckets=LATENCY_BUCKETS,
        )
        self.stages = Histogram(
            "vis_stream_stage_seconds",
            METRICS["vis_stream_stage_seconds"].help,
            ["stream", "stage"],
            registry=self.registry,
            buckets=STAGE_BUCKETS,
        )
        self.registry.register(_Collector(self))
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- serving ---------------------------------------------------------------------------
    def start(self) -> int:
        """Listen on ``metrics.host:metrics.port``; returns the port.

        Raises:
            ConfigError: the port cannot be bound (in use, or a privileged port).
        """
        telemetry = self

        class Handler(_Handler):
            owner = telemetry

        try:
            server = _Server((self.config.host, self.config.port), Handler)
        except OSError as exc:
            raise ConfigError(
                f"metrics.port={self.config.port}: cannot listen on {self.config.host}:"
                f"{self.config.port} ({exc.strerror or exc}): choose a free port"
            ) from None
        server.daemon_threads = True
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, name="metrics", daemon=True)
        self._thread.start()
        port = int(server.server_address[1])
        log.info("metrics on http://%s:%d/metrics (/healthz, /readyz)", self.config.host, port)
        return port

    def close(self) -> None:
        """Stop serving (idempotent)."""
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()

    def __enter__(self) -> Telemetry:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- what is watched -------------------------------------------------------------------
    def attach(self, probe: RunProbe) -> None:
        with self._lock:
            self.runs.append(probe)
            self._info = {
                "engine": str(probe.detector.get("engine", "")),
                "precision": str(probe.detector.get("precision", "")),
                "requested": str(probe.detector.get("requested", "")),
                "cpu_model": str(probe.cpu.get("model", "unknown")),
                "cpu_features": feature_text(
                    probe.cpu.get("features", []), probe.cpu.get("isa_cap")
                ),
            }

    def detach(self, probe: RunProbe) -> None:
        """The run ended: fold its counters into the process's totals."""
        counters, _ = probe.samples()
        with self._lock:
            if probe in self.runs:
                self.runs.remove(probe)
            for key, value in counters.items():
                self._retired[key] = self._retired.get(key, 0.0) + value
                if key[0].startswith(("vis_stream_", "vis_events_")):
                    self._retired_streams[key[1][0]] = None
                    self._retired_streams.move_to_end(key[1][0])
            while len(self._retired_streams) > MAX_RETIRED_STREAMS:
                self._forget_stream(self._retired_streams.popitem(last=False)[0])

    def _forget_stream(self, stream_id: str) -> None:
        for key in [k for k in self._retired if k[1][:1] == (stream_id,)]:
            if key[0].startswith(("vis_stream_", "vis_events_")):
                del self._retired[key]
        for labels in list(self._stage_labels.get(stream_id, ())):
            self.stages.remove(stream_id, labels)
        self._stage_labels.pop(stream_id, None)
        try:
            self.latency.remove(stream_id)
        except KeyError:
            pass

    def watch_stream(self, stream: StreamRun) -> None:
        """Observe the stream's stage times and latency into the histograms."""
        sid = stream.stream_id
        children: dict[str, Any] = {}
        stages = self._stage_labels.setdefault(sid, set())
        latency = self.latency.labels(sid)

        def stage(name: str, seconds: float) -> None:
            child = children.get(name)
            if child is None:
                child = children[name] = self.stages.labels(sid, name)
                stages.add(name)
            child.observe(seconds)

        def end_to_end(_name: str, seconds: float) -> None:
            latency.observe(seconds)

        stream.timer.listener = stage
        stream.processor.timer.listener = stage
        stream.latency.listener = end_to_end

    def attach_worker(self, worker: Worker, **labels: str) -> None:
        self.worker = worker
        self.worker_labels = labels

    # -- health ----------------------------------------------------------------------------
    def liveness(self) -> tuple[bool, dict[str, Any]]:
        loops: dict[str, Any] = {}
        with self._lock:
            runs, worker = list(self.runs), self.worker
        for probe in runs:
            loops[f"{probe.name}: processing loop"] = probe.stalled(self.config.stall_s)
        if worker is not None:
            age = time.monotonic() - worker.last_poll
            loops["worker: poll loop"] = {
                "loop_age_s": round(age, 3),
                "ok": age <= self.config.stall_s,
            }
        ok = all(loop["ok"] for loop in loops.values())
        body = {"status": "ok" if ok else "stalled", "stall_s": self.config.stall_s, "loops": loops}
        return ok, body

    def readiness(self) -> tuple[bool, dict[str, Any]]:
        live, live_body = self.liveness()
        with self._lock:
            runs = list(self.runs)
        reasons: list[str] = []
        if not live:
            reasons.append(
                "not live: " + ", ".join(k for k, v in live_body["loops"].items() if not v["ok"])
            )
        if self.needs_run and not runs:
            reasons.append("no run in progress (starting or finished)")
        for probe in runs:
            reasons += [f"{probe.name}: {r}" for r in probe.not_ready(self.config.sink_stall_s)]
        ok = not reasons
        body = {
            "status": "ready" if ok else "not ready",
            "reasons": reasons,
            "runs": [probe.name for probe in runs],
            "streams": sorted(s.stream_id for p in runs for s in list(p.scheduler.active)),
        }
        return ok, body

    # -- collection ------------------------------------------------------------------------
    def families(self) -> Iterator[Metric]:
        """Every metric but the histograms, summed over the attached runs and the past ones."""
        with self._lock:
            runs = list(self.runs)
            counters = dict(self._retired)
            info = self._info
            worker = self.worker
        gauges: dict[Key, float] = {}
        for probe in runs:
            c, g = probe.samples()
            for key, value in c.items():
                counters[key] = counters.get(key, 0.0) + value
            for key, value in g.items():
                gauges[key] = gauges.get(key, 0.0) + value
        if worker is not None:
            c, g = worker_samples(worker)
            counters.update(c)
            gauges.update(g)
        live, _ = self.liveness()
        ready, _ = self.readiness()
        gauges[("vis_up", ("live",))] = float(live)
        gauges[("vis_up", ("ready",))] = float(ready)
        values = {**counters, **gauges}
        by_name: dict[str, list[tuple[tuple[str, ...], float]]] = {}
        for (name, labels), value in values.items():
            by_name.setdefault(name, []).append((labels, value))
        for name, spec in METRICS.items():
            if spec.kind == "histogram":
                continue
            if spec.kind == "info":
                labels = info if name == "vis_detector_info" else self.worker_labels
                if labels and (name != "vis_worker_info" or worker is not None):
                    family = InfoMetricFamily(name.removesuffix("_info"), spec.help)
                    family.add_metric([], labels)
                    yield family
                continue
            rows = by_name.get(name)
            if not rows:
                continue
            cls = CounterMetricFamily if spec.kind == "counter" else GaugeMetricFamily
            family = cls(name, spec.help, labels=list(spec.labels))
            for labels, value in sorted(rows):
                family.add_metric(list(labels), value)
            yield family

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


def worker_samples(worker: Worker) -> tuple[dict[Key, float], dict[Key, float]]:
    """(counters, gauges) of a worker, read from its summary and running jobs."""
    s = worker.summary
    running = list(worker.running.values())
    finished = {
        "done": s.done,
        "failed": s.failed,
        "handed_over": s.stopped,
        "sink_failed": s.sink_failed,
    }
    counters: dict[Key, float] = {
        ("vis_worker_jobs_finished_total", (k,)): float(v) for k, v in finished.items()
    }
    counters[("vis_worker_jobs_started_total", ())] = float(worker.started)
    now = time.monotonic()
    age = max((now - run.checkpoint_at for run in running), default=0.0)
    gauges: dict[Key, float] = {
        ("vis_worker_jobs_running", ()): float(len(running)),
        ("vis_worker_partitions_held", ()): float(worker.partitions_held),
        ("vis_worker_last_checkpoint_age_seconds", ()): age,
    }
    return counters, gauges


class _Collector:
    """Hands ``Telemetry.families()`` to the registry at each scrape."""

    def __init__(self, owner: Telemetry) -> None:
        self.owner = owner

    def collect(self) -> Iterator[Metric]:
        return self.owner.families()


class _Server(ThreadingHTTPServer):
    """A thread per connection, at most ``MAX_CONNECTIONS`` of them (more are closed at
    once, so a flood of connections cannot take the process's threads); a connection's
    failure (a client gone) is one debug line, never a traceback on stderr."""

    daemon_threads = True
    #: connections the kernel completes before they are accepted (a burst past the default 5
    #: would wait for the clients' SYN retries, seconds)
    request_queue_size = 64

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler]) -> None:
        super().__init__(address, handler)
        self.slots = threading.BoundedSemaphore(MAX_CONNECTIONS)

    def process_request(self, request: Any, client_address: Any) -> None:
        if not self.slots.acquire(blocking=False):
            log.debug(
                "metrics endpoint: %d connections open, %s closed", MAX_CONNECTIONS, client_address
            )
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self.slots.release()
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self.slots.release()

    def handle_error(self, request: Any, client_address: Any) -> None:
        log.debug("metrics endpoint: connection from %s failed", client_address, exc_info=True)


class _DeadlineReader(io.RawIOBase):
    """A socket's reads, every one within ``deadline`` (``time.monotonic``): a client sending
    its request a byte at a time cannot hold its connection past it."""

    def __init__(self, sock: socket.socket, deadline: float) -> None:
        self.sock = sock
        self.deadline = deadline

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("the request took too long")
        self.sock.settimeout(left)
        return self.sock.recv_into(buffer)


class _Handler(BaseHTTPRequestHandler):
    owner: Telemetry
    #: seconds a connection has to send its request, then for each send of the answer
    timeout = REQUEST_TIMEOUT_S

    def setup(self) -> None:
        super().setup()
        # the whole request within ``timeout``, not each of its bytes
        deadline = time.monotonic() + self.timeout
        self.rfile.close()
        self.rfile = io.BufferedReader(_DeadlineReader(self.connection, deadline))

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        self.connection.settimeout(self.timeout)  # the request is in: the answer's own budget
        path = self.path.split("?", 1)[0]
        try:
            if path == "/metrics":
                self._send(200, self.owner.exposition(), CONTENT_TYPE_PLAIN_0_0_4)
                return
            if path in ("/healthz", "/readyz"):
                ok, body = self.owner.liveness() if path == "/healthz" else self.owner.readiness()
                self._send(200 if ok else 503, json.dumps(body).encode(), "application/json")
                return
            self._send(404, b'{"error": "try /metrics, /healthz or /readyz"}', "application/json")
        except Exception as exc:  # noqa: BLE001 - a scrape must not kill the server thread
            log.exception("metrics endpoint %s failed", path)
            self._send(500, json.dumps({"error": repr(exc)}).encode(), "application/json")

    def _send(self, code: int, body: bytes, content_type: str) -> None:
        try:
            self.send_response(code)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        except OSError as exc:  # the client went away (closed, reset, too slow to read)
            log.debug("metrics endpoint %s: answer not sent (%s)", self.path[:80], exc)
            self.close_connection = True

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - http.server's name
        log.debug("metrics endpoint: " + format, *args)
