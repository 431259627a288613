"""Workers of one Kafka consumer group: throughput with 1 vs 2 workers, takeover time.

    python -m bench.workers
    python -m bench.workers --jobs 8 --frames 60 --takeover-frames 150

Everything on loopback: the embedded tansu broker, ``vis-pipeline worker`` subprocesses
(demo model, ``detector.threads=1``, keyframe every 5 frames, ``--max-jobs 1``, results to
Kafka only), clips cut from the sample video (640x360).

1. Throughput: K workers (1, then 2) are started and have joined the group; then ``--jobs``
   clips of ``--frames`` frames are submitted; seconds from the submission until
   ``vis-pipeline jobs`` reports every job done. fps = frames / seconds.
2. Takeover: 2 workers, 1 clip of ``--takeover-frames`` frames. Right after the worker
   running the job writes its checkpoint after frame 29, it is killed (SIGKILL), or stopped
   (SIGTERM); measured until the idle worker is assigned the partition (the group noticed)
   and until it resumes the job from the checkpoint (its state read back from Kafka).
3. Checkpoint records: sizes of the values in the checkpoints topic.

The 2 cores are shared with other work; the numbers are one run's, the ratios the point.
Writes bench/results/workers.{json,md}.
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import signal
import tempfile
import time
import uuid
from pathlib import Path

from bench.common import setup_logging, write_report
from devtools.broker import EmbeddedBroker
from devtools.workers import WorkerProcess, worker_overrides, write_clips
from vis_pipeline.worker.jobs import make_jobs, submit
from vis_pipeline.worker.kafka_io import JobsKafka
from vis_pipeline.worker.status import job_rows

log = logging.getLogger("bench.workers")
ASSIGNED = r"assigned partitions \[\d"


def _args(broker: EmbeddedBroker, jobs_topic: str) -> list[str]:
    sets = worker_overrides(broker.bootstrap_servers, f"{jobs_topic}.frames")
    return [
        "--bootstrap",
        broker.bootstrap_servers,
        "--jobs-topic",
        jobs_topic,
        "--group",
        f"{jobs_topic}-workers",  # a group per study: members of the last one may linger
        "-c",
        "configs/demo.yaml",
        "--log-level",
        "INFO",
        *[x for s in sets for x in ("--set", s)],
    ]


def _start(n: int, args: list[str]) -> list[WorkerProcess]:
    workers = [WorkerProcess(f"w{i}", args) for i in range(n)]
    for w in workers:
        if w.wait_for(ASSIGNED, 120) is None:
            for x in workers:
                x.stop()
            raise RuntimeError(f"{w.name} did not join: {w.lines[-5:]}")
    time.sleep(1.0)
    return workers


def _wait_done(kafka: JobsKafka, n: int, timeout_s: float = 900) -> list[dict]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        rows = job_rows(kafka)
        if len(rows) == n and all(r["state"] in ("done", "failed") for r in rows):
            return rows
        time.sleep(0.5)
    raise TimeoutError("jobs not done")


def throughput(broker: EmbeddedBroker, clips: list[Path], frames: int, n_workers: int) -> dict:
    topic = f"jobs{n_workers}-{uuid.uuid4().hex[:6]}"
    kafka = JobsKafka(broker.bootstrap_servers, topic)
    kafka.ensure_topics(6)
    workers = _start(n_workers, _args(broker, topic))
    load_before = round(os.getloadavg()[0], 2)
    try:
        jobs = make_jobs([str(c) for c in clips])
        started = time.time()
        parts = submit(kafka, jobs, partitions=6)
        rows = _wait_done(kafka, len(jobs))
        seconds = time.time() - started
    finally:
        for w in workers:
            w.stop()
    per_worker = {w.name: sum(e[2] == "done" for e in w.events()) for w in workers}
    row = {
        "workers": n_workers,
        "loadavg_1min_before": load_before,
        "jobs": len(jobs),
        "frames": len(jobs) * frames,
        "seconds": round(seconds, 2),
        "fps": round(len(jobs) * frames / seconds, 2),
        "jobs_per_worker": per_worker,
        "partitions_used": sorted(set(parts)),
        "all_done": all(r["state"] == "done" for r in rows),
    }
    log.info("%s", row)
    return row


def takeover(broker: EmbeddedBroker, clips: list[Path], how: signal.Signals) -> dict:
    topic = f"jobs-takeover-{uuid.uuid4().hex[:6]}"
    kafka = JobsKafka(broker.bootstrap_servers, topic)
    kafka.ensure_topics(6)
    workers = _start(2, _args(broker, topic))
    try:
        submit(kafka, make_jobs([str(c) for c in clips]), partitions=6)
        victim, job = None, None
        deadline = time.monotonic() + 300
        while victim is None and time.monotonic() < deadline:
            for w in workers:
                m = w.wait_for(r"job (\w+): \S+ checkpoint after frame 29$", 0.05)
                if m:
                    w.signal(how)
                    t_stop = time.time()
                    victim, job = w, m[1]
                    break
        if victim is None:
            raise RuntimeError("no checkpoint after frame 29 seen")
        other = next(w for w in workers if w is not victim)
        _wait_done(kafka, len(clips))
        t_assigned = other.first_after(ASSIGNED, t_stop)
        t_resumed = other.first_after(rf"job {job}: \S+ resumes after frame", t_stop)
    finally:
        for w in workers:
            w.stop()
    row = {
        "stop": how.name,
        "to_rebalanced_s": round(t_assigned - t_stop, 2) if t_assigned else None,
        "to_resumed_s": round(t_resumed - t_stop, 2) if t_resumed else None,
    }
    log.info("%s", row)
    return row


def checkpoint_sizes(broker: EmbeddedBroker) -> dict:
    """Sizes of every checkpoint value written in this run (all topics ``*.checkpoints``)."""
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=broker.bootstrap_servers)
    import zstandard

    sizes, wire = [], []
    for topic in consumer.topics():
        if not topic.endswith(".checkpoints"):
            continue
        tps = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or []]
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        idle = time.monotonic()
        while time.monotonic() - idle < 2.0:
            for batch in consumer.poll(timeout_ms=200).values():
                idle = time.monotonic()
                values = [m.value for m in batch if m.value and len(m.value) > 400]
                sizes += [len(v) for v in values]
                wire += [len(zstandard.ZstdCompressor().compress(v)) for v in values]
    consumer.close()
    sizes.sort()
    wire.sort()
    return {
        "records": len(sizes),
        "median_kb": round(sizes[len(sizes) // 2] / 1024, 1) if sizes else None,
        "max_kb": round(sizes[-1] / 1024, 1) if sizes else None,
        "median_zstd_kb": round(wire[len(wire) // 2] / 1024, 1) if wire else None,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--jobs", type=int, default=12, help="a multiple of 6 balances 2 workers")
    p.add_argument("--frames", type=int, default=40)
    p.add_argument("--takeover-frames", type=int, default=150)
    p.add_argument("--repeats", type=int, default=2, help="1- and 2-worker runs, alternating")
    args = p.parse_args(argv)
    setup_logging()
    logging.getLogger("kafka").setLevel(logging.CRITICAL)
    tmp = Path(tempfile.mkdtemp(prefix="bench-workers-"))
    clips = write_clips(tmp / "clips", args.jobs, args.frames, start_step=9)
    long_clips = write_clips(tmp / "long", 1, args.takeover_frames)  # one job, one idle worker
    with EmbeddedBroker() as broker:
        rows = [
            throughput(broker, clips, args.frames, n) for _ in range(args.repeats) for n in (1, 2)
        ]
        moves = [takeover(broker, long_clips, s) for s in (signal.SIGKILL, signal.SIGTERM)]
        sizes = checkpoint_sizes(broker)
    median = {
        n: round(statistics.median(r["fps"] for r in rows if r["workers"] == n), 2) for n in (1, 2)
    }
    speedup = round(median[2] / median[1], 2)
    md = [
        "| run | workers | jobs | frames | seconds | fps | jobs per worker | load avg before |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for i, r in enumerate(rows):
        md.append(
            f"| {i + 1} | {r['workers']} | {r['jobs']} | {r['frames']} | {r['seconds']} | "
            f"{r['fps']} | {r['jobs_per_worker']} | {r['loadavg_1min_before']} |"
        )
    md.append(f"\nMedian fps: 1 worker {median[1]}, 2 workers {median[2]}: **{speedup}x**.")
    md += [
        "",
        "| worker stopped by | until the other worker has its partition (s) "
        "| until it resumes the job (s) |",
        "|---|---|---|",
    ]
    md += [f"| {m['stop']} | {m['to_rebalanced_s']} | {m['to_resumed_s']} |" for m in moves]
    md += [
        "",
        f"Checkpoint records: {sizes['records']}, median {sizes['median_kb']} KB, "
        f"max {sizes['max_kb']} KB (npz); median {sizes['median_zstd_kb']} KB with zstd "
        "(as the producer sends them).",
    ]
    write_report(
        "workers",
        {
            "args": vars(args),
            "throughput": rows,
            "speedup": speedup,
            "takeover": moves,
            "checkpoints": sizes,
        },
        "\n".join(md),
    )
    print("\n".join(md))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
