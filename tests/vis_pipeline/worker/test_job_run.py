"""One job on its thread: finished jobs are skipped, bad input fails once with its reason.

Against the real embedded broker (status and checkpoint topics), no model needed: the
jobs here never reach the detector."""

from __future__ import annotations

import pytest

from devtools.broker import EmbeddedBroker
from devtools.workers import job_context
from vis_pipeline.worker.job_run import JobContext, JobRun
from vis_pipeline.worker.jobs import Job
from vis_pipeline.worker.kafka_io import JobsKafka


@pytest.fixture(scope="module")
def context():
    with EmbeddedBroker() as broker:
        kafka = JobsKafka(broker.bootstrap_servers, "jr")
        kafka.ensure_topics(2)
        producer = kafka.producer()
        yield job_context(kafka, producer)
        producer.close()


def _run(job: Job, context: JobContext) -> JobRun:
    run = JobRun(job, context, partition=0, offset=0)
    run.start()
    run.thread.join(60)
    assert run.finished
    return run


def test_a_missing_video_fails_with_its_reason_and_is_then_skipped(context, tmp_path):
    job = Job("j-missing", "cam", str(tmp_path / "nope.mp4"))
    first = _run(job, context)
    assert first.outcome == "failed" and "nope.mp4" in first.reason
    state = context.status.latest("j-missing")
    assert state.state == "failed" and "nope.mp4" in state.reason
    again = _run(job, context)  # taken again (e.g. its offset was not committed): not re-run
    assert again.outcome == "failed" and again.reason == first.reason
    assert context.status.latest("j-missing").at == state.at  # no new running/failed state


def test_a_job_marked_done_is_skipped_without_running(context):
    job = Job("j-done", "cam2", "/does/not/exist.mp4")  # would fail if it ran
    context.status.publish(job, "done")
    run = _run(job, context)
    assert run.outcome == "done" and run.frames == 0


def test_a_bad_override_fails_the_job(context):
    run = _run(Job("j-bad", "cam3", "x.mp4", ("keyframes.interval=0",)), context)
    assert run.outcome == "failed" and "interval" in run.reason


@pytest.mark.parametrize(
    "override",
    ["output={out}", "sinks.jsonl=true", "detector.weights={out}/w.pt", "detector={{path: x}}"],
)
def test_a_job_overriding_what_the_worker_decides_fails_with_its_reason(
    override, context, tmp_path
):
    out = tmp_path / "chosen-by-the-job"
    job = Job(
        f"j-{abs(hash(override))}", "cam", str(tmp_path / "v.mp4"), (override.format(out=out),)
    )
    run = _run(job, context)
    assert run.outcome == "failed" and "may not set" in run.reason and "worker" in run.reason
    assert context.status.latest(job.job_id).state == "failed"
    assert not out.exists()  # nothing written where the job asked
