"""Live sources (RTSP/HTTP/UDP/TCP streams, local cameras) that reconnect and never fall behind.

Contract: ``LiveSource(uri, ...)`` yields ``Frame``s as they arrive. When the stream drops or
stalls (no frame within ``read_timeout_s``) it reconnects with exponential backoff and
jitter, counting ``reconnects``; after a reconnect the frame index jumps by the frames the
outage lasted (measured on the wall clock), so consumers and the tracker see the gap.
Timestamps are stream time on the camera's frame grid: each frame's index step times the
frame interval, not its arrival time, so a loaded machine that reads frames late does not
make objects seem to speed up and slow down (the arrival time is ``Frame.captured_at``, for
latency).
The first connection must succeed within ``connect_timeout_s`` or ``SourceError`` is raised
(an unreachable camera is a clear error, not a hang). Dropping frames when the consumer is
slow is the reader's job (``put_latest``): a live source never queues unbounded frames.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import queue
import random
import threading
import time
from collections.abc import Iterator

import cv2

from streams.sources import SourceError
from vis.config import require
from vis.types import Frame

log = logging.getLogger(__name__)

RTSP_TRANSPORTS = ("auto", "tcp", "udp")
_CAPTURE_OPTIONS = "OPENCV_FFMPEG_CAPTURE_OPTIONS"
# OpenCV reads FFmpeg's options from one process-wide variable when a capture opens, so RTSP
# opens (which set the transport there) happen one at a time.
_open_lock = threading.Lock()

LIVE_SCHEMES = (
    "rtsp://",
    "rtsps://",
    "rtmp://",
    "http://",
    "https://",
    "udp://",
    "tcp://",
    "srt://",
)


def is_live_uri(uri: str) -> bool:
    """Network streams and cameras (``0``, ``/dev/video0``) are live; files and folders are not."""
    u = uri.strip().lower()
    return u.startswith(LIVE_SCHEMES) or u.isdigit() or u.startswith("/dev/video")


@dataclasses.dataclass(frozen=True)
class LiveConfig:
    """Attributes:
    buffer_frames: newest frames kept per live stream; older ones are dropped (counted).
    connect_timeout_s: the first connection must succeed within this time.
    read_timeout_s: no frame for this long counts as a stall: reconnect.
    backoff_initial_s, backoff_max_s: reconnect delays double from initial up to max,
        each with +-25 % jitter.
    give_up_after_s: stop the stream after being disconnected this long (0 = never).
    max_gap_ms: tracks survive a gap in the stream up to this long; longer gaps end them.
    report_every_s: period of the per-stream status log line (0 = off).
    rtsp_transport: how RTSP media travels: ``tcp`` (interleaved in the RTSP connection),
        ``udp`` (RTP over UDP), or ``auto`` (try TCP, then UDP; the one that worked is tried
        first on reconnects).
    """

    buffer_frames: int = 2
    connect_timeout_s: float = 10.0
    read_timeout_s: float = 5.0
    backoff_initial_s: float = 0.5
    backoff_max_s: float = 10.0
    give_up_after_s: float = 0.0
    max_gap_ms: float = 2000.0
    report_every_s: float = 10.0
    rtsp_transport: str = "auto"

    def __post_init__(self) -> None:
        require(
            self.rtsp_transport in RTSP_TRANSPORTS,
            "live.rtsp_transport",
            self.rtsp_transport,
            f"must be one of {', '.join(RTSP_TRANSPORTS)}",
        )
        require(self.buffer_frames >= 1, "live.buffer_frames", self.buffer_frames, "must be >= 1")
        require(
            self.connect_timeout_s > 0,
            "live.connect_timeout_s",
            self.connect_timeout_s,
            "must be > 0",
        )
        require(self.read_timeout_s > 0, "live.read_timeout_s", self.read_timeout_s, "must be > 0")
        require(
            0 < self.backoff_initial_s <= self.backoff_max_s,
            "live.backoff_initial_s",
            self.backoff_initial_s,
            "must be > 0 and <= live.backoff_max_s",
        )


def capture_options(existing: str | None, transport: str) -> str:
    """OpenCV's FFmpeg option string (``key;value|key;value``) with ``rtsp_transport`` set.

    Options the user put in ``OPENCV_FFMPEG_CAPTURE_OPTIONS`` are kept; only the transport is
    replaced.
    """
    kept = [
        kv
        for kv in (existing or "").split("|")
        if kv.strip() and kv.split(";", 1)[0].strip() != "rtsp_transport"
    ]
    return "|".join([*kept, f"rtsp_transport;{transport}"])


def backoff_delays(initial: float, maximum: float, rng: random.Random) -> Iterator[float]:
    """Exponential backoff with +-25 % jitter: initial, 2x, 4x ... capped at ``maximum``."""
    d = initial
    while True:
        yield min(d, maximum) * rng.uniform(0.75, 1.25)
        d = min(d * 2, maximum)


class LiveSource:
    """A network stream or camera read by OpenCV/FFmpeg, reconnecting on failure.

    Args:
        uri: ``rtsp://``, ``http://``, ``udp://``... or a camera index / device path.
        stream_id: id for the results.
        config: timeouts, backoff and buffering.
        stop: set it to end iteration (also interrupts backoff waits).
    """

    def __init__(
        self,
        uri: str,
        *,
        stream_id: str | None = None,
        config: LiveConfig | None = None,
        stop: threading.Event | None = None,
        seed: int | None = None,
    ) -> None:
        self.uri = uri
        self.stream_id = stream_id or _live_stream_id(uri)
        self.config = config or LiveConfig()
        self.stop = stop or threading.Event()
        self.live = True
        self.declared_frames = 0
        self.fps = 25.0
        self.stats = {
            "frames": 0,
            "corrupt": 0,
            "truncated": False,
            "reconnects": 0,
            "dropped": 0,
            "stalls": 0,
            "backlog": 0,
        }
        self._rng = random.Random(seed)
        self._cap: cv2.VideoCapture | None = None
        self.transport: str | None = None  # the RTSP transport that connected
        log.info("stream %s: connecting to %s", self.stream_id, uri)
        deadline = time.monotonic() + self.config.connect_timeout_s
        delays = backoff_delays(self.config.backoff_initial_s, self.config.backoff_max_s, self._rng)
        while self._cap is None and not self.stop.is_set():
            self._cap = self._open_unless_stopped()
            if self._cap is not None or self.stop.is_set():
                break
            wait = next(delays)
            if time.monotonic() + wait > deadline:
                raise SourceError(
                    f"camera/stream {uri} unreachable for {self.config.connect_timeout_s:g} s: "
                    "check the address and that the camera is streaming "
                    "(live.connect_timeout_s sets the wait)"
                )
            self.stop.wait(wait)
        # stopped while connecting (SIGINT, shutdown): not an error; iteration yields nothing

    @property
    def connected(self) -> bool:
        """Whether a capture is open now (False while reconnecting)."""
        return self._cap is not None

    def _open_unless_stopped(self) -> cv2.VideoCapture | None:
        """``_open()`` in a thread of its own, so that ``stop`` ends the wait at once (an open
        blocks in FFmpeg up to ``read_timeout_s``, and signal handlers run only when it
        returns); a capture that opens after the stop is released."""
        box: dict[str, cv2.VideoCapture | None] = {}
        lock = threading.Lock()

        def attempt() -> None:
            cap = self._open()
            with lock:
                if "abandoned" in box:
                    if cap is not None:
                        cap.release()
                    return
                box["cap"] = cap

        opener = threading.Thread(target=attempt, name=f"connect-{self.stream_id}", daemon=True)
        opener.start()
        while opener.is_alive() and not self.stop.is_set():
            opener.join(0.05)
        with lock:
            if "cap" in box:
                return box["cap"]
            box["abandoned"] = None
        return None

    def _open(self) -> cv2.VideoCapture | None:
        if not self.uri.strip().lower().startswith(("rtsp://", "rtsps://")):
            return self._open_capture(None)
        wanted = self.config.rtsp_transport
        order = ["tcp", "udp"] if wanted == "auto" else [wanted]
        if self.transport in order:  # what worked last time first
            order.remove(self.transport)
            order.insert(0, self.transport)
        for transport in order:
            cap = self._open_capture(transport)
            if cap is not None:
                if self.transport != transport:
                    log.info("stream %s: RTSP over %s", self.stream_id, transport.upper())
                self.transport = transport
                return cap
        return None

    def _open_capture(self, rtsp_transport: str | None) -> cv2.VideoCapture | None:
        c = self.config
        params = [
            cv2.CAP_PROP_OPEN_TIMEOUT_MSEC,
            int(c.read_timeout_s * 1000),
            cv2.CAP_PROP_READ_TIMEOUT_MSEC,
            int(c.read_timeout_s * 1000),
        ]
        target = int(self.uri) if self.uri.strip().isdigit() else self.uri
        try:
            if isinstance(target, int):
                cap = cv2.VideoCapture(target, cv2.CAP_ANY, params)
            elif rtsp_transport is None:
                cap = cv2.VideoCapture(target, cv2.CAP_FFMPEG, params)
            else:
                with _open_lock:
                    before = os.environ.get(_CAPTURE_OPTIONS)
                    os.environ[_CAPTURE_OPTIONS] = capture_options(before, rtsp_transport)
                    try:
                        cap = cv2.VideoCapture(target, cv2.CAP_FFMPEG, params)
                    finally:
                        if before is None:
                            os.environ.pop(_CAPTURE_OPTIONS, None)
                        else:
                            os.environ[_CAPTURE_OPTIONS] = before
        except cv2.error:
            return None
        if not cap.isOpened():
            cap.release()
            return None
        fps = cap.get(cv2.CAP_PROP_FPS)
        if 0 < fps < 1000:
            self.fps = fps
        return cap

    def __iter__(self) -> Iterator[Frame]:
        index = 0
        last_time: float | None = None
        stamped: tuple[int, float] | None = None  # (index, ms) of the last frame yielded
        reconnected = False
        backlog = BacklogGate(self.fps)  # the first connection's backlog too
        try:
            while not self.stop.is_set():
                if self._cap is None:
                    self._cap = self._reconnect()
                    if self._cap is None:
                        return
                    backlog = BacklogGate(self.fps)
                began = time.monotonic()
                ok = self._cap.grab()
                if ok and backlog.stale(time.monotonic() - began):
                    self.stats["backlog"] += 1
                    if not reconnected:  # after a reconnect the index jumps by the outage's time
                        index += 1  # a frame the camera sent: counted, as drops are
                    continue
                img = self._cap.retrieve()[1] if ok else None
                if img is None:
                    self.stats["stalls"] += 1
                    log.warning(
                        "stream %s dropped or stalled: reconnecting",
                        self.stream_id,
                        extra={"stream_id": self.stream_id, "event": "stalled"},
                    )
                    self._cap.release()
                    self._cap = None
                    reconnected = True
                    continue
                now = time.monotonic()
                if reconnected and last_time is not None:
                    # the frames the camera showed while we were away: keep the index on time
                    index += max(0, round((now - last_time) * self.fps) - 1)
                    reconnected = False
                last_time = now
                self.stats["frames"] += 1
                step_ms = 1000.0 / self.fps
                ms = (
                    index * step_ms
                    if stamped is None
                    else stamped[1] + (index - stamped[0]) * step_ms
                )
                stamped = (index, ms)
                yield Frame(self.stream_id, index, ms, img, captured_at=now)
                index += 1
        finally:
            if self._cap is not None:
                self._cap.release()
                self._cap = None

    def _reconnect(self) -> cv2.VideoCapture | None:
        c = self.config
        lost_at = time.monotonic()
        for wait in backoff_delays(c.backoff_initial_s, c.backoff_max_s, self._rng):
            if self.stop.wait(wait):
                return None
            self.stats["reconnects"] += 1
            cap = self._open_unless_stopped()
            if self.stop.is_set():
                if cap is not None:
                    cap.release()
                return None
            if cap is not None:
                log.warning(
                    "stream %s reconnected after %.1f s",
                    self.stream_id,
                    time.monotonic() - lost_at,
                    extra={"stream_id": self.stream_id, "event": "reconnected"},
                )
                return cap
            if c.give_up_after_s and time.monotonic() - lost_at > c.give_up_after_s:
                log.error(
                    "stream %s: giving up after %.0f s disconnected",
                    self.stream_id,
                    c.give_up_after_s,
                    extra={"stream_id": self.stream_id, "event": "gave_up"},
                )
                return None
        return None


class BacklogGate:
    """Tells the frames buffered while a stream connected from the live ones.

    Opening a network stream reads about a second of it to learn its format, and the decoder
    then hands those frames over at once. Stamped with the time they come out, they would be a
    second old and a second wrong, and the frame after them would jump a second ahead: after
    a reconnect the tracker would re-identify objects against a past picture. So, after a
    (re)connect, frames that arrive in under 3/4 of a frame interval are skipped, until the
    first one the stream made us wait for. A live frame that happens to arrive early is
    skipped too, which costs one frame. At most ``max_s`` of frames are skipped (a source that
    never makes us wait, such as a file served as a stream, is not starved).
    """

    def __init__(self, fps: float, max_s: float = 3.0) -> None:
        # well under a frame interval, with room for a busy CPU that delays a buffered frame
        self.quick_s = 0.75 / fps
        self.left = max(1, round(max_s * fps))

    def stale(self, grab_s: float) -> bool:
        """Whether a frame that took ``grab_s`` to arrive is part of the backlog."""
        if self.left <= 0:
            return False
        if grab_s >= self.quick_s:
            self.left = 0  # the stream made us wait: we are live from here on
            return False
        self.left -= 1
        return True


def put_latest(q: queue.Queue, item, stats: dict) -> None:
    """Put ``item``; if the queue is full, drop the oldest frame first (counted in ``dropped``)."""
    while True:
        try:
            q.put_nowait(item)
            return
        except queue.Full:
            try:
                q.get_nowait()
                stats["dropped"] += 1
            except queue.Empty:
                pass


def _live_stream_id(uri: str) -> str:
    from streams.sinks import safe_name

    return safe_name(uri.split("://", 1)[-1].rstrip("/"))[-48:] or "camera"
