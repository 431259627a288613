"""Jobs as Kafka records: one ``vis.job/1`` record per video file, folder or camera URI.

Contract: ``make_jobs(sources, overrides)`` gives each source a unique stream id and a new
job id; ``Job.to_bytes``/``Job.from_bytes`` are the wire format (JSON; ``validate_job`` is
the one check of a record, shared by both: types and lengths, ``JobError`` names what is
wrong); ``check_overrides`` refuses an override outside ``JOB_OVERRIDABLE`` (a job may change
how frames are processed, never where results go, which weights are loaded or any path: the
worker's own config decides those); ``submit(kafka, jobs)`` writes them to the jobs topic
(key = stream id), spread round-robin over its partitions from a random one (hashing a
handful of stream ids leaves partitions, hence workers, idle), and returns the partition of
each.
"""

from __future__ import annotations

import dataclasses
import json
import random
import time
import uuid
from collections.abc import Sequence
from typing import Any

from vis.schema import MAX_ID_CHARS, finite_number
from vis_pipeline.inputs import StreamInput, _unique_ids
from vis_pipeline.worker.kafka_io import JobsKafka

JOB_SCHEMA = "vis.job/1"
#: the settings a job record may override (a key, or a group ending in ``.``); everything
#: else (output, sinks, detector weights, engine, paths, threads, batch size, resume) is the
#: worker's own config. Documented in docs/scaling.md.
JOB_OVERRIDABLE = (
    "keyframes.",
    "tracker.",
    "propagation.",
    "analytics.",
    "detector.score_threshold",
    "detector.classes",
    "detector.nms_iou",
    "detector.max_detections",
    "fps",
    "mode",
)
#: limits of a job record (docs/limits.md)
MAX_JOB_BYTES = 64 * 1024
MAX_JOB_ID_CHARS = 64
MAX_SOURCE_CHARS = 4096
MAX_OVERRIDES = 64
MAX_OVERRIDE_CHARS = 4096


class JobError(ValueError):
    """A job record that cannot be run (not JSON, wrong schema, a bad field, an override
    the worker does not take from a job)."""


def override_allowed(item: str) -> bool:
    """Whether the ``key.path=value`` override ``item`` sets only a key of ``JOB_OVERRIDABLE``."""
    key = item.split("=", 1)[0].strip()
    return any(
        key == allowed.rstrip(".") or (allowed.endswith(".") and key.startswith(allowed))
        for allowed in JOB_OVERRIDABLE
    )


def check_overrides(overrides: Sequence[str]) -> None:
    """``JobError`` naming the first override a job may not set (``JOB_OVERRIDABLE``)."""
    for item in overrides:
        if not override_allowed(item):
            key = item.split("=", 1)[0].strip()
            raise JobError(
                f"a job may not set {key[:80]!r}: jobs override only "
                f"{', '.join(k + '*' if k.endswith('.') else k for k in JOB_OVERRIDABLE)}; "
                "set it in the worker's config instead"
            )


def validate_job(doc: Any) -> dict[str, Any]:
    """Check a decoded ``vis.job/1`` document (types, lengths, counts, a finite
    ``submitted_at``); return it or raise ``JobError``, whatever JSON value ``doc`` is (no
    other exception). The overrides' keys are checked by ``check_overrides``, when the job
    runs, so that a refused job is reported as failed with its reason."""
    if not isinstance(doc, dict) or doc.get("schema") != JOB_SCHEMA:
        raise JobError(f"job record schema is not {JOB_SCHEMA}")
    for key, limit in (
        ("job_id", MAX_JOB_ID_CHARS),
        ("stream_id", MAX_ID_CHARS),
        ("source", MAX_SOURCE_CHARS),
    ):
        value = doc.get(key)
        if not isinstance(value, str) or not value.strip() or len(value) > limit:
            raise JobError(
                f"job record field {key!r} must be a non-empty string of at most {limit} "
                "characters: submit jobs with vis-pipeline submit"
            )
        if "\x00" in value:
            raise JobError(f"job record field {key!r} holds a NUL character")
    overrides = doc.get("overrides") or []
    if (
        not isinstance(overrides, list)
        or len(overrides) > MAX_OVERRIDES
        or not all(
            isinstance(o, str) and "=" in o and len(o) <= MAX_OVERRIDE_CHARS for o in overrides
        )
    ):
        raise JobError(
            f"job record overrides must be at most {MAX_OVERRIDES} key=value strings of at "
            f"most {MAX_OVERRIDE_CHARS} characters"
        )
    submitted = doc.get("submitted_at") or 0.0
    if not isinstance(submitted, (int, float)) or isinstance(submitted, bool):
        raise JobError("job record field 'submitted_at' must be a number")
    if not finite_number(submitted):  # nan, inf, or an integer past the float range
        raise JobError("job record field 'submitted_at' must be finite")
    return doc


@dataclasses.dataclass(frozen=True)
class Job:
    """One unit of work: a source processed as one run.

    Attributes:
        job_id: unique id (checkpoints and status are keyed by it).
        stream_id: the results' stream id (also the record key).
        source: video file, folder or camera/stream URI, as ``--source`` takes it.
        overrides: ``key.path=value`` settings applied over the worker's config (only keys
            of ``JOB_OVERRIDABLE`` are run).
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
        validate_job(doc)
        return json.dumps(doc, sort_keys=True).encode("utf-8")

    @classmethod
    def from_bytes(cls, value: bytes | None) -> Job:
        """Decode a record value.

        Raises:
            JobError: the value is not a valid ``vis.job/1`` record (the message says why).
        """
        if value is not None and len(value) > MAX_JOB_BYTES:
            raise JobError(f"job record is larger than {MAX_JOB_BYTES} bytes")
        try:
            doc: Any = json.loads((value or b"").decode("utf-8"))
        except (UnicodeDecodeError, ValueError, RecursionError):
            raise JobError("job record is not JSON: submit jobs with vis-pipeline submit") from None
        doc = validate_job(doc)
        return cls(
            job_id=doc["job_id"],
            stream_id=doc["stream_id"],
            source=doc["source"],
            overrides=tuple(doc.get("overrides") or ()),
            submitted_at=float(doc.get("submitted_at") or 0.0),
        )


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
    check_overrides(overrides)
    inputs = _unique_ids([StreamInput(uri, sid) for uri, sid in zip(sources, ids)])
    now = time.time()
    jobs = [
        Job(uuid.uuid4().hex[:12], item.stream_id or item.uri, item.uri, tuple(overrides), now)
        for item in inputs
    ]
    for job in jobs:
        job.to_bytes()  # the record's own check, before anything is sent
    return jobs


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
