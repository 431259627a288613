"""``Worker``: one member of the workers' consumer group.

Contract: ``Worker(settings, context).run()`` joins ``settings.group`` on the jobs topic and
runs the jobs of its assigned partitions, at most ``max_jobs`` at a time, each on its own
thread (``JobRun``); the consumer keeps polling meanwhile (partitions paused while every slot
is busy), so the group sees the worker alive however long a job takes. A job record's offset
is committed only once the job and every job before it in its partition are finished
(``PartitionLedger``): done (results acknowledged) or failed for good; a record that is not
a valid job, whatever it holds, is skipped with one warning line and counts as finished (it
never stops the worker, which would stop every worker taking its partition). When partitions are
revoked (another worker joined or left), their jobs are stopped, each checkpointing after
its last delivered frame, before the rebalance completes, so a job never runs on two
workers at once. ``stop`` (SIGTERM/SIGINT) does the same for every job, then leaves the
group. A status line per worker is logged every ``status_every_s`` seconds and at the end.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import socket
import threading
import time
from typing import Any

from vis_pipeline.summary import EXIT_OK, EXIT_SINK
from vis_pipeline.worker.job_run import JobContext, JobRun
from vis_pipeline.worker.jobs import Job, JobError
from vis_pipeline.worker.kafka_io import JobsKafka
from vis_pipeline.worker.ledger import PartitionLedger

log = logging.getLogger(__name__)
status = logging.getLogger("vis.status")


def _one_line(text: str, limit: int = 300) -> str:
    """The first line of ``text``, cut to ``limit`` characters."""
    first = (text.splitlines() or [""])[0]
    return first if len(first) <= limit else first[: limit - 3] + "..."


def default_worker_id() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


@dataclasses.dataclass(frozen=True)
class WorkerSettings:
    """Attributes:
    kafka: the jobs topic and its companions.
    group: the consumer group all workers share.
    worker_id: this worker's name in status lines and job states.
    max_jobs: jobs run at the same time (live cameras hold a slot for as long as they run).
    max_poll_interval_ms: the group's rebalance timeout; tansu lets a member join only
        after it, so smaller joins faster; stopping the jobs of revoked partitions must fit.
    status_every_s: seconds between status lines.
    """

    kafka: JobsKafka
    group: str = "vis-workers"
    worker_id: str = dataclasses.field(default_factory=default_worker_id)
    max_jobs: int = 1
    max_poll_interval_ms: int = 10000
    status_every_s: float = 10.0

    def __post_init__(self) -> None:
        if self.max_jobs < 1:
            raise ValueError(f"max_jobs={self.max_jobs} must be >= 1")


@dataclasses.dataclass
class WorkerSummary:
    done: int = 0
    failed: int = 0
    stopped: int = 0
    sink_failed: int = 0
    frames: int = 0
    seconds: float = 0.0
    exit_code: int = EXIT_OK
    error: str | None = None

    def render(self, worker_id: str) -> str:
        return (
            f"worker {worker_id}: {self.done} jobs done, {self.failed} failed, "
            f"{self.stopped} handed over; {self.frames} frames in {self.seconds:.1f} s"
            + (f"; error: {self.error}" if self.error else "")
        )


class Worker:
    """Args:
    settings: group, slots, timings.
    context: what the jobs share (config, checkpoint store, status log).
    stop: set to shut down gracefully.
    """

    def __init__(
        self, settings: WorkerSettings, context: JobContext, stop: threading.Event
    ) -> None:
        self.settings = settings
        self.context = context
        self.stop = stop
        self.running: dict[tuple[int, int], JobRun] = {}
        self.ledgers: dict[int, PartitionLedger] = {}
        self.rewind: dict[int, int] = {}  # partition -> offset to seek to if assigned again
        self.summary = WorkerSummary()
        self.consumer: Any = None
        self.started = 0  # jobs taken
        self.partitions_held = 0
        self.last_poll = time.monotonic()  # when the loop last polled (liveness)

    # -- the loop ------------------------------------------------------------------------------
    def run(self) -> WorkerSummary:
        from kafka import ConsumerRebalanceListener

        s = self.settings
        started = time.monotonic()
        self.consumer = s.kafka.consumer(
            group_id=s.group,
            client_id=s.worker_id,
            max_poll_interval_ms=s.max_poll_interval_ms,
            session_timeout_ms=max(6000, s.max_poll_interval_ms),
            heartbeat_interval_ms=1000,
            request_timeout_ms=max(30000, s.max_poll_interval_ms + 5000),
        )
        worker = self

        class _Listener(ConsumerRebalanceListener):
            def on_partitions_revoked(self, revoked: Any) -> None:
                worker._revoke({tp.partition for tp in revoked})

            def on_partitions_assigned(self, assigned: Any) -> None:
                parts = sorted(tp.partition for tp in assigned)
                status.info("worker %s: assigned partitions %s", s.worker_id, parts)
                for tp in assigned:  # kafka-python keeps the position of a partition kept
                    if tp.partition in worker.rewind:  # across a rebalance: start over at
                        worker.consumer.seek(tp, worker.rewind[tp.partition])  # its jobs
                worker.rewind.clear()

        self.consumer.subscribe([s.kafka.jobs_topic], listener=_Listener())
        next_status = time.monotonic() + s.status_every_s
        try:
            while not self.stop.is_set():
                self._reap()
                if self.summary.exit_code != EXIT_OK:
                    break
                self._poll()
                if time.monotonic() >= next_status:
                    status.info(self.status_line())
                    next_status = time.monotonic() + s.status_every_s
        finally:
            self._stop_jobs(set(self.ledgers) | {p for p, _ in self.running})
            try:
                self.consumer.close(autocommit=False)  # leaves the group: quick rebalance
            except Exception as exc:  # noqa: BLE001 - the group notices on its own
                log.warning("worker %s: leaving the group: %s", s.worker_id, exc)
            self.summary.seconds = time.monotonic() - started
            status.info(self.summary.render(s.worker_id))
        return self.summary

    def _poll(self) -> None:
        free = self.settings.max_jobs - len(self.running)
        assigned = self.consumer.assignment()
        self.partitions_held = len(assigned)
        self.last_poll = time.monotonic()
        if free <= 0:
            self.consumer.pause(*assigned)
        else:
            self.consumer.resume(*assigned)
        batch = self.consumer.poll(timeout_ms=300, max_records=max(free, 1))
        for tp, records in sorted(batch.items(), key=lambda kv: kv[0].partition):
            for msg in records:
                self._take(tp.partition, msg)

    def _take(self, partition: int, msg: Any) -> None:
        ledger = self.ledgers.setdefault(partition, PartitionLedger())
        ledger.take(msg.offset)
        try:
            job = Job.from_bytes(msg.value)
        except Exception as exc:  # noqa: BLE001 - no record may stop the worker (see below)
            # JobError is the record check's refusal. Anything else is a fault of that check
            # (it is meant to be total); the record is skipped all the same, since a record
            # that stopped the worker would stop every worker that takes its partition.
            why = str(exc) if isinstance(exc, JobError) else f"{type(exc).__name__}: {exc}"
            log.warning(
                "partition %d offset %d: %s (skipped)", partition, msg.offset, _one_line(why)
            )
            ledger.finish(msg.offset)
            self._commit(partition)
            return
        run = JobRun(job, self.context, partition, msg.offset)
        self.running[(partition, msg.offset)] = run
        self.started += 1
        run.start()

    def _reap(self) -> None:
        """Account for finished jobs and commit what may be committed."""
        for key, run in list(self.running.items()):
            if not run.finished:
                continue
            del self.running[key]
            self.summary.frames += run.frames
            partition = run.partition
            if run.outcome in ("done", "failed"):
                self.summary.done += run.outcome == "done"
                self.summary.failed += run.outcome == "failed"
                if partition in self.ledgers:
                    self.ledgers[partition].finish(run.offset)
                    self._commit(partition)
            elif run.outcome == "stopped":
                self.summary.stopped += 1
            elif run.outcome == "sink":
                self.summary.sink_failed += 1
                self.summary.exit_code = EXIT_SINK
                self.summary.error = f"job {run.job.job_id}: {run.reason}"

    def _commit(self, partition: int) -> None:
        from kafka import OffsetAndMetadata, TopicPartition

        offset = self.ledgers[partition].committable()
        if offset is None:
            return
        tp = TopicPartition(self.settings.kafka.jobs_topic, partition)
        try:
            self.consumer.commit({tp: OffsetAndMetadata(offset, "", -1)})
        except Exception as exc:  # noqa: BLE001 - the next owner skips finished jobs
            log.warning("partition %d: commit of offset %d failed: %s", partition, offset, exc)

    # -- stopping jobs -------------------------------------------------------------------------
    def _revoke(self, partitions: set[int]) -> None:
        if not partitions:
            return
        status.info("worker %s: partitions %s revoked", self.settings.worker_id, sorted(partitions))
        self._stop_jobs(partitions)

    def _stop_jobs(self, partitions: set[int]) -> None:
        """Stop the jobs of ``partitions`` (each checkpoints), wait, commit what finished."""
        runs = [run for (p, _), run in self.running.items() if p in partitions]
        for run in runs:
            run.request_stop()
        for run in runs:
            run.thread.join()
        self._reap()
        for partition in partitions:
            ledger = self.ledgers.pop(partition, None)
            first = ledger.first_open() if ledger is not None else None
            if first is not None:
                self.rewind[partition] = first

    def status_line(self) -> str:
        s = self.summary
        jobs = ", ".join(
            f"{run.job.stream_id} ({time.monotonic() - run.started:.0f} s, "
            f"checkpoint {run.last_checkpoint})"
            for run in self.running.values()
        )
        parts = sorted(tp.partition for tp in self.consumer.assignment())
        return (
            f"worker {self.settings.worker_id}: partitions {parts}; running "
            f"{len(self.running)}/{self.settings.max_jobs} [{jobs}]; done {s.done}, "
            f"failed {s.failed}, handed over {s.stopped}"
        )
