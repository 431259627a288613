"""The worker's take loop: a record that cannot be run is skipped and committed, never the end
of the worker (a record that stopped one worker would stop every worker taking its partition).
"""

from __future__ import annotations

import json
import threading
import time
import types
import uuid

import pytest

from vis_pipeline.worker import jobs as jobs_module
from vis_pipeline.worker.jobs import JOB_SCHEMA, Job
from vis_pipeline.worker.kafka_io import JobsKafka
from vis_pipeline.worker.loop import Worker, WorkerSettings

#: a job record as a hostile producer writes it: ``submitted_at`` 10**400 as JSON digits
POISON = (
    b'{"schema": "vis.job/1", "job_id": "p1", "stream_id": "cam", "source": "x.mp4", '
    b'"submitted_at": 1' + b"0" * 400 + b"}"
)


class _Consumer:
    """What ``Worker._take`` uses of a consumer: ``commit``, recorded."""

    def __init__(self) -> None:
        self.commits: list[int] = []

    def commit(self, offsets: dict) -> None:
        self.commits += [meta.offset for meta in offsets.values()]


def _worker() -> Worker:
    settings = WorkerSettings(kafka=JobsKafka("127.0.0.1:1", "j"), worker_id="w-test")
    worker = Worker(settings, context=None, stop=threading.Event())  # type: ignore[arg-type]
    worker.consumer = _Consumer()
    return worker


def _record(offset: int, value: bytes | None) -> types.SimpleNamespace:
    return types.SimpleNamespace(offset=offset, value=value)


def test_a_poison_record_is_skipped_and_committed_and_the_worker_goes_on(caplog):
    worker = _worker()
    negative_inf = POISON.replace(b"1" + b"0" * 400, b"-1e999")
    for offset, value in enumerate([POISON, b"not json", negative_inf]):
        worker._take(0, _record(offset, value))
    assert worker.consumer.commits == [1, 2, 3] and worker.started == 0 and not worker.running
    assert "submitted_at" in caplog.text and "skipped" in caplog.text


def test_a_fault_of_the_record_check_skips_the_record_instead_of_stopping_the_worker(
    monkeypatch, caplog
):
    def broken(doc):
        raise RuntimeError("a check that is not total\nsecond line")

    valid = Job("a", "cam", "x.mp4").to_bytes()
    monkeypatch.setattr(jobs_module, "validate_job", broken)
    worker = _worker()
    worker._take(3, _record(0, valid))
    assert worker.consumer.commits == [1]
    line = next(r.getMessage() for r in caplog.records if "skipped" in r.getMessage())
    assert "RuntimeError: a check that is not total" in line and "\n" not in line


@pytest.mark.slow
def test_with_a_broker_a_poison_record_is_skipped_and_the_next_job_runs(tmp_path):
    """Against the real embedded broker: a poison record, then a valid job (a missing video,
    so no model is needed: it runs and fails with its reason); one worker takes both."""
    from devtools.broker import EmbeddedBroker
    from devtools.workers import job_context

    with EmbeddedBroker() as broker:
        kafka = JobsKafka(broker.bootstrap_servers, f"jobs-{uuid.uuid4().hex[:6]}")
        kafka.ensure_topics(1)
        producer = kafka.producer()

        context = job_context(kafka, producer)
        job = Job("j-after", "cam", str(tmp_path / "nope.mp4"))
        for value in (POISON, job.to_bytes()):
            producer.send(kafka.jobs_topic, key=b"cam", value=value, partition=0).get(timeout=30)
        stop = threading.Event()
        worker = Worker(
            WorkerSettings(kafka=kafka, worker_id="w-test", max_poll_interval_ms=3000),
            context,
            stop,
        )
        summary: list = []
        thread = threading.Thread(target=lambda: summary.append(worker.run()), daemon=True)
        thread.start()
        deadline = time.monotonic() + 60
        while worker.summary.failed + worker.summary.done < 1 and time.monotonic() < deadline:
            assert thread.is_alive(), "the worker stopped on the poison record"
            time.sleep(0.2)
        stop.set()
        thread.join(30)
        assert summary and summary[0].failed == 1 and summary[0].done == 0
        state = context.status.latest("j-after")
        assert state.state == "failed" and "nope.mp4" in state.reason
        assert context.status.latest("p1") is None  # the poison record never ran
        producer.close()


def test_the_poison_record_is_what_a_producer_can_write():
    doc = json.loads(POISON)
    assert doc["schema"] == JOB_SCHEMA and doc["submitted_at"] == 10**400
