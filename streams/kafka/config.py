"""Kafka connection settings, shared by the producer (``KafkaSink``) and the consumer.

Contract: ``KafkaSecurity`` holds the connection security (the SASL password is never
stored: ``sasl_password_env`` names the environment variable read when a client is made,
and the value is masked in every ``kafka.*`` log record from then on); ``KafkaSinkConfig``
holds the producer settings, validated at construction (``ConfigError`` names the field and
the value); ``load_kafka_config`` builds it from a YAML mapping. See docs/kafka.md.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import re
from typing import Any, Literal

from vis.config import ConfigError, from_mapping, require

_TOPIC_RE = re.compile(r"^[A-Za-z0-9._-]{1,249}$")


# -- log redaction ------------------------------------------------------------------------------
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


# -- settings -----------------------------------------------------------------------------------
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
        require(
            not sasl or self.sasl_mechanism is not None,
            "sasl_mechanism",
            self.sasl_mechanism,
            f"must be set when security_protocol is {self.security_protocol}",
        )
        require(
            sasl or self.sasl_mechanism is None,
            "sasl_mechanism",
            self.sasl_mechanism,
            "needs security_protocol SASL_PLAINTEXT or SASL_SSL",
        )
        require(
            not sasl or bool(self.sasl_plain_username),
            "sasl_plain_username",
            self.sasl_plain_username,
            "must be set for SASL",
        )
        require(
            not sasl or bool(self.sasl_password_env),
            "sasl_password_env",
            self.sasl_password_env,
            "must name the environment variable holding the SASL password",
        )
        require(
            self.sasl_password_env is None
            or re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", self.sasl_password_env) is not None,
            "sasl_password_env",
            self.sasl_password_env,
            "must be an environment variable name",
        )
        require(
            self.ssl_cafile is None or self.security_protocol in ("SSL", "SASL_SSL"),
            "ssl_cafile",
            self.ssl_cafile,
            "needs security_protocol SSL or SASL_SSL",
        )

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
                raise ConfigError(
                    f"sasl_password_env: environment variable {self.sasl_password_env} is not set"
                )
            _redact_in_logs(password)
            kw.update(
                sasl_mechanism=self.sasl_mechanism,
                sasl_plain_username=self.sasl_plain_username,
                sasl_plain_password=password,
            )
        if self.ssl_cafile is not None:
            kw["ssl_cafile"] = self.ssl_cafile
        return kw


@dataclasses.dataclass(frozen=True)
class KafkaSinkConfig:
    """Settings of ``KafkaSink`` (YAML section ``kafka``; load with ``load_kafka_config``).

    Attributes:
        bootstrap_servers: ``host:port[,host:port]``.
        topic: frame records (``vis.frame/2`` or ``/1``).
        tracks_topic: track started/ended events (``vis.track/1``); None disables them.
        events_topic: analytics events (``vis.event/1``: line crossings, zone entries, exits
            and occupancy), when the run has ``analytics`` lines or zones; None disables them.
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
        record_version: frame records written as ``vis.frame/2`` (box-relative masks) or
            ``vis.frame/1`` (full-frame masks); the pipeline sets it from
            ``sinks.record_version``.
        topic_partitions: create missing topics with this many partitions at start (0: leave
            topic creation to the broker).
        security: ``KafkaSecurity``.
    """

    bootstrap_servers: str = "127.0.0.1:9092"
    topic: str = "vis.frames"
    tracks_topic: str | None = "vis.tracks"
    events_topic: str | None = "vis.events"
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
    record_version: int = 2
    topic_partitions: int = 0
    security: KafkaSecurity = dataclasses.field(default_factory=KafkaSecurity)

    def __post_init__(self) -> None:
        require(self.record_version in (1, 2), "record_version", self.record_version, "1 or 2")
        require(
            bool(self.bootstrap_servers.strip()),
            "bootstrap_servers",
            self.bootstrap_servers,
            "must be host:port",
        )
        require(
            _TOPIC_RE.match(self.topic) is not None,
            "topic",
            self.topic,
            "must be 1-249 characters of [A-Za-z0-9._-]",
        )
        require(
            self.tracks_topic is None or _TOPIC_RE.match(self.tracks_topic) is not None,
            "tracks_topic",
            self.tracks_topic,
            "must be 1-249 characters of [A-Za-z0-9._-]",
        )
        require(
            self.tracks_topic != self.topic,
            "tracks_topic",
            self.tracks_topic,
            "must differ from topic",
        )
        require(
            self.events_topic is None or _TOPIC_RE.match(self.events_topic) is not None,
            "events_topic",
            self.events_topic,
            "must be 1-249 characters of [A-Za-z0-9._-]",
        )
        require(
            self.events_topic is None or self.events_topic not in (self.topic, self.tracks_topic),
            "events_topic",
            self.events_topic,
            "must differ from topic and tracks_topic",
        )
        require(self.linger_ms >= 0, "linger_ms", self.linger_ms, "must be >= 0")
        require(self.batch_size >= 1024, "batch_size", self.batch_size, "must be >= 1024")
        require(
            self.max_request_size >= 16384,
            "max_request_size",
            self.max_request_size,
            "must be >= 16384",
        )
        require(
            self.retries >= 1,
            "retries",
            self.retries,
            "must be >= 1 (0 would lose records and silently disable idempotence)",
        )
        require(
            self.max_in_flight is None or self.max_in_flight >= 1,
            "max_in_flight",
            self.max_in_flight,
            "must be >= 1",
        )
        require(
            not self.enable_idempotence or (self.max_in_flight or 0) <= 5,
            "max_in_flight",
            self.max_in_flight,
            "must be <= 5 with enable_idempotence (kafka-python "
            "silently disables idempotence above 5)",
        )
        require(
            self.request_timeout_ms >= 100,
            "request_timeout_ms",
            self.request_timeout_ms,
            "must be >= 100",
        )
        require(
            self.delivery_timeout_s * 1000 >= self.linger_ms + self.request_timeout_ms,
            "delivery_timeout_s",
            self.delivery_timeout_s,
            "must be >= (linger_ms + request_timeout_ms) / 1000",
        )
        require(
            self.buffer_max_records >= 1,
            "buffer_max_records",
            self.buffer_max_records,
            "must be >= 1",
        )
        require(
            self.buffer_max_bytes >= self.max_request_size,
            "buffer_max_bytes",
            self.buffer_max_bytes,
            "must be >= max_request_size",
        )
        require(self.block_timeout_s > 0, "block_timeout_s", self.block_timeout_s, "must be > 0")
        require(
            self.connect_timeout_s > 0, "connect_timeout_s", self.connect_timeout_s, "must be > 0"
        )
        require(
            self.track_end_frames >= 1, "track_end_frames", self.track_end_frames, "must be >= 1"
        )
        require(
            self.topic_partitions >= 0, "topic_partitions", self.topic_partitions, "must be >= 0"
        )

    def in_flight(self, idempotent: bool) -> int:
        """In-flight requests per connection for a producer that is (not) idempotent."""
        if self.max_in_flight is not None:
            return self.max_in_flight
        return 5 if idempotent else 1

    def producer_kwargs(self) -> dict[str, Any]:
        """kafka-python ``KafkaProducer`` arguments, without security settings."""
        kw: dict[str, Any] = {
            "bootstrap_servers": servers(self.bootstrap_servers),
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


def servers(text: str) -> list[str]:
    """``host:port[,host:port]`` -> the list kafka-python clients take."""
    return [s.strip() for s in text.split(",") if s.strip()]


def check_codec(codec: str) -> None:
    """``ConfigError`` if kafka-python lacks the library for ``codec``."""
    from kafka import codec as kcodec

    needs = {
        "lz4": (kcodec.has_lz4, "lz4"),
        "zstd": (kcodec.has_zstd, "zstandard"),
        "snappy": (kcodec.has_snappy, "python-snappy"),
    }
    if codec in needs and not needs[codec][0]():
        raise ConfigError(
            f"compression={codec!r} needs the {needs[codec][1]} package "
            f"(pip install {needs[codec][1]}), or choose compression: gzip"
        )
