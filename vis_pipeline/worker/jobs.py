"""Jobs as Kafka records: one ``vis.job/1`` record per video file, folder or camera URI.

Contract: ``make_jobs(sources, overrides)`` gives each source a unique stream id and a new
job id; ``Job.to_bytes``/``Job.from_bytes`` are the wire format (JSON; ``JobError`` names
what is wrong with a record); ``submit(kafka, jobs)`` writes them to the jobs topic (key =
stream id), spread round-robin over its partitions from a random one (hashing a handful of
stream ids leaves partitions, hence workers, idle), and returns the partition of each.
"""

from __future__ import annotations

import dataclasses
import json
import random
import time
import uuid
from collections.abc import Sequence
from typing import Any

from vis_pipeline.inputs import StreamInput, _unique_ids
from vis_pipeline.worker.kafka_io import JobsKafka

JOB_SCHEMA = "vis.job/1"


class JobError(ValueError):
    """A job record that cannot be run (not JSON, wrong schema, missing fields)."""


@dataclasses.dataclass(frozen=True)
class Job:
    """One unit of work: a source processed as one run.

    Attributes:
        job_id: unique id (checkpoints and status are keyed by it).
        stream_id: the results' stream id (also the record key).
        source: video file, folder or camera/stream URI, as ``--source`` takes it.
        overrides: ``key.path=value`` settings applied over the worker's config.
        submitted_at: Unix time of submission.
    """

    job_id: str
    stream_id: str
    source: str
    overrides: tuple[str, ...] = ()
    submitted_at: float = 0.0

    def to_bytes(self) -> bytes:
        doc = {"schema": JOB_SCHEMA, **dataclasses.asdict(self)}
        doc["overrides"] = list(self.overrides)
        return json.dumps(doc, sort_keys=True).encode("utf-8")

    @classmethod
    def from_bytes(cls, value: bytes | None) -> Job:
        """Decode a record value.

        Raises:
            JobError: the value is not a ``vis.job/1`` record (the message says why).
        """
        try:
            doc: Any = json.loads((value or b"").decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            raise JobError("job record is not JSON: submit jobs with vis-pipeline submit") from None
        if not isinstance(doc, dict) or doc.get("schema") != JOB_SCHEMA:
            raise JobError(f"job record schema is not {JOB_SCHEMA}")
        try:
            overrides = doc.get("overrides") or []
            if not all(isinstance(o, str) and "=" in o for o in overrides):
                raise TypeError("overrides must be key=value strings")
            return cls(
                job_id=str(doc["job_id"]),
                stream_id=str(doc["stream_id"]),
                source=str(doc["source"]),
                overrides=tuple(overrides),
                submitted_at=float(doc.get("submitted_at") or 0.0),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise JobError(f"job record is incomplete or malformed: {exc}") from None


def make_jobs(
    sources: Sequence[str],
    overrides: Sequence[str] = (),
    stream_ids: Sequence[str | None] | None = None,
) -> list[Job]:
    """One job per source, with unique stream ids (``cam.mp4``, ``cam-2`` for a second one)."""
    ids = list(stream_ids) if stream_ids is not None else [None] * len(sources)
    if len(ids) != len(sources):
        raise ValueError("give one stream id per source (or none)")
    for item in overrides:
        if "=" not in item:
            raise JobError(f"--set {item!r} must look like key.path=value")
    inputs = _unique_ids([StreamInput(uri, sid) for uri, sid in zip(sources, ids)])
    now = time.time()
    return [
        Job(uuid.uuid4().hex[:12], item.stream_id or item.uri, item.uri, tuple(overrides), now)
        for item in inputs
    ]


def submit(kafka: JobsKafka, jobs: Sequence[Job], *, partitions: int) -> list[int]:
    """Write ``jobs`` to the jobs topic (created with ``partitions`` if missing) and wait
    for the broker's acknowledgement; returns each job's partition.

    Raises:
        kafka.errors.KafkaError: the broker did not take a record.
    """
    kafka.ensure_topics(partitions)
    producer = kafka.producer()
    try:
        parts = sorted(producer.partitions_for(kafka.jobs_topic))
        first = random.randrange(len(parts))
        futures = [
            producer.send(
                kafka.jobs_topic,
                key=job.stream_id.encode(),
                value=job.to_bytes(),
                partition=parts[(first + i) % len(parts)],
            )
            for i, job in enumerate(jobs)
        ]
        producer.flush()
        return [f.get(timeout=30).partition for f in futures]
    finally:
        producer.close()
