"""Live streams from a real ffmpeg server on loopback (HTTP multipart JPEG; the ffmpeg build
shipped on PyPI has no RTSP server), killed and restarted mid-run."""

from __future__ import annotations

import random
import socket
import subprocess
import threading
import time

import numpy as np
import pytest

from run_pipeline import load_config, run
from streams.live import LiveConfig, LiveSource, backoff_delays, is_live_uri, put_latest
from streams.sinks import MemorySink
from streams.sources import SourceError
from tests.conftest import SAMPLE_GT, SAMPLE_VIDEO
from vis.data.mots import read_mots_by_frame

ffmpeg_exe = pytest.importorskip("imageio_ffmpeg").get_ffmpeg_exe


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class StreamServer:
    """ffmpeg serving the sample video in real time as HTTP MJPEG to one client."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.url = f"http://127.0.0.1:{port}/live.mjpg"
        self.proc: subprocess.Popen | None = None

    def start(self, seek_s: float = 0.0) -> None:
        self.proc = subprocess.Popen(
            [ffmpeg_exe(), "-hide_banner", "-loglevel", "quiet", "-re", "-ss", f"{seek_s:.2f}",
             "-i", str(SAMPLE_VIDEO), "-c:v", "mjpeg", "-q:v", "3", "-f", "mpjpeg",
             "-listen", "1", self.url], stdin=subprocess.DEVNULL)
        self.started = time.monotonic() - seek_s

    def kill(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(timeout=10)


def test_uri_kinds():
    assert is_live_uri("rtsp://cam/stream") and is_live_uri("udp://@:5000") and is_live_uri("0")
    assert not is_live_uri("data/sample/sample.mp4") and not is_live_uri("frames/")


def test_backoff_doubles_with_jitter_and_caps():
    d = backoff_delays(0.5, 4.0, random.Random(1))
    xs = [next(d) for _ in range(7)]
    for x, base in zip(xs, [0.5, 1, 2, 4, 4, 4, 4]):
        assert 0.75 * base <= x <= 1.25 * base
    assert len(set(xs)) == len(xs)  # jittered


def test_put_latest_drops_oldest_and_counts():
    import queue

    q, stats = queue.Queue(2), {"dropped": 0}
    for i in range(5):
        put_latest(q, i, stats)
    assert [q.get_nowait(), q.get_nowait()] == [3, 4] and stats["dropped"] == 3


def test_unreachable_camera_is_a_one_line_error_within_the_timeout():
    t = time.monotonic()
    with pytest.raises(SourceError, match="unreachable") as info:
        LiveSource(f"http://127.0.0.1:{free_port()}/none.mjpg",
                   config=LiveConfig(connect_timeout_s=1.5, read_timeout_s=0.5, backoff_initial_s=0.2))
    assert time.monotonic() - t < 6
    assert "\n" not in str(info.value)


def frame_position(masks: dict[int, np.ndarray], gt, guess: int) -> tuple[int, dict[int, int]]:
    """Which sample frame near ``guess`` the tracked masks show; and gt id -> track id."""
    best, best_score, best_map = guess, -1.0, {}
    for f in range(max(0, guess - 25), min(150, guess + 25)):
        mapping, total = {}, 0.0
        for gid, _, gm in gt.get(f, []):
            if gm.sum() < 300:
                continue
            ious = {tid: (gm & m).sum() / max((gm | m).sum(), 1) for tid, m in masks.items()}
            tid = max(ious, key=ious.get) if ious else None
            if tid is not None and ious[tid] > 0.5:
                mapping[gid] = tid
                total += ious[tid]
        if total > best_score:
            best, best_score, best_map = f, total, mapping
    return best, best_map


def test_pipeline_reconnects_after_server_restart_and_keeps_ids():
    server = StreamServer(free_port())
    server.start()
    time.sleep(0.5)
    cfg = load_config("configs/demo.yaml", [
        "keyframes.interval=5", "live.read_timeout_s=1", "live.backoff_initial_s=0.2",
        "live.backoff_max_s=1", "live.max_gap_ms=8000", "live.report_every_s=0",
        "sinks.jsonl=false", "sinks.overlay=false", "detector.threads=1"],
        sources=[server.url], output="/tmp/vis-live-test")
    sink, stop, box = MemorySink(), threading.Event(), {}
    worker = threading.Thread(target=lambda: box.update(s=run(cfg, progress=False, stop=stop,
                                                               extra_sinks=[sink])))
    worker.start()
    try:
        deadline = time.monotonic() + 60
        while len(sink.results) < 45 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(sink.results) >= 45, "no frames from the live stream"
        killed_at = time.monotonic()
        server.kill()  # the camera drops ...
        before = len(sink.results)
        time.sleep(1.0)
        server.start(seek_s=killed_at - server.started + 1.0)  # ... and comes back, time moved on
        while len(sink.results) < before + 30 and time.monotonic() < deadline + 30:
            time.sleep(0.05)
    finally:
        stop.set()
        worker.join(timeout=30)
        server.kill()
    summary = box["s"]
    s = summary.streams[0]
    assert s["reconnects"] >= 1 and s["live"]
    res = sink.results
    idx = [r.frame_index for r in res]
    assert idx == sorted(set(idx))  # increasing, no duplicates
    gaps = [res[i].timestamp_ms - res[i - 1].timestamp_ms for i in range(1, len(res))]
    gap_at = int(np.argmax(gaps)) + 1  # the outage: the longest pause in stream time
    assert gaps[gap_at - 1] > 800
    assert res[gap_at].frame_index - res[gap_at - 1].frame_index > 15  # index kept on time
    assert res[gap_at].keyframe  # the first frame after the outage runs the detector
    pre, post = res[gap_at - 1], res[min(gap_at + 10, len(res) - 1)]
    gt = read_mots_by_frame(SAMPLE_GT)
    p_pre, ids_pre = frame_position(dict(zip(pre.detections.track_ids, pre.detections.masks)), gt,
                                    guess=pre.frame_index % 150)
    p_post, ids_post = frame_position(dict(zip(post.detections.track_ids, post.detections.masks)),
                                      gt, guess=post.frame_index % 150)
    common = set(ids_pre) & set(ids_post)
    assert p_post > p_pre and len(common) >= 2
    kept = sum(ids_pre[g] == ids_post[g] for g in common)
    assert kept >= len(common) - 1, (ids_pre, ids_post)
