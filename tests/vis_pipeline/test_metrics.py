"""Metrics, health and JSON logs, scraped over HTTP on loopback from real runs.

The slow tests run the synthetic demo (its config and sample video) with a ``Telemetry`` of
their own, scrape ``/metrics`` with an HTTP client while the run works and once it is over,
parse the exposition with prometheus_client's own parser and hold the counters against the
run's own summary. Kafka readiness runs against the real embedded broker, killed mid-run
and restarted; camera readiness against an MJPEG camera on loopback that goes off the
network and comes back; worker metrics and JSON logs from a ``vis-pipeline worker`` process.
"""

from __future__ import annotations

import io
import json
import logging
import os
import socket
import struct
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client.parser import text_string_to_metric_families

from devtools.broker import EmbeddedBroker, free_port
from devtools.workers import ROOT, WorkerProcess, worker_overrides, write_clips
from tests.mutations import PROPERTY_SETTINGS
from vis_pipeline import load_config, run
from vis_pipeline.cli import main
from vis_pipeline.config import MetricsConfig
from vis_pipeline.logs import JOB_ID, STREAM_ID, JsonFormatter
from vis_pipeline.metrics import METRICS
from vis_pipeline.summary import RunSummary
from vis_pipeline.telemetry import Telemetry

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(port: int) -> Samples:
    """Every sample of ``/metrics``, keyed by (sample name, sorted labels)."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as resp:
        text = resp.read().decode()
    out: Samples = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples[(name, tuple(sorted(labels.items())))]


def probe(port: int, path: str) -> tuple[int, dict]:
    """(HTTP status, JSON body) of ``/healthz`` or ``/readyz``."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def wait_until(check: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    raise AssertionError(f"not within {timeout_s:g} s: {what}")


def start_run(cfg, telemetry: Telemetry, **kwargs) -> tuple[threading.Thread, dict]:
    box: dict = {}

    def target() -> None:
        try:
            box["summary"] = run(cfg, progress=False, telemetry=telemetry, **kwargs)
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            box["error"] = exc

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    return thread, box


def finished(thread: threading.Thread, box: dict, timeout_s: float = 180) -> RunSummary:
    thread.join(timeout_s)
    assert not thread.is_alive(), "the run did not end"
    if "error" in box:
        raise box["error"]
    return box["summary"]


def loopback(**kwargs) -> Telemetry:
    telemetry = Telemetry(MetricsConfig(port=free_port(), host="127.0.0.1", **kwargs))
    telemetry.start()
    return telemetry


# -- names, config, logs ---------------------------------------------------------------------
def test_metric_names_follow_prometheus_conventions():
    for name, spec in METRICS.items():
        assert name.startswith("vis_") and name == name.lower(), name
        assert (spec.kind == "counter") == name.endswith("_total"), name
        if spec.kind == "histogram":
            assert name.endswith("_seconds"), name
        if spec.kind == "info":
            assert name.endswith("_info"), name
        assert not {"track", "track_id", "job", "job_id", "source", "uri"} & set(spec.labels)
        assert spec.help


def test_every_metric_is_documented_in_operations_md():
    doc = (ROOT / "docs" / "operations.md").read_text()
    missing = [name for name in METRICS if f"| `{name}` |" not in doc]
    assert not missing, f"metrics missing from docs/operations.md: {missing}"


@pytest.mark.parametrize(
    "argv",
    [
        ["--metrics-port", "70000"],
        ["--set", "metrics.port=abc"],
        ["--set", "metrics.stall_s=-1"],
        ["--set", "metrics.sink_stall_s=.nan"],
        ["--set", "metrics.bogus=1"],
        ["worker", "--metrics-port", "-1"],
    ],
)
def test_bad_metrics_settings_are_one_line_errors_exit_2(argv, capsys, tmp_path):
    cmd = ["worker", "-c", "configs/demo.yaml", *argv[1:]] if argv[0] == "worker" else argv
    if argv[0] != "worker":
        cmd = ["-c", "configs/demo.yaml", "-o", str(tmp_path), *argv]
    assert main(cmd) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error:") and "metrics." in err[0], err


def test_a_port_in_use_is_a_one_line_error_exit_2(capsys, tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        argv = ["-c", "configs/demo.yaml", "-o", str(tmp_path), "--metrics-port", str(port)]
        code = main([*argv, "--set", "metrics.host=127.0.0.1"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1 and f"metrics.port={port}: cannot listen" in err[0], err


def test_json_log_lines_carry_the_stream_and_job_ids():
    """Ids from the context variables reach the threads a job starts (copied context), and a
    record's own ``extra`` wins."""
    buf = io.StringIO()
    handler = logging.StreamHandler(buf)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("tests.json_logs")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False

    def reader() -> None:
        STREAM_ID.set("cam1")
        logger.warning("stream %s stalled", "cam1", extra={"event": "stalled"})

    def job() -> None:
        import contextvars

        JOB_ID.set("j42")
        logger.info("job started")
        t = threading.Thread(target=contextvars.copy_context().run, args=(reader,))
        t.start()
        t.join()

    try:
        t = threading.Thread(target=job)
        t.start()
        t.join()
        logger.info("no ids", extra={"stream_id": "cam2"})
        try:
            raise ValueError("boom")
        except ValueError:
            logger.exception("failed")
    finally:
        logger.removeHandler(handler)
    lines = [json.loads(line) for line in buf.getvalue().splitlines()]
    assert [set(d) >= {"time", "level", "logger", "message"} for d in lines] == [True] * 4
    assert lines[0]["job_id"] == "j42" and "stream_id" not in lines[0]
    assert lines[1] | {"time": ""} == {
        "time": "",
        "level": "WARNING",
        "logger": "tests.json_logs",
        "message": "stream cam1 stalled",
        "stream_id": "cam1",
        "job_id": "j42",
        "event": "stalled",
    }
    assert lines[2]["stream_id"] == "cam2" and "job_id" not in lines[2]
    assert "ValueError: boom" in lines[3]["exception"]
    assert lines[0]["time"].endswith("Z")


# -- real runs -------------------------------------------------------------------------------
@pytest.mark.slow
def test_scrape_during_a_run_then_counters_equal_the_summary(tmp_path):
    line = "analytics.lines=[{name: mid, points: [[320, 1], [320, 359]]}]"  # a 640x360 video
    cfg = load_config("configs/demo.yaml", ["detector.threads=1", line], output=str(tmp_path))
    with loopback() as telemetry:
        port = telemetry.config.port
        assert probe(port, "/readyz")[0] == 503  # a single run: not ready before it starts
        thread, box = start_run(cfg, telemetry)
        frames = "vis_stream_frames_processed_total"
        wait_until(
            lambda: scrape(port).get((frames, (("stream", "sample"),)), 0) >= 20,
            120,
            "frames counted during the run",
        )
        during = scrape(port)
        live, ready = probe(port, "/healthz"), probe(port, "/readyz")
        assert live[0] == 200 and live[1]["status"] == "ok", live
        assert ready[0] == 200 and ready[1]["streams"] == ["sample"], ready
        assert value(during, "vis_up", check="ready") == 1.0
        summary = finished(thread, box)
        after = scrape(port)
        code, body = probe(port, "/readyz")
    assert summary.exit_code == 0
    s = summary.streams[0]
    assert 20 <= value(during, frames, stream="sample") < s["frames"]  # scraped mid-run
    assert value(after, frames, stream="sample") == s["frames"] == 150
    assert value(after, "vis_stream_frames_written_total", stream="sample") == s["written_frames"]
    assert value(after, "vis_stream_keyframes_total", stream="sample") == s["keyframes"]
    assert value(after, "vis_stream_tracks_started_total", stream="sample") == s["tracks"]
    assert value(after, "vis_stream_corrupt_frames_total", stream="sample") == 0
    for reason in ("buffer_full", "sink_failed"):
        dropped = value(after, "vis_stream_frames_dropped_total", stream="sample", reason=reason)
        assert dropped == 0
    assert value(after, "vis_detector_calls_total") == summary.detector_calls
    assert value(after, "vis_detector_frames_total") == s["keyframes"]
    assert value(after, "vis_detector_seconds_total") == pytest.approx(
        s["stage_seconds"]["detect"], abs=1e-3
    )
    sent = value(after, "vis_sink_records_sent_total", sink="jsonl")
    assert sent == summary.sink_stats["JsonlSink"]["lines"] == 150
    # histograms: one latency per result, one detect stage time per keyframe
    assert value(after, "vis_stream_latency_seconds_count", stream="sample") == 150
    assert value(after, "vis_stream_latency_seconds_bucket", stream="sample", le="+Inf") == 150
    detect = value(after, "vis_stream_stage_seconds_count", stream="sample", stage="detect")
    assert detect == s["keyframes"]
    events = [json.loads(x) for x in (tmp_path / "sample.events.jsonl").read_text().splitlines()]
    kinds = {e["event"] for e in events}
    assert kinds == {"line_cross"}  # the objects cross the middle of the frame
    for kind in kinds:
        n = sum(e["event"] == kind for e in events)
        assert value(after, "vis_events_delivered_total", stream="sample", type=kind) == n
    assert value(after, "vis_sink_records_sent_total", sink="events_jsonl") == len(events)
    info = [k for k in after if k[0] == "vis_detector_info"]
    assert len(info) == 1 and dict(info[0][1])["engine"] == summary.detector["engine"]
    assert value(during, "vis_stream_connected", stream="sample") == 1.0
    assert ("vis_stream_connected", (("stream", "sample"),)) not in after  # gauges: while it runs
    assert code == 503 and body["reasons"] == ["no run in progress (starting or finished)"]


@pytest.mark.slow
def test_broker_killed_mid_run_flips_readyz_and_its_restart_flips_it_back(tmp_path):
    """A live camera feeds the run, so that it lasts as long as the test needs."""
    from tests.streams.test_live import SAMPLE_VIDEO, MjpegCamera, jpeg_frames

    camera = MjpegCamera(jpeg_frames(SAMPLE_VIDEO))
    camera.start()
    stop = threading.Event()
    with EmbeddedBroker() as broker:
        kafka = {
            "bootstrap_servers": broker.bootstrap_servers,
            "topic": "vis.frames.readyz",
            "tracks_topic": None,
            "linger_ms": 0,
            "delivery_timeout_s": 120,
            "block_timeout_s": 120,
        }
        sets = ["detector.threads=1", "live.report_every_s=0", "sinks.overlay=false"]
        cfg = load_config(
            "configs/demo.yaml",
            [*sets, f"sinks.kafka={json.dumps(kafka)}"],
            sources=[camera.url],
            output=str(tmp_path),
        )
        with loopback(sink_stall_s=1.0) as telemetry:
            port = telemetry.config.port
            thread, box = start_run(cfg, telemetry, stop=stop)
            sent = ("vis_sink_records_sent_total", (("sink", "kafka"),))
            wait_until(lambda: scrape(port).get(sent, 0) >= 10, 120, "records acknowledged")
            assert probe(port, "/readyz")[0] == 200
            broker.stop()  # SIGKILL: the broker crashes
            wait_until(lambda: probe(port, "/readyz")[0] == 503, 30, "/readyz 503")
            code, body = probe(port, "/readyz")
            assert any("KafkaSink" in r and "unacknowledged" in r for r in body["reasons"]), body
            assert probe(port, "/healthz")[0] == 200  # the process is fine: no restart
            down = scrape(port)
            assert value(down, "vis_sink_records_pending", sink="kafka") > 0
            names = {name for name, _ in down}
            run_metrics = [n for n in METRICS if not n.startswith(("vis_worker_", "vis_events_"))]
            absent = [n for n in run_metrics if not any(s.startswith(n) for s in names)]
            assert not absent, absent  # every metric of a run with Kafka is exported
            assert value(down, "vis_up", check="ready") == 0.0
            broker.start()
            wait_until(lambda: probe(port, "/readyz")[0] == 200, 60, "/readyz 200 again")
            stop.set()
            summary = finished(thread, box)
            after = scrape(port)
    camera.kill()
    assert summary.exit_code == 0, summary.error
    stats = summary.sink_stats["KafkaSink"]
    assert value(after, "vis_sink_records_sent_total", sink="kafka") == stats["sent"]
    assert value(after, "vis_sink_records_retried_total", sink="kafka") == stats["retried"] > 0
    assert value(after, "vis_sink_records_failed_total", sink="kafka") == stats["failed"]
    assert value(after, "vis_sink_bytes_sent_total", sink="kafka") == stats["bytes"]
    assert value(after, "vis_sink_recoveries_total", sink="kafka") == stats["recoveries"] >= 1
    sid = summary.streams[0]["stream_id"]
    written = summary.streams[0]["written_frames"]
    assert value(after, "vis_stream_frames_written_total", stream=sid) == written > 20


@pytest.mark.slow
def test_camera_down_past_its_reconnect_budget_flips_readyz_and_back(tmp_path):
    from tests.streams.test_live import SAMPLE_VIDEO, MjpegCamera, jpeg_frames

    camera = MjpegCamera(jpeg_frames(SAMPLE_VIDEO))
    camera.start()
    cfg = load_config(
        "configs/demo.yaml",
        [
            "detector.threads=1",
            "live.read_timeout_s=1",
            "live.connect_timeout_s=2",
            "live.backoff_initial_s=0.2",
            "live.backoff_max_s=0.5",
            "live.report_every_s=0",
            "sinks.jsonl=false",
            "sinks.overlay=false",
        ],
        sources=[camera.url],
        output=str(tmp_path),
    )
    stop = threading.Event()
    with loopback() as telemetry:
        port = telemetry.config.port
        thread, box = start_run(cfg, telemetry, stop=stop)
        try:
            wait_until(lambda: probe(port, "/readyz")[0] == 200, 60, "camera ready")
            camera.kill()
            wait_until(lambda: probe(port, "/readyz")[0] == 503, 30, "/readyz 503")
            t_down = time.monotonic()
            body = probe(port, "/readyz")[1]
            (reason,) = body["reasons"]
            assert "no frame for" in reason and "reconnect budget 3 s" in reason, reason
            down = scrape(port)
            sid = body["streams"][0]
            assert value(down, "vis_stream_connected", stream=sid) == 0.0
            camera.start()
            wait_until(lambda: probe(port, "/readyz")[0] == 200, 30, "/readyz 200 again")
            assert time.monotonic() - t_down < 30
            back = scrape(port)
        finally:
            stop.set()
            camera.kill()
        summary = finished(thread, box)
    s = summary.streams[0]
    assert value(back, "vis_stream_connected", stream=sid) == 1.0
    assert 1 <= value(back, "vis_stream_reconnects_total", stream=sid) <= s["reconnects"]
    assert value(back, "vis_stream_stalls_total", stream=sid) >= 1


@pytest.mark.slow
def test_worker_metrics_show_a_job_moving_and_its_logs_are_json(tmp_path):
    (clip,) = write_clips(tmp_path / "clips", 1, 40)
    with EmbeddedBroker() as broker:
        jobs_topic, port = f"jobs-{uuid.uuid4().hex[:6]}", free_port()
        sets = worker_overrides(broker.bootstrap_servers, "frames")
        args = ["--bootstrap", broker.bootstrap_servers, "--jobs-topic", jobs_topic]
        args += ["-c", "configs/demo.yaml", "--max-poll-interval-ms", "5000"]
        args += ["--log-level", "INFO", "--log-format", "json", "--metrics-port", str(port)]
        args += [x for s in [*sets, "metrics.host=127.0.0.1"] for x in ("--set", s)]
        worker = WorkerProcess("w0", args)
        try:
            wait_until(lambda: _scrapes(port), 60, "the worker's /metrics")
            first = scrape(port)
            assert value(first, "vis_worker_jobs_started_total") == 0
            assert value(first, "vis_worker_jobs_running") == 0
            assert probe(port, "/readyz")[0] == 200  # an idle worker is ready
            submit = ["submit", "--bootstrap", broker.bootstrap_servers, "--jobs-topic"]
            assert main([*submit, jobs_topic, str(clip)]) == 0
            seen_running: list[Samples] = []

            def done() -> bool:
                now = scrape(port)
                if value(now, "vis_worker_jobs_running") == 1:
                    seen_running.append(now)
                return now.get(("vis_worker_jobs_finished_total", (("outcome", "done"),))) == 1

            wait_until(done, 120, "the job done")
            after = scrape(port)
            code = worker.stop()
        finally:
            worker.stop()
    assert code == 0
    assert seen_running, "the job was never seen running"
    assert value(seen_running[0], "vis_worker_partitions_held") >= 1
    assert value(after, "vis_worker_jobs_started_total") == 1
    assert value(after, "vis_worker_jobs_running") == 0
    assert value(after, "vis_worker_last_checkpoint_age_seconds") == 0
    for outcome in ("failed", "handed_over", "sink_failed"):
        assert value(after, "vis_worker_jobs_finished_total", outcome=outcome) == 0
    assert value(after, "vis_stream_frames_processed_total", stream="clip0") == 40
    assert value(after, "vis_sink_records_sent_total", sink="kafka") >= 40
    info = dict(next(k for k in after if k[0] == "vis_worker_info")[1])
    assert info["worker_id"] == "w0" and info["jobs_topic"] == jobs_topic
    records = [json.loads(line) for line in worker.lines]  # every stderr line is JSON
    ended = [r for r in records if r.get("event") == "job_done"]
    assert len(ended) == 1 and ended[0]["stream_id"] == "clip0" and ended[0]["job_id"]
    checkpoints = [r for r in records if "checkpoint after frame" in r["message"]]
    assert checkpoints and {r["job_id"] for r in checkpoints} == {ended[0]["job_id"]}


def _scrapes(port: int) -> bool:
    try:
        return ("vis_worker_jobs_running", ()) in scrape(port)
    except OSError:
        return False


@pytest.mark.slow
def test_run_cli_serves_metrics_and_writes_json_logs(tmp_path):
    (clip,) = write_clips(tmp_path / "clips", 1, 30)
    port = free_port()
    proc = subprocess.run(
        [
            sys.executable,
            "run_pipeline.py",
            "-c",
            "configs/demo.yaml",
            "-s",
            str(clip),
            "-o",
            str(tmp_path / "out"),
            "--no-progress",
            "--log-level",
            "INFO",
            "--log-format",
            "json",
            "--metrics-port",
            str(port),
            "--set",
            "metrics.host=127.0.0.1",
            "--set",
            "live.report_every_s=0.2",
            "--set",
            "detector.threads=1",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)},
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    records = [json.loads(line) for line in proc.stderr.splitlines()]
    status = [r for r in records if r["logger"] == "vis.status"]
    assert status and all(r["stream_id"] == "clip0" and r["event"] == "status" for r in status)
    assert any("metrics on http://127.0.0.1:" in r["message"] for r in records)
    assert Path(tmp_path / "out" / "clip0.jsonl").exists()


def test_a_client_that_sends_nothing_is_dropped_and_others_are_still_served(monkeypatch):
    """A connection that never sends its request does not hold its thread past the handler's
    timeout, and the endpoint keeps answering others meanwhile; a method other than GET is
    refused."""
    from vis_pipeline import telemetry as module

    assert module._Handler.timeout is not None and module._Handler.timeout <= 30  # shipped
    monkeypatch.setattr(module._Handler, "timeout", 0.5)
    telemetry = loopback()
    try:
        port = telemetry.config.port
        idle = socket.create_connection(("127.0.0.1", port), timeout=5)
        assert any(name == "vis_up" for name, _ in scrape(port))  # served meanwhile
        idle.settimeout(5)
        assert idle.recv(1) == b""  # closed by the server, not by the client's timeout
        idle.close()
        req = urllib.request.Request(f"http://127.0.0.1:{port}/metrics", data=b"x", method="POST")
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(req, timeout=5)
        assert err.value.code == 501
    finally:
        telemetry.close()


# -- hostile clients ------------------------------------------------------------------------------
def _quiet_threads(baseline: int) -> None:
    """Wait until the endpoint's connection threads have ended."""
    deadline = time.monotonic() + 10
    while threading.active_count() > baseline:
        assert time.monotonic() < deadline, "connection threads still running after 10 s"
        time.sleep(0.005)


def _closed_by_server(sock: socket.socket) -> bool:
    """The server closed ``sock`` (an end of stream or a reset) within 5 s."""
    sock.settimeout(5)
    try:
        while sock.recv(65536):
            pass
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False
    return True


REQUESTS = st.sampled_from(
    [
        b"",
        b"GET /metrics HTTP/1.0\r\n\r\n",
        b"GET /healthz HTTP/1.0\r\n\r\n",
        b"POST / HTTP/1.0\r\n",
    ]
)


def test_any_bytes_from_a_client_that_vanishes_leave_no_traceback_and_the_endpoint_serves():
    """Whatever a client sends, and whether it closes or resets the connection before the
    answer, the process writes no traceback (stderr, or an error in its log) and the endpoint
    goes on answering."""
    telemetry = loopback()
    port = telemetry.config.port
    stderr, sys.stderr = sys.stderr, io.StringIO()
    errors: list[logging.LogRecord] = []
    handler = logging.Handler(logging.WARNING)
    handler.emit = errors.append  # type: ignore[method-assign]
    logging.getLogger("vis_pipeline").addHandler(handler)

    @settings(PROPERTY_SETTINGS, max_examples=80)  # each example is a connection on loopback
    @given(REQUESTS, st.binary(max_size=2048), st.booleans())
    def check(request_line: bytes, junk: bytes, reset: bool) -> None:
        baseline = threading.active_count()
        sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        if reset:  # an RST, not a FIN: the answer's send fails
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        try:
            sock.sendall(request_line + junk)
        except OSError:
            pass
        sock.close()
        _quiet_threads(baseline)
        assert probe(port, "/healthz")[0] == 200
        written = sys.stderr.getvalue()
        assert "Traceback" not in written and not errors, written or errors[0].getMessage()

    try:
        check()
    finally:
        sys.stderr = stderr
        logging.getLogger("vis_pipeline").removeHandler(handler)
        telemetry.close()


def test_connections_past_the_limit_are_closed_at_once_without_a_thread(monkeypatch):
    """Idle connections hold at most ``MAX_CONNECTIONS`` threads; more are closed as soon as
    they are accepted, and once the idle ones go the endpoint answers again."""
    from vis_pipeline import telemetry as module

    monkeypatch.setattr(module._Handler, "timeout", 30)  # idle ones stay while we look
    telemetry = loopback()
    try:
        port = telemetry.config.port
        baseline = threading.active_count()
        idle = [
            socket.create_connection(("127.0.0.1", port)) for _ in range(module.MAX_CONNECTIONS)
        ]
        wait_until(
            lambda: threading.active_count() == baseline + module.MAX_CONNECTIONS,
            10,
            "a thread per idle connection",
        )
        extra = [socket.create_connection(("127.0.0.1", port)) for _ in range(8)]
        assert all(_closed_by_server(s) for s in extra)
        assert threading.active_count() == baseline + module.MAX_CONNECTIONS
        for s in idle + extra:
            s.close()
        _quiet_threads(baseline)
        assert probe(port, "/healthz")[0] == 200
    finally:
        telemetry.close()


def test_a_request_trickling_in_a_byte_at_a_time_is_cut_at_the_timeout(monkeypatch):
    """The handler's timeout bounds the whole request, not each byte of it: a client sending
    one byte at a time (each well within the timeout) is closed once it is spent."""
    from vis_pipeline import telemetry as module

    monkeypatch.setattr(module._Handler, "timeout", 1.0)
    telemetry = loopback()
    try:
        sock = socket.create_connection(("127.0.0.1", telemetry.config.port), timeout=5)
        request = b"GET /healthz HTTP/1.0\r\nX-Slow: " + b"a" * 40 + b"\r\n\r\n"
        sent = 0
        try:
            for byte in request:  # 0.25 s apart: 15 s in all, each byte within the timeout
                sock.send(bytes([byte]))
                sent += 1
                time.sleep(0.25)
                sock.setblocking(False)
                try:
                    if sock.recv(1) == b"":
                        break  # closed by the server
                except BlockingIOError:
                    pass
                finally:
                    sock.setblocking(True)
        except OSError:
            pass
        assert sent < len(request), "the whole request trickled in"
        sock.close()
    finally:
        telemetry.close()
