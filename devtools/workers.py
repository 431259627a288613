"""Worker processes on loopback for tests and the scaling benchmark (not the product).

Contract: ``write_clips`` writes short clips cut from the sample video; ``WorkerProcess``
starts ``vis-pipeline worker`` in a subprocess and collects its stderr lines (status lines
and job start/end lines, ``t=<unix time>``) on a thread; ``job_events`` parses them;
``read_frames`` reads every record of the results topic without de-duplication;
``job_context`` is a worker's ``JobContext`` on a broker, for running jobs in-process.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import cv2

from devtools.broker import _die_with_parent

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "data" / "sample" / "sample.mp4"
_EVENT = re.compile(r"job (\w+) \((.+?)\) (\w+) t=([0-9.]+)")


def write_clips(folder: Path, n: int, frames: int, *, start_step: int = 7) -> list[Path]:
    """``n`` clips of ``frames`` frames of the sample video (clip i starts at frame i *
    ``start_step``), as MJPEG AVI (exact frame counts, fast to decode)."""
    folder.mkdir(parents=True, exist_ok=True)
    cap = cv2.VideoCapture(str(SAMPLE))
    images = []
    while len(images) < (n - 1) * start_step + frames:
        ok, img = cap.read()
        if not ok:
            break
        images.append(img)
    cap.release()
    paths = []
    for i in range(n):
        path = folder / f"clip{i}.avi"
        h, w = images[0].shape[:2]
        out = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 25, (w, h))
        for img in images[i * start_step : i * start_step + frames]:
            out.write(img)
        out.release()
        paths.append(path)
    return paths


def worker_overrides(bootstrap: str, frames_topic: str) -> list[str]:
    """Worker settings for loopback runs: demo model at one thread, results to Kafka only."""
    return [
        "detector.threads=1",
        "keyframes.interval=5",
        "checkpoint_every=10",
        "sinks.jsonl=false",
        "sinks.overlay=false",
        f"sinks.kafka={{bootstrap_servers: '{bootstrap}', topic: {frames_topic}, "
        "tracks_topic: null, linger_ms: 0}",
    ]


class WorkerProcess:
    """``vis-pipeline worker`` in a subprocess; ``lines`` holds its stderr as it comes. The
    process is killed when the thread that started it ends (no orphans after a failure)."""

    def __init__(self, name: str, args: list[str], *, cwd: Path = ROOT) -> None:
        self.name = name
        env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "vis_pipeline", "worker", "--worker-id", name, *args],
            cwd=cwd,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            preexec_fn=_die_with_parent,  # noqa: PLW1509 - one prctl call, no locks
        )
        self.lines: list[str] = []
        self.times: list[float] = []  # time.time() when each line arrived
        self.stdout = ""
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.times.append(time.time())
            self.lines.append(line.rstrip("\n"))

    def wait_for(self, pattern: str, timeout_s: float) -> re.Match | None:
        """The first stderr line matching ``pattern`` within ``timeout_s``, or None."""
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout_s
        seen = 0
        while time.monotonic() < deadline:
            while seen < len(self.lines):
                m = rx.search(self.lines[seen])
                seen += 1
                if m:
                    return m
            if self.proc.poll() is not None and seen >= len(self.lines):
                self._thread.join(1)
                if seen >= len(self.lines):
                    return None
            time.sleep(0.05)
        return None

    def first_after(self, pattern: str, t0: float) -> float | None:
        """When the first line matching ``pattern`` arrived after ``t0`` (None: none yet)."""
        rx = re.compile(pattern)
        for t, line in zip(list(self.times), list(self.lines)):
            if t >= t0 and rx.search(line):
                return t
        return None

    def events(self) -> list[tuple[str, str, str, float]]:
        """(job id, stream id, started|done|failed|stopped, unix time) from its lines."""
        return [
            (m[1], m[2], m[3], float(m[4])) for line in self.lines if (m := _EVENT.search(line))
        ]

    def signal(self, signum: int) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signum)

    def stop(self, timeout_s: float = 60.0) -> int:
        """SIGTERM, wait; SIGKILL if it does not end in time. Returns the exit code."""
        self.signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        assert self.proc.stdout is not None
        self.stdout = self.proc.stdout.read()  # one summary line: never fills the pipe
        self._thread.join(5)
        return self.proc.returncode


def read_frames(bootstrap: str, topic: str, idle_s: float = 15.0) -> list[tuple[str, int, dict]]:
    """Every frame record of ``topic`` as it stands (duplicates kept): (stream id, frame
    index, record). Read to each partition's end offset, not until a quiet spell: a broker
    slow to serve one partition must not look like frames that were never written."""
    from streams.kafka import FrameReader

    with FrameReader(topic, bootstrap_servers=bootstrap, dedup=False, validate_masks=False) as r:
        return [
            (f.stream_id, f.frame_index, f.record) for f in r.frames(idle_s=idle_s, to_end=True)
        ]


def job_context(kafka, producer, worker_id: str = "w-test"):
    """A ``JobContext`` on ``kafka``'s checkpoint and status topics (``producer`` sends,
    waiting for each record), no overlay or JSONL sink: jobs run in-process in tests."""
    from vis_pipeline.worker.job_run import JobContext
    from vis_pipeline.worker.status import StatusLog
    from vis_pipeline.worker.table import TopicTable

    def sender(topic):
        return lambda key, value: producer.send(topic, key=key.encode(), value=value).get(
            timeout=30
        )

    return JobContext(
        config_path=None,
        overrides=("sinks.overlay=false", "sinks.jsonl=false"),
        checkpoints=TopicTable(kafka, kafka.checkpoints_topic),
        send_checkpoint=sender(kafka.checkpoints_topic),
        status=StatusLog(
            sender(kafka.status_topic), worker_id, TopicTable(kafka, kafka.status_topic)
        ),
    )
