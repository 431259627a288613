"""Job records: the wire format, unique stream ids, bad records and bad submissions."""

from __future__ import annotations

import json

import pytest

from vis_pipeline.cli import main
from vis_pipeline.worker.jobs import JOB_SCHEMA, Job, JobError, make_jobs


def test_job_round_trips_through_its_record():
    job = Job("abc123", "cam-1", "rtsp://cam1/s", ("keyframes.interval=5",), 1700000000.5)
    doc = json.loads(job.to_bytes())
    assert doc["schema"] == JOB_SCHEMA
    assert Job.from_bytes(job.to_bytes()) == job


@pytest.mark.parametrize(
    ("value", "says"),
    [
        (b"", "not JSON"),
        (b"\xff\xfe", "not JSON"),
        (b'{"schema": "vis.frame/1"}', "schema is not vis.job/1"),
        (b'{"schema": "vis.job/1", "job_id": "a", "source": "x"}', "stream_id"),
        (
            b'{"schema": "vis.job/1", "job_id": "a", "stream_id": "s", "source": "x", '
            b'"overrides": ["no-equals"]}',
            "key=value",
        ),
    ],
)
def test_bad_job_records_are_refused_with_the_reason(value, says):
    with pytest.raises(JobError, match=says):
        Job.from_bytes(value)


def test_make_jobs_gives_unique_stream_ids_and_new_job_ids():
    jobs = make_jobs(["a/cam.mp4", "b/cam.mp4", "rtsp://10.0.0.1/live"], ["keyframes.interval=3"])
    assert [j.stream_id for j in jobs][:2] == ["cam", "cam-2"]
    assert len({j.job_id for j in jobs}) == 3
    assert all(j.overrides == ("keyframes.interval=3",) for j in jobs)
    named = make_jobs(["a/cam.mp4"], stream_ids=["north-gate"])
    assert named[0].stream_id == "north-gate"


def test_submit_refuses_a_bad_override_before_touching_kafka(capsys):
    # no broker runs on this port: the override is checked first
    code = main(["submit", "--bootstrap", "127.0.0.1:1", "--set", "keyframes.interval=0", "x.mp4"])
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "interval" in err[0]


def test_worker_refuses_a_missing_config(capsys):
    code = main(["worker", "--bootstrap", "127.0.0.1:1", "-c", "no/such.yaml"])
    assert code == 2
    assert "no/such.yaml not found" in capsys.readouterr().err


def test_submit_spreads_jobs_over_every_partition_and_jobs_lists_them_queued(capsys):
    from devtools.broker import EmbeddedBroker

    with EmbeddedBroker() as broker:
        args = ["--bootstrap", broker.bootstrap_servers, "--jobs-topic", "j"]
        sources = [f"/videos/cam{i}.mp4" for i in range(6)]
        assert main(["submit", *args, "--partitions", "3", *sources]) == 0
        lines = capsys.readouterr().out.splitlines()
        parts = sorted(int(line.split("partition ")[1].split()[0]) for line in lines[:6])
        assert parts == [0, 0, 1, 1, 2, 2]  # round-robin, whatever the stream ids hash to
        assert main(["jobs", *args]) == 0
        listing = capsys.readouterr().out
        assert listing.count("  queued\n") == 6 and "jobs 6: queued 6" in listing


@pytest.mark.parametrize(
    ("item", "allowed"),
    [
        ("keyframes.interval=3", True),
        ("tracker.high_score=0.6", True),
        ("detector.score_threshold=0.3", True),
        ("analytics.lines=[]", True),
        (" fps =10", True),
        ("output=/tmp/x", False),
        ("sinks.kafka.topic=x", False),
        ("detector.weights=/etc/passwd", False),
        ("detector.path=/x.jsonl", False),
        ("detector=", False),
        ("detector.threads=100000", False),
        ("keyframesX=1", False),
        ("resume=false", False),
        ("live.buffer_frames=9", False),
    ],
)
def test_only_processing_keys_may_be_overridden_by_a_job(item, allowed):
    from vis_pipeline.worker.jobs import check_overrides, override_allowed

    assert override_allowed(item) is allowed
    if not allowed:
        with pytest.raises(JobError, match="may not set"):
            check_overrides([item])


def test_submit_refuses_an_override_a_worker_would_refuse(capsys):
    code = main(["submit", "--bootstrap", "127.0.0.1:1", "--set", "output=/tmp/x", "x.mp4"])
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "may not set 'output'" in err[0]


def test_oversized_job_fields_are_refused():
    for field, value in (("stream_id", "s" * 5000), ("job_id", "j" * 100), ("source", "")):
        doc = {"schema": JOB_SCHEMA, "job_id": "a", "stream_id": "s", "source": "x"}
        with pytest.raises(JobError, match=field):
            Job.from_bytes(json.dumps({**doc, field: value}).encode())
