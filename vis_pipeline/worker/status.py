"""Job states in the compacted status topic: publish, read, list.

Contract: ``StatusLog.publish(job, state, ...)`` writes the job's latest state, keyed by job
id: ``running`` (with the worker and, after each checkpoint, the frame), ``done``,
``failed`` (with the reason), ``stopped`` (handed back for another worker to resume).
``job_rows(kafka)`` joins every job record of the jobs topic with its latest state; a job
with none is ``queued``. ``render_rows`` is the ``vis-pipeline jobs`` table.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable
from typing import Any

from vis_pipeline.worker.jobs import Job, JobError
from vis_pipeline.worker.kafka_io import JobsKafka
from vis_pipeline.worker.table import TopicTable

STATES = ("queued", "running", "stopped", "done", "failed")


@dataclasses.dataclass(frozen=True)
class JobStatus:
    """A job's latest state.

    Attributes:
        job_id, stream_id, source: the job.
        state: one of ``STATES``.
        worker: the worker that set it.
        reason: why it failed (or stopped).
        frame: the last checkpointed frame (-1: none).
        at: Unix time.
    """

    job_id: str
    stream_id: str
    source: str
    state: str
    worker: str = ""
    reason: str = ""
    frame: int = -1
    at: float = 0.0

    def to_bytes(self) -> bytes:
        return json.dumps(dataclasses.asdict(self), sort_keys=True).encode("utf-8")

    @classmethod
    def from_bytes(cls, value: bytes) -> JobStatus:
        doc = json.loads(value.decode("utf-8"))
        fields = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in doc.items() if k in fields})

    def describe(self) -> str:
        """``running on W (frame N)``, ``failed: reason``, ..."""
        if self.state == "running":
            at = f" (checkpoint after frame {self.frame})" if self.frame >= 0 else ""
            return f"running on {self.worker}{at}"
        if self.state == "failed":
            return f"failed: {self.reason}"
        if self.state == "stopped":
            return f"queued (stopped on {self.worker} after frame {self.frame})"
        if self.state == "done":
            return f"done on {self.worker}"
        return self.state


class StatusLog:
    """Publishes job states.

    Args:
        send: ``send(key, value)``, returns once the record is acknowledged.
        worker: this worker's id.
        table: the status topic, mirrored (for ``latest``).
    """

    def __init__(
        self, send: Callable[[str, bytes], None], worker: str, table: TopicTable | None = None
    ) -> None:
        self.send = send
        self.worker = worker
        self.table = table

    def latest(self, job_id: str) -> JobStatus | None:
        """The job's latest published state (the topic is read to its end first)."""
        if self.table is None:
            return None
        self.table.catch_up()
        value = self.table.get(job_id)
        return JobStatus.from_bytes(value) if value is not None else None

    def publish(self, job: Job, state: str, *, reason: str = "", frame: int = -1) -> None:
        status = JobStatus(
            job.job_id, job.stream_id, job.source, state, self.worker, reason, frame, time.time()
        )
        self.send(job.job_id, status.to_bytes())


def read_jobs(kafka: JobsKafka, timeout_s: float = 30.0) -> list[tuple[int, int, Job | str]]:
    """Every record of the jobs topic: (partition, offset, job or the error of a bad record)."""
    from kafka import TopicPartition

    consumer = kafka.consumer(client_id=f"{kafka.client_id}-jobs")
    out: list[tuple[int, int, Job | str]] = []
    try:
        parts = consumer.partitions_for_topic(kafka.jobs_topic) or set()
        tps = [TopicPartition(kafka.jobs_topic, p) for p in sorted(parts)]
        if not tps:
            return out
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        ends = consumer.end_offsets(tps)
        deadline = time.monotonic() + timeout_s
        while any(consumer.position(tp) < ends[tp] for tp in tps):
            if time.monotonic() >= deadline:
                raise TimeoutError(f"topic {kafka.jobs_topic}: not read to its end in time")
            for tp, batch in consumer.poll(timeout_ms=200).items():
                for msg in batch:
                    try:
                        item: Job | str = Job.from_bytes(msg.value)
                    except JobError as exc:
                        item = str(exc)
                    out.append((tp.partition, msg.offset, item))
    finally:
        consumer.close()
    return sorted(out, key=lambda r: (r[0], r[1]))


def job_rows(kafka: JobsKafka) -> list[dict[str, Any]]:
    """One row per job record: its place, its job and its latest state."""
    table = TopicTable(kafka, kafka.status_topic)
    try:
        table.catch_up()
        states = {key: JobStatus.from_bytes(value) for key, value in table.items()}
    finally:
        table.close()
    rows = []
    for partition, offset, item in read_jobs(kafka):
        if isinstance(item, str):
            rows.append(
                {
                    "partition": partition,
                    "offset": offset,
                    "job_id": "-",
                    "stream_id": "-",
                    "state": "invalid",
                    "describe": item,
                }
            )
            continue
        status = states.get(item.job_id)
        rows.append(
            {
                "partition": partition,
                "offset": offset,
                "job_id": item.job_id,
                "stream_id": item.stream_id,
                "source": item.source,
                "state": status.state if status else "queued",
                "worker": status.worker if status else "",
                "reason": status.reason if status else "",
                "describe": status.describe() if status else "queued",
            }
        )
    return rows


def render_rows(rows: list[dict[str, Any]]) -> str:
    """The ``vis-pipeline jobs`` table plus a count per state."""
    lines = [f"{'job':<13} {'stream':<20} {'part':>4} {'offset':>6}  state"]
    counts: dict[str, int] = {}
    for row in rows:
        counts[row["state"]] = counts.get(row["state"], 0) + 1
        lines.append(
            f"{row['job_id']:<13} {row['stream_id'][:20]:<20} {row['partition']:>4} "
            f"{row['offset']:>6}  {row['describe']}"
        )
    lines.append(f"jobs {len(rows)}: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
    return "\n".join(lines)
