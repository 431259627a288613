"""``vis-pipeline submit | worker | jobs``: the workers of one Kafka consumer group.

    vis-pipeline submit --jobs-topic vis.jobs -c configs/batch.yaml videos/*.mp4 rtsp://cam1/s
    vis-pipeline worker --jobs-topic vis.jobs --group vis-workers -c configs/batch.yaml
    vis-pipeline jobs --jobs-topic vis.jobs -c configs/batch.yaml

The broker and its security come from ``sinks.kafka`` of the config (``--bootstrap``
overrides the servers). Exit codes: 0 ok (a worker stopped by SIGTERM/SIGINT included),
2 bad arguments or config, 3 Kafka unreachable or a sink could not deliver.
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

from vis.config import ConfigError, from_mapping
from vis_pipeline.cli_common import (
    add_service_options,
    quiet_decoder_logs,
    service_overrides,
    setup_logging,
)
from vis_pipeline.config import load_config
from vis_pipeline.summary import EXIT_INPUT, EXIT_OK, EXIT_SINK

if TYPE_CHECKING:
    from vis_pipeline.telemetry import Telemetry
    from vis_pipeline.worker.kafka_io import JobsKafka
    from vis_pipeline.worker.loop import WorkerSettings

COMMANDS = ("submit", "worker", "jobs")
log = logging.getLogger(__name__)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="vis-pipeline", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--jobs-topic", default="vis.jobs", help="the jobs topic (vis.jobs)")
    common.add_argument("--config", "-c", help="YAML config; sinks.kafka gives broker + security")
    common.add_argument("--bootstrap", help="host:port[,host:port] (overrides the config's)")
    common.add_argument("--log-level", default="WARNING", help="DEBUG, INFO, WARNING, ERROR")
    common.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="config override (submit: carried by the jobs; worker: applied to every job)",
    )
    s = sub.add_parser("submit", parents=[common], help="write one job record per source")
    s.add_argument("sources", nargs="+", metavar="SOURCE", help="video file, folder or URI")
    s.add_argument("--stream-id", action="append", help="stream id per source (repeat)")
    s.add_argument("--partitions", type=int, default=6, help="for a new jobs topic (6)")
    s.add_argument("--replication", type=int, default=1, help="for new topics (1)")
    w = sub.add_parser("worker", parents=[common], help="process jobs as a group member")
    w.add_argument("--group", default="vis-workers", help="consumer group (vis-workers)")
    w.add_argument("--worker-id", help="name in status lines (default host-pid)")
    w.add_argument("--max-jobs", type=int, default=1, help="jobs at the same time (1)")
    w.add_argument("--max-poll-interval-ms", type=int, default=10000, help="(10000)")
    w.add_argument("--status-every", type=float, default=10.0, help="seconds (10)")
    w.add_argument("--partitions", type=int, default=6, help="for missing topics (6)")
    add_service_options(w)
    j = sub.add_parser("jobs", parents=[common], help="list jobs and their states")
    j.add_argument("--json", action="store_true", help="one JSON object per job")
    return p


def _kafka(args: argparse.Namespace):  # noqa: ANN202 - JobsKafka, imported lazily
    from streams.kafka.config import KafkaSinkConfig
    from vis_pipeline.worker.kafka_io import JobsKafka

    cfg = load_config(args.config, args.overrides if args.command == "worker" else [])
    sink = from_mapping(KafkaSinkConfig, cfg.sinks.kafka or {}, "sinks.kafka")
    servers = args.bootstrap or sink.bootstrap_servers
    return JobsKafka(servers, args.jobs_topic, sink.security, client_id="vis-worker")


def _submit(args: argparse.Namespace) -> int:
    from vis_pipeline.worker.jobs import JobError, make_jobs, submit

    try:
        load_config(args.config, args.overrides, sources=args.sources)  # catches bad --set early
        jobs = make_jobs(args.sources, args.overrides, args.stream_id)
    except (ConfigError, JobError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_INPUT
    kafka = _kafka(args)
    parts = submit(kafka, jobs, partitions=args.partitions)
    for job, part in zip(jobs, parts):
        print(f"{job.job_id}  {job.stream_id}  partition {part}  {job.source}")
    print(f"submitted {len(jobs)} jobs to {kafka.jobs_topic} on {kafka.bootstrap_servers}")
    return EXIT_OK


def _worker(args: argparse.Namespace) -> int:
    from vis_pipeline.telemetry import Telemetry
    from vis_pipeline.worker.loop import WorkerSettings, default_worker_id

    args.overrides = [*args.overrides, *service_overrides(args)]
    try:
        cfg = load_config(args.config, args.overrides, sources=["check"])
        kafka = _kafka(args)
        settings = WorkerSettings(
            kafka,
            group=args.group,
            worker_id=args.worker_id or default_worker_id(),
            max_jobs=args.max_jobs,
            max_poll_interval_ms=args.max_poll_interval_ms,
            status_every_s=args.status_every,
        )
    except (ConfigError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_INPUT
    telemetry = Telemetry(cfg.metrics, needs_run=False) if cfg.metrics.port else None
    if telemetry is not None:
        try:
            telemetry.start()
        except ConfigError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return EXIT_INPUT
    try:
        return _work(args, kafka, settings, telemetry)
    finally:
        if telemetry is not None:
            telemetry.close()


def _work(
    args: argparse.Namespace,
    kafka: JobsKafka,
    settings: WorkerSettings,
    telemetry: Telemetry | None,
) -> int:
    """The worker's clients, its run, its summary line; returns the exit code."""
    from vis_pipeline.worker.job_run import JobContext
    from vis_pipeline.worker.loop import Worker
    from vis_pipeline.worker.status import StatusLog
    from vis_pipeline.worker.table import TopicTable

    kafka.ensure_topics(args.partitions)
    producer = kafka.producer()

    def sender(topic: str) -> Callable[[str, bytes], None]:
        def send(key: str, value: bytes) -> None:
            producer.send(topic, key=key.encode("utf-8"), value=value).get(timeout=60)

        return send

    checkpoints = TopicTable(kafka, kafka.checkpoints_topic)
    states = TopicTable(kafka, kafka.status_topic)
    context = JobContext(
        config_path=args.config,
        overrides=tuple(args.overrides),
        checkpoints=checkpoints,
        send_checkpoint=sender(kafka.checkpoints_topic),
        status=StatusLog(sender(kafka.status_topic), settings.worker_id, states),
        telemetry=telemetry,
    )
    stop = threading.Event()
    previous = {
        sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGTERM, signal.SIGINT)
    }
    worker = Worker(settings, context, stop)
    if telemetry is not None:
        telemetry.attach_worker(
            worker,
            worker_id=settings.worker_id,
            group=settings.group,
            jobs_topic=kafka.jobs_topic,
        )
    try:
        summary = worker.run()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        checkpoints.close()
        states.close()
        producer.close()
    print(summary.render(settings.worker_id))
    return summary.exit_code


def _jobs(args: argparse.Namespace) -> int:
    from vis_pipeline.worker.status import job_rows, render_rows

    rows = job_rows(_kafka(args))
    if args.json:
        for row in rows:
            print(json.dumps(row))
    else:
        print(render_rows(rows))
    return EXIT_OK


def main(argv: list[str]) -> int:
    """``vis-pipeline submit|worker|jobs ...``; returns the exit code."""
    args = build_parser().parse_args(argv)
    setup_logging(args.log_level, getattr(args, "log_format", "text"))
    quiet_decoder_logs()
    handlers = {"submit": _submit, "worker": _worker, "jobs": _jobs}
    try:
        return handlers[args.command](args)
    except ConfigError as exc:
        print(f"error: invalid config: {exc}", file=sys.stderr)
        return EXIT_INPUT
    except Exception as exc:
        from kafka.errors import KafkaError

        if isinstance(exc, (KafkaError, TimeoutError)):
            print(f"error: kafka: {exc!r}: is the broker up?", file=sys.stderr)
            return EXIT_SINK
        raise
