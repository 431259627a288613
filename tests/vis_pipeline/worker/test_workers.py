"""Worker processes of one consumer group against the real embedded broker, on loopback.

Each test starts ``vis-pipeline worker`` subprocesses (demo model, one torch thread, short
clips of the sample video), submits jobs with ``vis-pipeline submit``, and reads the
results topic back without de-duplication, so every duplicate is seen."""

from __future__ import annotations

import collections
import re
import signal
import time
import uuid

import pytest

from devtools.broker import EmbeddedBroker
from devtools.workers import WorkerProcess, read_frames, worker_overrides, write_clips
from streams.sinks import MemorySink
from vis_pipeline import load_config, run
from vis_pipeline.cli import main
from vis_pipeline.worker.kafka_io import JobsKafka
from vis_pipeline.worker.status import job_rows

pytestmark = pytest.mark.slow
CHECKPOINT = r"job (\w+): (\S+) checkpoint after frame (\d+)"


@pytest.fixture
def cluster(tmp_path):
    """A broker, a results topic and the worker arguments; workers are stopped at the end."""
    with EmbeddedBroker() as broker:
        jobs_topic, frames_topic = f"jobs-{uuid.uuid4().hex[:6]}", "frames"
        sets = worker_overrides(broker.bootstrap_servers, frames_topic)
        args = ["--bootstrap", broker.bootstrap_servers, "--jobs-topic", jobs_topic]
        args += ["-c", "configs/demo.yaml", "--max-poll-interval-ms", "5000", "--log-level"]
        args += ["INFO", "--status-every", "2", *[x for s in sets for x in ("--set", s)]]
        workers: list[WorkerProcess] = []

        class Cluster:
            kafka = JobsKafka(broker.bootstrap_servers, jobs_topic)
            frames = frames_topic

            @staticmethod
            def start(n: int) -> list[WorkerProcess]:
                workers.extend(WorkerProcess(f"w{i}", args) for i in range(n))
                return workers

            @staticmethod
            def submit(sources) -> None:
                code = main(
                    ["submit", "--bootstrap", broker.bootstrap_servers, "--jobs-topic"]
                    + [jobs_topic, *map(str, sources)]
                )
                assert code == 0

            @staticmethod
            def wait_finished(n: int, timeout_s: float = 150.0) -> list[dict]:
                deadline = time.monotonic() + timeout_s
                while time.monotonic() < deadline:
                    rows = job_rows(Cluster.kafka)
                    if len(rows) == n and all(r["state"] in ("done", "failed") for r in rows):
                        return rows
                    time.sleep(1.0)
                logs = "\n".join(line for w in workers for line in w.lines[-15:])
                raise AssertionError(f"jobs not finished in time: {rows}\n{logs}")

            @staticmethod
            def results() -> collections.Counter:
                return collections.Counter(
                    (s, i) for s, i, _ in read_frames(broker.bootstrap_servers, frames_topic)
                )

        yield Cluster
        for w in workers:
            w.stop()


def _one_worker_at_a_time(
    workers: list[WorkerProcess], killed: dict[str, float] | None = None
) -> dict[str, list[str]]:
    """Per job: the workers that ran it, in order; asserts their runs never overlap.
    ``killed``: when a worker was killed (its unfinished runs end then)."""
    runs = collections.defaultdict(list)
    for w in workers:
        begun = {}
        for job, _, what, t in w.events():
            if what == "started":
                begun[job] = t
            else:
                runs[job].append((begun.pop(job), t, w.name))
        for job, t in begun.items():  # killed mid-job: its run ends with the process
            runs[job].append((t, (killed or {}).get(w.name, float("inf")), w.name))
    for job, spans in runs.items():
        spans.sort()
        for (_, end, a), (start, _, b) in zip(spans, spans[1:]):
            assert end <= start, f"job {job} ran on {a} and {b} at once"
    return {job: [w for *_, w in spans] for job, spans in runs.items()}


def _all_frames(streams: list[str], n: int) -> set[tuple[str, int]]:
    return {(s, i) for s in streams for i in range(n)}


def test_three_workers_six_jobs_every_frame_once_and_a_corrupt_video_fails(tmp_path, cluster):
    clips = write_clips(tmp_path / "in", 6, 30)
    corrupt = tmp_path / "in" / "corrupt.mp4"
    corrupt.write_bytes(clips[0].read_bytes()[:2000] + b"\x00garbage" * 500)
    cluster.submit([*clips, corrupt])
    workers = cluster.start(3)
    rows = cluster.wait_finished(7)
    states = {r["stream_id"]: r for r in rows}
    assert {s: r["state"] for s, r in states.items() if s != "corrupt"} == {
        f"clip{i}": "done" for i in range(6)
    }
    assert states["corrupt"]["state"] == "failed"
    assert "corrupt.mp4" in states["corrupt"]["reason"]
    codes = [w.stop() for w in workers]
    assert codes == [0, 0, 0], [w.lines[-5:] for w in workers]
    seen = cluster.results()
    assert set(seen) == _all_frames([f"clip{i}" for i in range(6)], 30)
    assert max(seen.values()) == 1  # no frame twice, rebalances at start included
    ran = _one_worker_at_a_time(workers)
    assert len(ran[states["corrupt"]["job_id"]]) == 1  # failed once, never retried
    assert len({w for names in ran.values() for w in names}) >= 2  # the work was shared


def _at_checkpoint(workers, before, act):
    """Wait (up to 120 s) for a worker to log a job's checkpoint after a frame below
    ``before`` (mid-way: offline, checkpoints fall where the identity repair holds nothing)
    and ``act`` on that worker at once; returns (worker, log match), or (None, None)."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        for w in workers:
            m = w.wait_for(CHECKPOINT + r"$", 0.05)
            if m and int(m[3]) < before:
                act(w)
                return w, m
    return None, None


def test_kill9_worker_mid_job_its_job_resumes_elsewhere_with_its_tracks(tmp_path, cluster):
    clips = write_clips(tmp_path / "in", 6, 40)
    cluster.submit(clips)
    workers = cluster.start(3)
    victim, hit = _at_checkpoint(workers, 30, lambda w: w.proc.kill())
    killed_at = time.time()
    assert victim is not None, "no worker checkpointed a job mid-way"
    victim.proc.wait()
    job_id, stream = hit[1], hit[2]
    last = max(
        int(m[3]) for line in victim.lines if (m := re.search(CHECKPOINT, line)) and m[1] == job_id
    )
    rows = cluster.wait_finished(6)
    assert all(r["state"] == "done" for r in rows)
    survivors = [w for w in workers if w is not victim]
    assert all(w.stop() == 0 for w in survivors)
    seen = cluster.results()
    assert set(seen) == _all_frames([f"clip{i}" for i in range(6)], 40)
    repeated = {key for key, n in seen.items() if n > 1}
    assert all(s == stream and i > last for s, i in repeated), (last, sorted(repeated))
    ran = _one_worker_at_a_time(workers, {victim.name: killed_at})
    assert ran[job_id][0] == victim.name and ran[job_id][-1] != victim.name
    taker = next(w for w in survivors if w.name == ran[job_id][-1])
    assert taker.wait_for(rf"job {job_id}: {stream} resumes after frame {last}$", 1)
    # state restored, not restarted: the moved job's results equal an uninterrupted run's
    reference = MemorySink()
    cfg = load_config(
        "configs/demo.yaml",
        [*worker_overrides("unused:1", "unused")[:-1], "resume=false"],  # no Kafka sink
        sources=[str(clips[int(stream[4:])])],
        output=str(tmp_path / "ref"),
    )
    run(cfg, progress=False, extra_sinks=[reference])
    moved = {
        i: rec
        for s, i, rec in read_frames(cluster.kafka.bootstrap_servers, cluster.frames)
        if s == stream and i > last
    }  # the last copy of each frame: the taker's
    assert moved, "no frame after the checkpoint"
    for r in reference.results:
        if r.frame_index in moved:
            ids = [inst["track_id"] for inst in moved[r.frame_index]["instances"]]
            assert ids == r.detections.track_ids.tolist(), r.frame_index


def test_sigterm_worker_hands_its_job_over_without_duplicates(tmp_path, cluster):
    clips = write_clips(tmp_path / "in", 4, 40)
    cluster.submit(clips)
    workers = cluster.start(2)
    victim, hit = _at_checkpoint(workers, 30, lambda w: w.signal(signal.SIGTERM))
    assert victim is not None, "no worker checkpointed a job mid-way"
    code = victim.stop()
    assert code == 0, "worker log before the kill:\n" + "\n".join(victim.lines[-40:])
    stopped = victim.wait_for(
        rf"job {hit[1]} \({hit[2]}\) stopped .*checkpoint after frame (\d+)", 1
    )
    assert stopped
    rows = cluster.wait_finished(4)
    assert all(r["state"] == "done" for r in rows)
    seen = cluster.results()
    assert set(seen) == _all_frames([f"clip{i}" for i in range(4)], 40)
    assert max(seen.values()) == 1, sorted(k for k, n in seen.items() if n > 1)
    ran = _one_worker_at_a_time(workers)
    heir = next(w for w in workers if w is not victim)
    assert ran[hit[1]] == [victim.name, heir.name]
    # the worker that resumed it tells the frames it processed, not the whole clip's
    done = heir.wait_for(rf"job {hit[1]} \({hit[2]}\) done t=\S+ after \S+ s, (\d+) frames", 5)
    assert done and int(done[1]) == 40 - (int(stopped[1]) + 1), (done[0], stopped[0])
