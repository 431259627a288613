"""Live streams from real servers on loopback, killed and restarted mid-run.

RTSP: Debian's ``rtsp-server-perl`` relays the sample video, published to it in real time as
H.264 by ffmpeg (the static build from PyPI); the pipeline reads it as an RTSP client (RTP over
UDP: that server offers no TCP interleaving). ``scripts/test.sh`` installs the server when it
can; without it the RTSP test is skipped and says so. HTTP: ffmpeg itself serves multipart
JPEG.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from streams.live import (
    BacklogGate,
    LiveConfig,
    LiveSource,
    backoff_delays,
    capture_options,
    is_live_uri,
    put_latest,
)
from streams.sinks import MemorySink
from streams.sources import SourceError
from tests.conftest import ROOT, SAMPLE_GT, SAMPLE_VIDEO
from vis_eval.sequences import read_mots_by_frame
from vis_pipeline import load_config, run

ffmpeg_exe = pytest.importorskip("imageio_ffmpeg").get_ffmpeg_exe
SAMPLE_FRAMES, SAMPLE_FPS = 150, 25.0  # data/sample/sample.mp4
SAMPLE_SECONDS = SAMPLE_FRAMES / SAMPLE_FPS


@pytest.fixture(scope="module")
def pingpong(tmp_path_factory) -> Path:
    """The sample played forwards then backwards (``2 * SAMPLE_SECONDS``): looped, its
    objects never jump, as in a real scene (the sample's own loop point teleports every
    object)."""
    out = tmp_path_factory.mktemp("video") / "pingpong.mp4"
    subprocess.run(
        [
            ffmpeg_exe(),
            "-hide_banner",
            "-loglevel",
            "error",
            "-i",
            str(SAMPLE_VIDEO),
            "-filter_complex",
            "[0:v]split[a][b];[b]reverse[r];[a][r]concat=n=2:v=1",
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-g",
            "10",
            str(out),
        ],
        check=True,
        stdin=subprocess.DEVNULL,
    )
    return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port}")


class MjpegCamera:
    """An HTTP MJPEG camera on loopback that owns its scene's clock.

    Frame ``k`` of the scene is on air from ``started + k / fps`` (the scene loops), like a
    camera that films whether anyone watches or not: a client that connects gets the last
    second of frames at once (a camera's send buffer), then each frame when it is on air.
    ``kill`` drops every client and stops listening (the camera goes off the network);
    ``start`` brings it back on the same port, its scene clock still running. So what a
    client sees after an outage is where the scene is by then, however long its reconnect
    took: the content agrees with the client's own clock, on a quiet machine or a loaded
    one.

    Args:
        frames: JPEG bytes of each frame of the scene.
        fps: frames per second of the scene.
    """

    def __init__(self, frames: list[bytes], fps: float = SAMPLE_FPS) -> None:
        self.frames, self.fps = frames, fps
        self.loop_s = len(frames) / fps
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/live.mjpg"
        self.started = time.monotonic()
        self._listener: socket.socket | None = None
        self._clients: list[socket.socket] = []
        self._lock = threading.Lock()

    def scene_frame(self, at: float | None = None) -> int:
        """The number of the frame on air at ``at`` (now), counted from the scene's start."""
        return int(((time.monotonic() if at is None else at) - self.started) * self.fps)

    def start(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(4)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def kill(self) -> None:
        with self._lock:
            if self._listener is not None:  # shutdown wakes the accept() blocked on it
                try:
                    self._listener.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                self._listener.close()
                self._listener = None
            for client in self._clients:
                try:
                    client.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                client.close()
            self._clients.clear()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return  # killed
            with self._lock:
                self._clients.append(client)
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        try:
            request = b""
            while b"\r\n\r\n" not in request:
                chunk = client.recv(4096)
                if not chunk:
                    return
                request += chunk
            client.sendall(
                b"HTTP/1.1 200 OK\r\nContent-Type: multipart/x-mixed-replace;boundary=ffmpeg"
                b"\r\nCache-Control: no-cache\r\nConnection: close\r\n\r\n"
            )
            # like a camera's send buffer, the last second of frames goes out at once first
            now = self.scene_frame()
            k = max(0, now - round(self.fps))
            while True:
                on_air = self.started + k / self.fps
                delay = on_air - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                jpeg = self.frames[k % len(self.frames)]
                client.sendall(
                    b"--ffmpeg\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n"
                    % len(jpeg)
                    + jpeg
                    + b"\r\n"
                )
                k += 1
                if k > now:  # past the buffered second: a slow client misses frames, as live
                    k = max(k, self.scene_frame())
        except OSError:
            return  # the client left or the camera was killed
        finally:
            client.close()


def jpeg_frames(video: Path) -> list[bytes]:
    """Every frame of ``video`` as JPEG bytes."""
    cap = cv2.VideoCapture(str(video))
    frames = []
    while True:
        ok, image = cap.read()
        if not ok:
            break
        frames.append(cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 90])[1].tobytes())
    cap.release()
    return frames


RTSP_SERVER = shutil.which("rtsp-server-perl")


class RtspServer:
    """Debian's rtsp-server-perl on loopback, fed the sample in a loop in real time by an ffmpeg
    publisher (H.264, a keyframe every 10 frames, like a camera). ``kill`` takes both down."""

    def __init__(self, video: Path = SAMPLE_VIDEO, loop_s: float = SAMPLE_SECONDS) -> None:
        self.video, self.loop_s = video, loop_s
        self.client_port, self.source_port = free_port(), free_port()
        self.rtp_port = random.Random(os.getpid()).randrange(30000, 60000, 2)
        self.url = f"rtsp://127.0.0.1:{self.client_port}/sample"
        self.procs: list[subprocess.Popen] = []

    def start(self, seek_s: float = 0.0) -> None:
        quiet = {
            "stdin": subprocess.DEVNULL,
            "stdout": subprocess.DEVNULL,
            "stderr": subprocess.DEVNULL,
        }
        self.procs.append(
            subprocess.Popen(
                [
                    RTSP_SERVER,
                    "--clientport",
                    str(self.client_port),
                    "--serverport",
                    str(self.source_port),
                    "--client_listen_address",
                    "127.0.0.1",
                    "--source_listen_address",
                    "127.0.0.1",
                    "--rtp_start_port",
                    str(self.rtp_port),
                    "--loglevel",
                    "0",
                ],
                **quiet,
            )
        )
        wait_for_port(self.source_port)
        wait_for_port(self.client_port)
        self.procs.append(
            subprocess.Popen(
                [
                    ffmpeg_exe(),
                    "-hide_banner",
                    "-loglevel",
                    "quiet",
                    "-re",
                    "-stream_loop",
                    "-1",
                    "-ss",
                    f"{seek_s % self.loop_s:.2f}",
                    "-i",
                    str(self.video),
                    "-an",
                    "-c:v",
                    "libx264",
                    "-preset",
                    "ultrafast",
                    "-tune",
                    "zerolatency",
                    "-g",
                    "10",
                    "-f",
                    "rtsp",
                    f"rtsp://127.0.0.1:{self.source_port}/sample",
                ],
                **quiet,
            )
        )
        self.started = time.monotonic() - seek_s

    def scene_frame(self) -> int:
        """The number of the scene's frame on air now, by the publisher's clock."""
        return int((time.monotonic() - self.started) * SAMPLE_FPS)

    def kill(self) -> None:
        for p in self.procs:
            p.kill()
            p.wait(timeout=10)
        self.procs.clear()


def test_uri_kinds():
    assert is_live_uri("rtsp://cam/stream") and is_live_uri("udp://@:5000") and is_live_uri("0")
    assert not is_live_uri("data/sample/sample.mp4") and not is_live_uri("frames/")


def test_backoff_doubles_with_jitter_and_caps():
    d = backoff_delays(0.5, 4.0, random.Random(1))
    xs = [next(d) for _ in range(7)]
    for x, base in zip(xs, [0.5, 1, 2, 4, 4, 4, 4]):
        assert 0.75 * base <= x <= 1.25 * base
    assert len(set(xs)) == len(xs)  # jittered


def test_backlog_gate_skips_the_connect_burst_until_the_stream_makes_us_wait():
    gate = BacklogGate(fps=25.0)  # a frame interval of 40 ms
    burst = [0.004, 0.003, 0.025, 0.004]  # from the buffer (one delayed by a busy CPU)
    assert [gate.stale(t) for t in burst] == [True] * 4
    assert not gate.stale(0.035)  # waited for: live
    assert not gate.stale(0.001)  # and live from then on, however quick
    never_waits = BacklogGate(fps=25.0, max_s=0.2)  # a source that never blocks
    assert [never_waits.stale(0.001) for _ in range(7)] == [True] * 5 + [False] * 2


def test_put_latest_drops_oldest_and_counts():
    import queue

    q, stats = queue.Queue(2), {"dropped": 0}
    for i in range(5):
        put_latest(q, i, stats)
    assert [q.get_nowait(), q.get_nowait()] == [3, 4] and stats["dropped"] == 3


def test_unreachable_camera_is_a_one_line_error_within_the_timeout():
    t = time.monotonic()
    with pytest.raises(SourceError, match="unreachable") as info:
        LiveSource(
            f"http://127.0.0.1:{free_port()}/none.mjpg",
            config=LiveConfig(connect_timeout_s=1.5, read_timeout_s=0.5, backoff_initial_s=0.2),
        )
    assert time.monotonic() - t < 15  # bounded (1.5 s and an open), with room for a busy CPU
    assert "\n" not in str(info.value)


def frame_position(masks: dict[int, np.ndarray], gt) -> tuple[int, dict[int, int]]:
    """Which sample frame the tracked masks show; and gt id -> track id."""
    best, best_score, best_map = -1, -1.0, {}
    for f in range(SAMPLE_FRAMES):
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


def gt_centres(gt) -> np.ndarray:
    """Per sample frame, the centre of each ground-truth object (NaN where absent):
    shape (frames, objects, 2), for telling cheaply which frame a result shows."""
    ids = sorted({gid for objs in gt.values() for gid, _, _ in objs})
    out = np.full((SAMPLE_FRAMES, len(ids), 2), np.nan)
    for f in range(SAMPLE_FRAMES):
        for gid, _, gm in gt.get(f, []):
            if gm.sum() >= 300:
                ys, xs = np.nonzero(gm)
                out[f, ids.index(gid)] = xs.mean(), ys.mean()
    return out


def quick_position(masks: np.ndarray, centres: np.ndarray) -> int:
    """Which sample frame the masks show, from centres alone: a few milliseconds where
    ``frame_position`` takes a second or more, so a test can act on what the pipeline
    shows now rather than on what it showed a second ago."""
    if len(masks) == 0:
        return -1
    mine = np.array([np.argwhere(m)[:, ::-1].mean(axis=0) for m in masks if m.any()])
    if not len(mine):
        return -1
    d = np.linalg.norm(centres[:, :, None, :] - mine[None, None], axis=-1)  # F, G, T
    nearest = np.nanmin(np.where(np.isnan(d), np.inf, d), axis=2)  # each object's match
    present = ~np.isnan(centres[:, :, 0])
    cost = np.where(present, np.minimum(nearest, 50.0), 0.0).sum(1) + 50.0 * np.maximum(
        len(mine) - present.sum(1), 0
    )
    return int(np.argmin(cost))


def test_capture_options_set_the_transport_and_keep_the_users_options():
    assert capture_options(None, "udp") == "rtsp_transport;udp"
    assert (
        capture_options("stimeout;5000000|rtsp_transport;tcp", "udp")
        == "stimeout;5000000|rtsp_transport;udp"
    )
    with pytest.raises(Exception, match="rtsp_transport"):
        LiveConfig(rtsp_transport="quic")


needs_rtsp_server = pytest.mark.skipif(
    RTSP_SERVER is None,
    reason="rtsp-server-perl not installed (scripts/test.sh installs it with "
    "apt-get when run as root)",
)


@pytest.mark.slow
@needs_rtsp_server
def test_rtsp_transport_setting_is_obeyed():
    server = RtspServer()  # offers RTP over UDP only
    server.start()
    try:
        fast = {"connect_timeout_s": 2.0, "read_timeout_s": 1.0, "backoff_initial_s": 0.2}
        with pytest.raises(SourceError, match="unreachable"):
            LiveSource(server.url, config=LiveConfig(rtsp_transport="tcp", **fast))
        src = LiveSource(server.url, config=LiveConfig(rtsp_transport="udp", **fast))
        frames = iter(src)
        frame = next(frames)
        frames.close()  # releases the capture
        assert src.transport == "udp" and frame.image.shape == (360, 640, 3)
    finally:
        server.kill()


@pytest.mark.slow
@pytest.mark.parametrize(
    "kind",
    [
        "http",
        pytest.param("rtsp", marks=needs_rtsp_server),
    ],
)
@pytest.mark.slow
def test_pipeline_reconnects_after_server_restart_and_keeps_ids(kind, tmp_path, pingpong):
    """The camera drops for 25 frames of its own clock and comes back where its scene is by
    then (a camera keeps filming): what the pipeline sees after the outage agrees with its
    own clock however long the reconnect took, so the assertions hold on a loaded machine
    as on a quiet one."""
    gt = read_mots_by_frame(SAMPLE_GT)
    centres = gt_centres(gt)
    pass_frames = 2 * SAMPLE_FRAMES  # the scene: the sample forwards, then backwards

    def position(r):
        return frame_position(dict(zip(r.detections.track_ids, r.detections.full_masks())), gt)

    if kind == "http":
        server = MjpegCamera(jpeg_frames(pingpong))
    else:
        server = RtspServer(pingpong, loop_s=2 * SAMPLE_SECONDS)
    server.start()
    cfg = load_config(
        "configs/demo.yaml",
        [
            "keyframes.interval=5",
            "live.read_timeout_s=1",
            "live.backoff_initial_s=0.1",
            "live.backoff_max_s=0.5",
            "live.max_gap_ms=8000",
            "live.report_every_s=0",
            "sinks.jsonl=false",
            "sinks.overlay=false",
            "detector.threads=1",
        ],
        sources=[server.url],
        output=str(tmp_path),
    )
    sink, stop, box = MemorySink(), threading.Event(), {}
    worker = threading.Thread(
        target=lambda: box.update(s=run(cfg, progress=False, stop=stop, extra_sinks=[sink]))
    )
    worker.start()
    try:
        deadline = time.monotonic() + 120
        while len(sink.results) < 45 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(sink.results) >= 45, "no frames from the live stream"
        # drop the camera in the first third of the forward pass, by the camera's own clock:
        # 40 frames after the loop point (where every object reverses: the tracks need a
        # second of motion to know their new velocities) and early enough that the outage
        # and the reconnect end well before the turn at frame 150 of the pass (which no
        # motion model across an outage can know)
        while not 40 <= server.scene_frame() % pass_frames <= 55:
            time.sleep(0.005)
        dropped_at = server.scene_frame()
        server.kill()  # the camera drops for 25 of its frames ...
        before = len(sink.results)
        while server.scene_frame() < dropped_at + 25:
            time.sleep(0.005)
        if kind == "http":
            server.start()  # ... and comes back where its scene is now
        else:  # the publisher restarts at the scene's position by the camera's clock
            server.start(seek_s=(time.monotonic() - server.started) % server.loop_s)
        while len(sink.results) < before + 30 and time.monotonic() < deadline + 60:
            time.sleep(0.05)
    finally:
        stop.set()
        worker.join(timeout=60)
        server.kill()
    summary = box["s"]
    s = summary.streams[0]
    assert s["reconnects"] >= 1 and s["live"]
    if kind == "rtsp":  # auto tried TCP, which this server refuses, and fell back to UDP
        assert s["rtsp_transport"] == "udp"
    res = sink.results
    idx = [r.frame_index for r in res]
    assert idx == sorted(set(idx))  # increasing, no duplicates
    gaps = [res[i].timestamp_ms - res[i - 1].timestamp_ms for i in range(1, len(res))]
    gap_at = int(np.argmax(gaps)) + 1  # the outage: the longest pause in stream time
    assert gaps[gap_at - 1] > 800
    assert res[gap_at].frame_index - res[gap_at - 1].frame_index > 15  # index kept on time
    assert res[gap_at].keyframe  # the first frame after the outage runs the detector

    # the last frame before the outage and the first after it (a keyframe): the tracker
    # re-identifies the objects across the gap
    pre, post = res[gap_at - 1], res[gap_at]
    p_pre, ids_pre = position(pre)
    p_post, ids_post = position(post)
    assert p_post - p_pre >= 10, (p_pre, p_post)  # fresh video, not frames from before
    # ... and live video: the frames the stream buffered while it reconnected are skipped, so
    # the first frame after the outage is as current as the next (they once came first, a
    # second old, and the next frame jumped 25-30 frames ahead of them)
    shown = res[gap_at : gap_at + 3]
    after = [quick_position(r.detections.full_masks(), centres) for r in shown]
    steps = [b.frame_index - a.frame_index for a, b in zip(shown, shown[1:])]
    assert all(0 <= b - a <= step + 6 for a, b, step in zip(after, after[1:], steps)), (
        after,
        steps,
    )
    assert s["backlog_frames"] >= 10
    common = set(ids_pre) & set(ids_post)
    assert len(common) >= 2
    kept = sum(ids_pre[g] == ids_post[g] for g in common)
    gap = (gaps[gap_at - 1], res[gap_at].frame_index - res[gap_at - 1].frame_index)
    assert kept >= len(common) - 1, (gap, p_pre, p_post, ids_pre, ids_post)


@pytest.mark.slow
def test_sigint_while_connecting_exits_130_at_once(tmp_path):
    """A camera that accepts the connection and never answers: FFmpeg's open blocks for the
    whole read timeout, and SIGINT during it still ends the run at once with exit 130."""
    detections = tmp_path / "none.jsonl"
    detections.write_text("")
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)  # connections complete in the kernel; nobody ever reads or answers
        url = f"http://127.0.0.1:{silent.getsockname()[1]}/live.mjpg"
        proc = subprocess.Popen(
            [
                sys.executable,
                str(ROOT / "run_pipeline.py"),
                "-c",
                str(ROOT / "configs/demo.yaml"),
                "--source",
                url,
                "-o",
                str(tmp_path / "out"),
                "--no-progress",
                "--log-level",
                "INFO",
                "--set",
                "detector.type=precomputed",
                "--set",
                f"detector.path={detections}",
                "--set",
                "live.connect_timeout_s=600",
                "--set",
                "live.read_timeout_s=300",
            ],
            cwd=ROOT,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "OMP_NUM_THREADS": "1"},
        )
        seen = []
        for line in proc.stderr:  # wait for the connection attempt, however slow the start
            seen.append(line)
            if "connecting to" in line:
                break
        time.sleep(0.5)  # inside the blocking open (it cannot return before 300 s)
        proc.send_signal(signal.SIGINT)
        try:
            stdout, stderr = proc.communicate(timeout=120)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
            pytest.fail("SIGINT did not end a run that was connecting")
    stderr = "".join(seen) + stderr
    assert proc.returncode == 130, stderr[-2000:]
    assert "unreachable" not in stderr and "Traceback" not in stderr
    assert "interrupted by SIGINT" in stderr
