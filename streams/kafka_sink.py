"""Kafka output: one ``vis.frame/1`` record per frame plus track start/end events.

Contract: ``KafkaSink(config).write(result)`` queues one record (key = stream_id, value =
``dumps_record(result)`` UTF-8, headers ``schema`` and ``content-type``) on ``config.topic``
and, when ``config.tracks_topic`` is set, ``vis.track/1`` started/ended events on it.
Delivery is at-least-once: every record stays in a bounded buffer until the broker
acknowledges it (acks=all); failed records are re-sent in their original order by a fresh
producer; ``write`` blocks while the buffer is full (back-pressure, up to
``block_timeout_s``); ``close()`` flushes. A record that cannot be delivered within
``delivery_timeout_s`` raises ``SinkError`` naming the topic and the error: nothing is
dropped silently. A frame larger than ``max_request_size`` is split into parts (``part`` /
``parts`` fields); a single instance that is still too large gets a coarsened mask
(``mask_coarsened`` = block size). See docs/kafka.md.

Call ``write``/``flush``/``close`` from one thread at a time (the runner's writer thread).
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import json
import logging
import os
import re
import threading
import time
from typing import Any, Literal, Self

import numpy as np

from streams.sinks import Sink, SinkError
from vis.config import ConfigError, from_mapping, require
from vis.schema import SCHEMA, decode_mask, encode_masks, encode_record
from vis.types import FrameResult

log = logging.getLogger(__name__)

TRACK_SCHEMA = "vis.track/1"
CONTENT_TYPE = "application/json"
_TOPIC_RE = re.compile(r"^[A-Za-z0-9._-]{1,249}$")
#: bytes kept free below ``max_request_size`` for the key, headers and batch framing.
RECORD_OVERHEAD = 1024


# -- configuration ------------------------------------------------------------------------------
class _Redactor(logging.Filter):
    """Replaces known secrets in log records (kafka-python logs SASL requests at DEBUG)."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: set[str] = set()

    def add(self, secret: str) -> None:
        self.forms.update(f for f in (secret, repr(secret.encode("utf-8"))[2:-1]) if f)

    def filter(self, record: logging.LogRecord) -> bool:
        if not self.forms:
            return True
        try:
            msg = record.getMessage()
        except Exception:  # noqa: BLE001 - a broken record is not ours to fix
            return True
        redacted = msg
        for form in self.forms:
            redacted = redacted.replace(form, "***")
        if redacted != msg:
            record.msg, record.args = redacted, None
        return True


_REDACTOR = _Redactor()


def _redact_in_logs(secret: str) -> None:
    """Keep ``secret`` out of every ``kafka.*`` log record from now on."""
    import kafka  # noqa: F401 - creates the library's loggers

    _REDACTOR.add(secret)
    for name in list(logging.root.manager.loggerDict):
        if name == "kafka" or name.startswith("kafka."):
            logger = logging.getLogger(name)
            if _REDACTOR not in logger.filters:
                logger.addFilter(_REDACTOR)


@dataclasses.dataclass(frozen=True)
class KafkaSecurity:
    """Connection security, passed unchanged to kafka-python producers and consumers.

    The password is never stored: ``sasl_password_env`` names the environment variable that
    holds it, read when a client is created.
    """

    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = None
    sasl_plain_username: str | None = None
    sasl_password_env: str | None = None
    ssl_cafile: str | None = None

    def __post_init__(self) -> None:
        sasl = self.security_protocol.startswith("SASL_")
        require(not sasl or self.sasl_mechanism is not None, "sasl_mechanism",
                self.sasl_mechanism, f"must be set when security_protocol is "
                f"{self.security_protocol}")
        require(sasl or self.sasl_mechanism is None, "sasl_mechanism", self.sasl_mechanism,
                "needs security_protocol SASL_PLAINTEXT or SASL_SSL")
        require(not sasl or bool(self.sasl_plain_username), "sasl_plain_username",
                self.sasl_plain_username, "must be set for SASL")
        require(not sasl or bool(self.sasl_password_env), "sasl_password_env",
                self.sasl_password_env, "must name the environment variable holding the "
                "SASL password")
        require(self.sasl_password_env is None
                or re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", self.sasl_password_env) is not None,
                "sasl_password_env", self.sasl_password_env,
                "must be an environment variable name")
        require(self.ssl_cafile is None or self.security_protocol in ("SSL", "SASL_SSL"),
                "ssl_cafile", self.ssl_cafile, "needs security_protocol SSL or SASL_SSL")

    def client_kwargs(self) -> dict[str, Any]:
        """kafka-python keyword arguments (the password read from the environment now).

        Raises:
            ConfigError: the password variable is not set (the message names the variable,
                never a value).
        """
        kw: dict[str, Any] = {"security_protocol": self.security_protocol}
        if self.sasl_mechanism is not None:
            assert self.sasl_password_env is not None
            password = os.environ.get(self.sasl_password_env)
            if not password:
                raise ConfigError(f"sasl_password_env: environment variable "
                                  f"{self.sasl_password_env} is not set")
            _redact_in_logs(password)
            kw.update(sasl_mechanism=self.sasl_mechanism,
                      sasl_plain_username=self.sasl_plain_username,
                      sasl_plain_password=password)
        if self.ssl_cafile is not None:
            kw["ssl_cafile"] = self.ssl_cafile
        return kw


@dataclasses.dataclass(frozen=True)
class KafkaSinkConfig:
    """Settings of ``KafkaSink`` (YAML section ``kafka``; load with ``load_kafka_config``).

    Attributes:
        bootstrap_servers: ``host:port[,host:port]``.
        topic: frame records (``vis.frame/1``).
        tracks_topic: track started/ended events (``vis.track/1``); None disables them.
        client_id: Kafka client id.
        compression: record batch codec. ``zstd`` (default) compresses a 720p frame as well
            as ``gzip`` for a tenth of the CPU (bench/results/kafka.md); it needs the
            ``zstandard`` package (``lz4``: ``lz4``, ``snappy``: ``python-snappy``).
        linger_ms, batch_size: producer batching.
        max_request_size: largest record in bytes; larger frames follow the oversize policy.
        enable_idempotence: ask for an idempotent producer (kept only if the broker supports
            it; acks=all always).
        retries, max_in_flight: producer retries and in-flight requests per connection
            (retries >= 1 and max_in_flight <= 5 keep idempotence on). None: 5 with an
            idempotent producer, else 1 (more than 1 without idempotence lets retries
            reorder records of a stream).
        request_timeout_ms: one produce request.
        delivery_timeout_s: longest time a record may stay unacknowledged, re-sends
            included; past it ``SinkError``.
        buffer_max_records, buffer_max_bytes: unacknowledged records kept for re-sending;
            ``write`` blocks while the buffer is full.
        block_timeout_s: longest time ``write`` blocks on a full buffer before ``SinkError``.
        connect_timeout_s: how long to wait for the broker when connecting.
        track_end_frames: a track ends after this many consecutive results of its stream
            without it (and at ``close``/``end_stream``).
        oversize_policy: ``split`` (parts, then coarsened masks) or ``error`` (``SinkError``).
        topic_partitions: create missing topics with this many partitions at start (0: leave
            topic creation to the broker).
        security: ``KafkaSecurity``.
    """

    bootstrap_servers: str = "127.0.0.1:9092"
    topic: str = "vis.frames"
    tracks_topic: str | None = "vis.tracks"
    client_id: str = "vis-pipeline"
    compression: Literal["gzip", "lz4", "zstd", "snappy", "none"] = "zstd"
    linger_ms: int = 5
    batch_size: int = 262144
    max_request_size: int = 1048576
    enable_idempotence: bool = True
    retries: int = 2147483647
    max_in_flight: int | None = None
    request_timeout_ms: int = 10000
    delivery_timeout_s: float = 120.0
    buffer_max_records: int = 1000
    buffer_max_bytes: int = 256 * 1024 * 1024
    block_timeout_s: float = 60.0
    connect_timeout_s: float = 10.0
    track_end_frames: int = 30
    oversize_policy: Literal["split", "error"] = "split"
    topic_partitions: int = 0
    security: KafkaSecurity = dataclasses.field(default_factory=KafkaSecurity)

    def __post_init__(self) -> None:
        require(bool(self.bootstrap_servers.strip()), "bootstrap_servers",
                self.bootstrap_servers, "must be host:port")
        require(_TOPIC_RE.match(self.topic) is not None, "topic", self.topic,
                "must be 1-249 characters of [A-Za-z0-9._-]")
        require(self.tracks_topic is None or _TOPIC_RE.match(self.tracks_topic) is not None,
                "tracks_topic", self.tracks_topic, "must be 1-249 characters of [A-Za-z0-9._-]")
        require(self.tracks_topic != self.topic, "tracks_topic", self.tracks_topic,
                "must differ from topic")
        require(self.linger_ms >= 0, "linger_ms", self.linger_ms, "must be >= 0")
        require(self.batch_size >= 1024, "batch_size", self.batch_size, "must be >= 1024")
        require(self.max_request_size >= 16384, "max_request_size", self.max_request_size,
                "must be >= 16384")
        require(self.retries >= 1, "retries", self.retries,
                "must be >= 1 (0 would lose records and silently disable idempotence)")
        require(self.max_in_flight is None or self.max_in_flight >= 1, "max_in_flight",
                self.max_in_flight, "must be >= 1")
        require(not self.enable_idempotence or (self.max_in_flight or 0) <= 5, "max_in_flight",
                self.max_in_flight, "must be <= 5 with enable_idempotence (kafka-python "
                "silently disables idempotence above 5)")
        require(self.request_timeout_ms >= 100, "request_timeout_ms", self.request_timeout_ms,
                "must be >= 100")
        require(self.delivery_timeout_s * 1000 >= self.linger_ms + self.request_timeout_ms,
                "delivery_timeout_s", self.delivery_timeout_s,
                "must be >= (linger_ms + request_timeout_ms) / 1000")
        require(self.buffer_max_records >= 1, "buffer_max_records", self.buffer_max_records,
                "must be >= 1")
        require(self.buffer_max_bytes >= self.max_request_size, "buffer_max_bytes",
                self.buffer_max_bytes, "must be >= max_request_size")
        require(self.block_timeout_s > 0, "block_timeout_s", self.block_timeout_s, "must be > 0")
        require(self.connect_timeout_s > 0, "connect_timeout_s", self.connect_timeout_s,
                "must be > 0")
        require(self.track_end_frames >= 1, "track_end_frames", self.track_end_frames,
                "must be >= 1")
        require(self.topic_partitions >= 0, "topic_partitions", self.topic_partitions,
                "must be >= 0")

    def in_flight(self, idempotent: bool) -> int:
        """In-flight requests per connection for a producer that is (not) idempotent."""
        if self.max_in_flight is not None:
            return self.max_in_flight
        return 5 if idempotent else 1

    def producer_kwargs(self) -> dict[str, Any]:
        """kafka-python ``KafkaProducer`` arguments, without security settings."""
        kw: dict[str, Any] = {
            "bootstrap_servers": _servers(self.bootstrap_servers),
            "client_id": self.client_id,
            "acks": "all",
            "retries": self.retries,
            "max_in_flight_requests_per_connection": self.in_flight(self.enable_idempotence),
            "compression_type": None if self.compression == "none" else self.compression,
            "linger_ms": self.linger_ms,
            "batch_size": self.batch_size,
            "max_request_size": self.max_request_size,
            "request_timeout_ms": self.request_timeout_ms,
            "delivery_timeout_ms": int(self.delivery_timeout_s * 1000),
            "max_block_ms": int(min(self.block_timeout_s, 5.0) * 1000),
            "bootstrap_timeout_ms": int(self.connect_timeout_s * 1000),
            "retry_backoff_ms": 100,
            "reconnect_backoff_max_ms": 1000,
        }
        if not self.enable_idempotence:
            kw["enable_idempotence"] = False
        return kw


def load_kafka_config(data: Any, path: str = "kafka") -> KafkaSinkConfig:
    """YAML mapping -> ``KafkaSinkConfig`` (``ConfigError`` names the bad key)."""
    return from_mapping(KafkaSinkConfig, data, path)


def _servers(text: str) -> list[str]:
    return [s.strip() for s in text.split(",") if s.strip()]


# -- track events -------------------------------------------------------------------------------
@dataclasses.dataclass
class _TrackState:
    class_id: int
    label: str
    first_frame: int
    last_frame: int
    first_timestamp_ms: float
    last_timestamp_ms: float
    frame_count: int = 1
    missed: int = 0


class TrackEvents:
    """Derives ``vis.track/1`` started/ended events from each stream's sequence of records.

    A track starts on the first record that contains it and ends once it has been absent
    from ``end_after`` consecutive records of its stream, or when the stream ends.
    Unassigned instances (track_id -1) are ignored. Pure logic, no I/O.
    """

    def __init__(self, end_after: int) -> None:
        self.end_after = end_after
        self._streams: dict[str, dict[int, _TrackState]] = {}

    def update(self, record: dict[str, Any]) -> list[dict[str, Any]]:
        """One ``vis.frame/1`` dict -> the events it causes (started first, then ended)."""
        sid, fi, ts = record["stream_id"], record["frame_index"], record["timestamp_ms"]
        tracks = self._streams.setdefault(sid, {})
        events = []
        present = set()
        for inst in record["instances"]:
            tid = int(inst["track_id"])
            if tid < 0 or tid in present:
                continue
            present.add(tid)
            st = tracks.get(tid)
            if st is None:
                st = tracks[tid] = _TrackState(
                    class_id=int(inst["class_id"]), label=str(inst["label"]), first_frame=fi,
                    last_frame=fi, first_timestamp_ms=ts, last_timestamp_ms=ts)
                events.append(self._event("started", sid, tid, st, None))
            else:
                st.last_frame, st.last_timestamp_ms = fi, ts
                st.frame_count += 1
                st.missed = 0
        for tid in [t for t in tracks if t not in present]:
            st = tracks[tid]
            st.missed += 1
            if st.missed >= self.end_after:
                events.append(self._event("ended", sid, tid, tracks.pop(tid), "absent"))
        return events

    def end_stream(self, stream_id: str, reason: str = "stream_end") -> list[dict[str, Any]]:
        """End every open track of ``stream_id``."""
        tracks = self._streams.pop(stream_id, {})
        return [self._event("ended", stream_id, tid, st, reason) for tid, st in tracks.items()]

    def end_all(self, reason: str = "closed") -> list[dict[str, Any]]:
        return [e for sid in list(self._streams) for e in self.end_stream(sid, reason)]

    @staticmethod
    def _event(kind: str, sid: str, tid: int, st: _TrackState, reason: str | None
               ) -> dict[str, Any]:
        ev = {"schema": TRACK_SCHEMA, "event": kind, "stream_id": sid, "track_id": tid,
              "class_id": st.class_id, "label": st.label, "first_frame": st.first_frame,
              "last_frame": st.last_frame, "frame_count": st.frame_count,
              "first_timestamp_ms": st.first_timestamp_ms,
              "last_timestamp_ms": st.last_timestamp_ms}
        if reason is not None:
            ev["reason"] = reason
        return ev


# -- oversize policy ----------------------------------------------------------------------------
def dumps_json(obj: Any) -> bytes:
    """Compact JSON bytes, the same formatting as ``vis.schema.dumps_record``."""
    return json.dumps(obj, separators=(",", ":")).encode("utf-8")


def coarsen_mask(mask: np.ndarray, block: int) -> np.ndarray:
    """(H, W) bool -> (H, W) bool made of ``block`` x ``block`` cells (majority vote)."""
    h, w = mask.shape
    hp, wp = -(-h // block) * block, -(-w // block) * block
    ones = np.zeros((2, hp, wp), np.float32)  # pixel values and which pixels exist
    ones[0, :h, :w] = mask
    ones[1, :h, :w] = 1.0
    sums = ones.reshape(2, hp // block, block, wp // block, block).sum(axis=(2, 4))
    cells = sums[0] * 2 >= sums[1]
    return np.repeat(np.repeat(cells, block, axis=0), block, axis=1)[:h, :w]


def _coarsen_instance(inst: dict[str, Any], room: int) -> dict[str, Any]:
    """Re-encode one instance's mask at ever coarser blocks until its JSON fits ``room``."""
    mask = decode_mask(inst["mask"])
    h, w = mask.shape
    block = 2
    while block <= max(h, w):
        new = {**inst, "mask": encode_masks(coarsen_mask(mask, block)[None])[0],
               "mask_coarsened": block}
        if len(dumps_json(new)) <= room:
            return new
        block *= 2
    box = np.zeros((h, w), bool)  # last resort: the filled box (always a few bytes)
    x1, y1, x2, y2 = (round(float(v)) for v in inst["bbox"])
    box[max(0, y1):max(0, y2), max(0, x1):max(0, x2)] = True
    return {**inst, "mask": encode_masks(box[None])[0], "mask_coarsened": -1}


def fit_record(record: dict[str, Any], budget: int) -> tuple[list[bytes], int]:
    """Serialise a ``vis.frame/1`` dict into values of at most ``budget`` bytes each.

    Policy: a record that fits is one value (``dumps_record`` bytes). Otherwise its
    instances are split, in order, over several records that repeat the frame fields and
    add ``part`` (0-based) and ``parts``; consumers concatenate the parts' instances. An
    instance too large for a record on its own gets its mask coarsened (``mask_coarsened``:
    block size in pixels, -1 for the filled box).

    Returns:
        (values, number of coarsened instances).
    """
    whole = dumps_json(record)
    if len(whole) <= budget:
        return [whole], 0
    head = {k: v for k, v in record.items() if k != "instances"}
    base = len(dumps_json({**head, "part": 99999, "parts": 99999, "instances": []}))
    room = budget - base - 1  # one comma per instance
    if room < 256:
        raise ValueError(f"budget {budget} bytes leaves no room for an instance")
    coarsened = 0
    items: list[tuple[dict[str, Any], int]] = []
    for inst in record["instances"]:
        size = len(dumps_json(inst))
        if size > room:
            inst = _coarsen_instance(inst, room)
            size = len(dumps_json(inst))
            coarsened += 1
        items.append((inst, size + 1))
    groups: list[list[dict[str, Any]]] = [[]]
    used = 0
    for inst, size in items:
        if groups[-1] and used + size > room:
            groups.append([])
            used = 0
        groups[-1].append(inst)
        used += size
    n = len(groups)
    values = [dumps_json({**head, "part": i, "parts": n, "instances": g})
              for i, g in enumerate(groups)]
    return values, coarsened


# -- the sink -----------------------------------------------------------------------------------
@dataclasses.dataclass
class _Record:
    seq: int
    topic: str
    key: bytes
    value: bytes
    headers: list[tuple[str, bytes]]
    enqueued: float
    gen: int = -1  # producer generation it was last handed to (-1: not yet)
    attempts: int = 0


def _is_permanent(exc: BaseException) -> bool:
    """Errors a re-send cannot fix."""
    from kafka import errors as ke

    permanent = tuple(getattr(ke, name) for name in (
        "MessageSizeTooLargeError", "RecordListTooLargeError", "InvalidTopicError",
        "TopicAuthorizationFailedError", "ClusterAuthorizationFailedError",
        "AuthenticationFailedError", "SaslAuthenticationFailedError",
        "InvalidRequiredAcksError", "UnsupportedVersionError")
        if hasattr(ke, name))
    return isinstance(exc, (*permanent, TypeError, ValueError))


def _err(exc: BaseException) -> str:
    text, name = str(exc), type(exc).__name__
    return text if text.startswith(name) else f"{name}: {text}"


class KafkaSink(Sink):
    """Publishes ``FrameResult``s to Kafka, at least once (see the module docstring).

    Args:
        config: the settings; keyword arguments (``KafkaSinkConfig`` fields) override them or,
            without ``config``, build it.

    Raises:
        SinkError: the broker cannot be reached within ``connect_timeout_s``.
        ConfigError: invalid settings or the password variable is missing.
    """

    def __init__(self, config: KafkaSinkConfig | None = None, **fields: Any) -> None:
        if config is None:
            config = KafkaSinkConfig(**fields)
        elif fields:
            config = dataclasses.replace(config, **fields)
        self.config = config
        _check_codec(config.compression)
        self._budget = config.max_request_size - RECORD_OVERHEAD
        self._tracks = TrackEvents(config.track_end_frames)
        self._cond = threading.Condition(threading.RLock())
        self._pending: dict[int, _Record] = {}
        self._pending_bytes = 0
        self._unsent: collections.deque[int] = collections.deque()
        self._seq = 0
        self._gen = 0
        self._producer: Any = None
        self._fatal: SinkError | None = None
        self._needs_recovery = False
        self._next_recovery = 0.0
        self._backoff_s = 0.2
        self._last_error = ""
        self._closed = False
        self.idempotent = False
        self._stats = {"frames": 0, "records": 0, "sent": 0, "failed": 0, "retried": 0,
                       "bytes": 0, "oversize": 0, "parts": 0, "coarsened": 0,
                       "track_events": 0, "recoveries": 0, "blocked_s": 0.0}
        self._producer = self._connect(first=True)
        try:
            self._ensure_topics()
        except BaseException:
            _close_producer(self._producer, 0.0)
            raise

    # -- public API ------------------------------------------------------------------------
    def stats(self) -> dict[str, int | float]:
        """Counters: ``frames`` written, ``records`` queued (frame records + parts + track
        events), ``sent`` acknowledged, ``failed`` send attempts, ``retried`` re-sent
        records, ``bytes`` acknowledged value bytes, ``oversize`` frames split or
        coarsened, ``parts`` extra part records, ``coarsened`` instances, ``track_events``,
        ``recoveries`` (new producers after failures), ``blocked_s`` spent on back-pressure,
        ``pending`` unacknowledged records now."""
        with self._cond:
            out: dict[str, int | float] = dict(self._stats)
            out["pending"] = len(self._pending)
            out["blocked_s"] = round(float(out["blocked_s"]), 3)
            return out

    def write(self, result: FrameResult, image: np.ndarray | None = None) -> None:
        """Queue one frame's record(s) and its track events; blocks on a full buffer.

        Raises:
            SinkError: delivery failed for good, or the buffer stayed full ``block_timeout_s``.
        """
        if self._closed:
            raise SinkError(f"kafka topic {self.config.topic!r}: write after close")
        self._raise_fatal()
        cfg = self.config
        record = encode_record(result)
        key = result.stream_id.encode("utf-8")
        values, coarsened = self._fit(record)
        msgs = [(cfg.topic, key, v, [("schema", SCHEMA.encode()),
                                     ("content-type", CONTENT_TYPE.encode())]) for v in values]
        if cfg.tracks_topic is not None:
            msgs += [(cfg.tracks_topic, key, dumps_json(ev), self._track_headers())
                     for ev in self._tracks.update(record)]
        self._enqueue(msgs)
        with self._cond:
            self._stats["frames"] += 1
            if len(values) > 1 or coarsened:
                self._stats["oversize"] += 1
            self._stats["parts"] += len(values) - 1
            self._stats["coarsened"] += coarsened
            self._stats["track_events"] += len(msgs) - len(values)

    def end_stream(self, stream_id: str) -> None:
        """Publish ``ended`` events for the open tracks of a finished stream."""
        self._publish_track_events(self._tracks.end_stream(stream_id))

    def flush(self, timeout_s: float | None = None) -> None:
        """Block until every queued record is acknowledged.

        Raises:
            SinkError: not all records acknowledged within ``timeout_s`` (default
                ``delivery_timeout_s``) or delivery failed for good.
        """
        timeout_s = self.config.delivery_timeout_s if timeout_s is None else timeout_s
        deadline = time.monotonic() + timeout_s
        while True:
            self._service()
            with self._cond:
                if not self._pending:
                    return
                n = len(self._pending)
            if time.monotonic() >= deadline:
                raise SinkError(f"kafka topic {self.config.topic!r}: {n} records not "
                                f"acknowledged after {timeout_s:.1f} s"
                                f"{self._last_error_suffix()}")
            producer = self._producer
            if producer is not None:
                with contextlib.suppress(Exception):
                    producer.flush(timeout=0.2)
            with self._cond:
                if self._pending:
                    self._cond.wait(0.05)

    def close(self) -> None:
        """End open tracks, flush everything, close the producer. Idempotent.

        Raises:
            SinkError: records could not be delivered (the producer is closed anyway).
        """
        if self._closed:
            return
        delivered = False
        try:
            if self._fatal is None:
                self._publish_track_events(self._tracks.end_all())
                self.flush()
            self._raise_fatal()
            delivered = True
        finally:
            self._closed = True
            producer, self._producer = self._producer, None
            if producer is not None:
                _close_producer(producer, 5.0 if delivered else 0.0)
            log.info("kafka sink %s closed: %s", self.config.topic, self.stats())

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        c = self.config
        return (f"KafkaSink(bootstrap_servers={c.bootstrap_servers!r}, topic={c.topic!r}, "
                f"tracks_topic={c.tracks_topic!r}, security_protocol="
                f"{c.security.security_protocol!r}, idempotent={self.idempotent})")

    # -- internals -------------------------------------------------------------------------
    def _fit(self, record: dict[str, Any]) -> tuple[list[bytes], int]:
        if self.config.oversize_policy == "error":
            value = dumps_json(record)
            if len(value) > self._budget:
                raise SinkError(f"kafka topic {self.config.topic!r}: frame "
                                f"{record['stream_id']}:{record['frame_index']} is "
                                f"{len(value)} bytes, over max_request_size "
                                f"{self.config.max_request_size} (oversize_policy=error)")
            return [value], 0
        return fit_record(record, self._budget)

    @staticmethod
    def _track_headers() -> list[tuple[str, bytes]]:
        return [("schema", TRACK_SCHEMA.encode()), ("content-type", CONTENT_TYPE.encode())]

    def _publish_track_events(self, events: list[dict[str, Any]]) -> None:
        topic = self.config.tracks_topic
        if topic is None or not events:
            return
        self._enqueue([(topic, ev["stream_id"].encode("utf-8"), dumps_json(ev),
                        self._track_headers()) for ev in events])
        with self._cond:
            self._stats["track_events"] += len(events)

    def _connect(self, first: bool = False) -> Any:
        cfg = self.config
        kwargs = {**cfg.producer_kwargs(), **cfg.security.client_kwargs()}
        if not first:  # a recovery must not stall the writer for long
            kwargs["bootstrap_timeout_ms"] = int(min(cfg.connect_timeout_s, 2.0) * 1000)
        from kafka import KafkaProducer

        try:
            producer = KafkaProducer(**kwargs)
        except Exception as exc:
            msg = (f"kafka topic {cfg.topic!r}: cannot connect to {cfg.bootstrap_servers} "
                   f"within {kwargs['bootstrap_timeout_ms'] / 1000:.1f} s: {_err(exc)}")
            raise SinkError(msg) from exc
        self.idempotent = bool(producer.config.get("enable_idempotence", False))
        if (cfg.enable_idempotence and not self.idempotent and cfg.max_in_flight is None
                and kwargs["max_in_flight_requests_per_connection"] > 1):
            # the broker refused idempotence: one request in flight keeps per-stream order
            _close_producer(producer, 1.0)
            kwargs["max_in_flight_requests_per_connection"] = 1
            producer = KafkaProducer(**kwargs)
        if first:
            log.info("kafka sink -> %s topic %s (tracks %s): acks=all idempotent=%s "
                     "compression=%s max_request_size=%d", cfg.bootstrap_servers, cfg.topic,
                     cfg.tracks_topic, self.idempotent, cfg.compression, cfg.max_request_size)
            if cfg.enable_idempotence and not self.idempotent:
                log.warning("kafka sink: the broker does not support idempotent producers; "
                            "duplicates possible on retries (consumers de-duplicate)")
        return producer

    def _ensure_topics(self) -> None:
        cfg = self.config
        if cfg.topic_partitions <= 0:
            return
        from kafka.admin import KafkaAdminClient, NewTopic
        from kafka.errors import TopicAlreadyExistsError

        admin = KafkaAdminClient(bootstrap_servers=_servers(cfg.bootstrap_servers),
                                 client_id=cfg.client_id,
                                 request_timeout_ms=int(cfg.connect_timeout_s * 1000),
                                 **cfg.security.client_kwargs())
        try:
            for topic in (cfg.topic, cfg.tracks_topic):
                if topic is None:
                    continue
                with contextlib.suppress(TopicAlreadyExistsError):
                    admin.create_topics([NewTopic(topic, cfg.topic_partitions, 1)])
        except Exception as exc:
            raise SinkError(f"kafka topic {cfg.topic!r}: cannot create topics: {_err(exc)}"
                            ) from exc
        finally:
            admin.close()

    def _raise_fatal(self) -> None:
        if self._fatal is not None:
            raise self._fatal

    def _last_error_suffix(self) -> str:
        return f"; last error: {self._last_error}" if self._last_error else ""

    def _enqueue(self, msgs: list[tuple[str, bytes, bytes, list[tuple[str, bytes]]]]) -> None:
        """Add records to the buffer (waiting for room), then hand what can go to Kafka."""
        cfg = self.config
        need_n = len(msgs)
        need_b = sum(len(m[2]) for m in msgs)
        start = time.monotonic()
        waited = False
        while True:
            self._service()
            with self._cond:
                fits = (not self._pending or (
                    len(self._pending) + need_n <= cfg.buffer_max_records
                    and self._pending_bytes + need_b <= cfg.buffer_max_bytes))
                if fits:
                    now = time.monotonic()
                    for topic, key, value, headers in msgs:
                        rec = _Record(self._seq, topic, key, value, headers, now)
                        self._pending[rec.seq] = rec
                        self._unsent.append(rec.seq)
                        self._pending_bytes += len(value)
                        self._seq += 1
                    self._stats["records"] += need_n
                    if waited:
                        self._stats["blocked_s"] += now - start
                    break
                if not waited:
                    waited = True
                    log.info("kafka sink: buffer full (%d records, %d bytes unacknowledged); "
                             "write blocks", len(self._pending), self._pending_bytes)
                if time.monotonic() - start >= cfg.block_timeout_s:
                    self._stats["blocked_s"] += time.monotonic() - start
                    raise SinkError(
                        f"kafka topic {cfg.topic!r}: buffer full for {cfg.block_timeout_s:.1f} s "
                        f"({len(self._pending)} records unacknowledged; broker "
                        f"{cfg.bootstrap_servers} unreachable?){self._last_error_suffix()}")
                self._cond.wait(0.05)
        self._service()

    def _service(self) -> None:
        """Check deadlines, replace a failed producer, send what is waiting (caller's thread)."""
        now = time.monotonic()
        with self._cond:
            self._raise_fatal()
            if self._pending:
                oldest = next(iter(self._pending.values()))
                if now - oldest.enqueued > self.config.delivery_timeout_s:
                    self._fatal = SinkError(
                        f"kafka topic {oldest.topic!r}: record for stream "
                        f"{oldest.key.decode('utf-8', 'replace')!r} not acknowledged within "
                        f"{self.config.delivery_timeout_s:.1f} s{self._last_error_suffix()}")
                    raise self._fatal
            recover = self._needs_recovery and now >= self._next_recovery
        if recover:
            self._recover()
        self._pump()

    def _recover(self) -> None:
        with self._cond:
            old, self._producer = self._producer, None
            self._gen += 1  # errors from the old producer's abandoned batches are ignored
            n = len(self._pending)
        if old is not None:
            _close_producer(old, 0.0)
        log.warning("kafka sink: producer failed (%s); reconnecting to re-send %d "
                    "unacknowledged records", self._last_error or "?", n)
        try:
            producer = self._connect()
        except SinkError as exc:
            with self._cond:
                self._last_error = str(exc)
                self._next_recovery = time.monotonic() + self._backoff_s
                self._backoff_s = min(self._backoff_s * 2, 5.0)
            return
        with self._cond:
            self._producer = producer
            self._needs_recovery = False
            resend = [s for s in self._pending if self._pending[s].gen >= 0]
            self._unsent = collections.deque(sorted(self._pending))
            self._stats["recoveries"] += 1
            self._stats["retried"] += len(resend)
        log.info("kafka sink: reconnected; re-sending %d records", len(self._unsent))

    def _pump(self) -> None:
        """Hand unsent records to the current producer in order (never holding the lock)."""
        while True:
            with self._cond:
                producer = self._producer
                if producer is None or self._needs_recovery or not self._unsent:
                    return
                seq = self._unsent.popleft()
                rec = self._pending.get(seq)
                if rec is None:
                    continue
                gen = self._gen
                rec.gen = gen
                rec.attempts += 1
            try:
                fut = producer.send(rec.topic, value=rec.value, key=rec.key,
                                    headers=rec.headers)
            except Exception as exc:  # noqa: BLE001 - synchronous send failure
                with self._cond:
                    self._stats["failed"] += 1
                    self._last_error = _err(exc)
                    if _is_permanent(exc):
                        self._fatal = SinkError(f"kafka topic {rec.topic!r}: {_err(exc)}")
                        raise self._fatal from None
                    rec.gen = -1
                    self._unsent.appendleft(seq)
                    self._needs_recovery = True
                    self._next_recovery = time.monotonic() + self._backoff_s
                return
            fut.add_callback(self._on_ok, seq)
            fut.add_errback(self._on_error, seq, gen)

    def _on_ok(self, seq: int, metadata: Any) -> None:  # producer thread
        with self._cond:
            rec = self._pending.pop(seq, None)
            if rec is not None:
                self._pending_bytes -= len(rec.value)
                self._stats["sent"] += 1
                self._stats["bytes"] += len(rec.value)
                self._backoff_s = 0.2
            self._cond.notify_all()

    def _on_error(self, seq: int, gen: int, exc: BaseException) -> None:  # producer thread
        with self._cond:
            rec = self._pending.get(seq)
            if rec is None or rec.gen != gen or gen != self._gen:
                return  # acknowledged meanwhile, or from a replaced producer
            self._stats["failed"] += 1
            self._last_error = _err(exc)
            if _is_permanent(exc):
                self._fatal = SinkError(f"kafka topic {rec.topic!r}: {_err(exc)}")
            elif not self._needs_recovery:
                self._needs_recovery = True
                self._next_recovery = time.monotonic()
            self._cond.notify_all()


def _check_codec(codec: str) -> None:
    """``ConfigError`` if kafka-python lacks the library for ``codec``."""
    from kafka import codec as kcodec

    needs = {"lz4": (kcodec.has_lz4, "lz4"), "zstd": (kcodec.has_zstd, "zstandard"),
             "snappy": (kcodec.has_snappy, "python-snappy")}
    if codec in needs and not needs[codec][0]():
        raise ConfigError(f"compression={codec!r} needs the {needs[codec][1]} package "
                          f"(pip install {needs[codec][1]}), or choose compression: gzip")


def _close_producer(producer: Any, timeout_s: float) -> None:
    """Close a producer; with ``timeout_s`` 0 abandon its unsent batches at once."""
    try:
        producer.close(timeout=timeout_s)
        return
    except Exception as exc:  # noqa: BLE001 - kafka-python's close(0) raises if batches remain
        log.debug("producer close(%s): %s; forcing it", timeout_s, exc)
    sender = getattr(producer, "_sender", None)  # force the close that close(0) skipped
    with contextlib.suppress(Exception):
        if sender is not None:
            sender.force_close()
            sender.join(1.0)
        producer._closed = True
        producer._unregister_cleanup()
