"""kafka-python producer and admin calls for ``KafkaSink``: connect, create topics, close.

Contract: ``connect_producer(cfg)`` returns a connected ``KafkaProducer`` (acks=all, security
from ``cfg.security``) and whether the broker granted idempotence, or raises ``SinkError``;
``create_topics(cfg)`` creates missing topics when ``cfg.topic_partitions`` > 0;
``close_producer(p, 0)`` abandons unsent batches at once (a failed producer is replaced,
not drained); ``is_permanent(exc)`` says whether a re-send can fix a send error.
"""

from __future__ import annotations

import contextlib
import logging
from typing import Any

from streams.kafka.config import KafkaSinkConfig, servers
from streams.sinks import SinkError

log = logging.getLogger(__name__)


def connect_producer(cfg: KafkaSinkConfig, *, first: bool = False) -> tuple[Any, bool]:
    """A ``KafkaProducer`` for ``cfg`` and whether the broker granted idempotence.

    A broker that refuses idempotence gets a producer with one request in flight (keeps
    per-stream order). ``first=False`` (a recovery) waits at most 2 s for the broker.

    Raises:
        SinkError: the broker cannot be reached (names the servers and the error).
    """
    kwargs = {**cfg.producer_kwargs(), **cfg.security.client_kwargs()}
    if not first:  # a recovery must not stall the writer for long
        kwargs["bootstrap_timeout_ms"] = int(min(cfg.connect_timeout_s, 2.0) * 1000)
    from kafka import KafkaProducer

    try:
        producer = KafkaProducer(**kwargs)
    except Exception as exc:
        msg = (
            f"kafka topic {cfg.topic!r}: cannot connect to {cfg.bootstrap_servers} "
            f"within {kwargs['bootstrap_timeout_ms'] / 1000:.1f} s: {error_text(exc)}"
        )
        raise SinkError(msg) from exc
    idempotent = bool(producer.config.get("enable_idempotence", False))
    if (
        cfg.enable_idempotence
        and not idempotent
        and cfg.max_in_flight is None
        and kwargs["max_in_flight_requests_per_connection"] > 1
    ):
        # the broker refused idempotence: one request in flight keeps per-stream order
        close_producer(producer, 1.0)
        kwargs["max_in_flight_requests_per_connection"] = 1
        producer = KafkaProducer(**kwargs)
    if first:
        log.info(
            "kafka sink -> %s topic %s (tracks %s): acks=all idempotent=%s "
            "compression=%s max_request_size=%d",
            cfg.bootstrap_servers,
            cfg.topic,
            cfg.tracks_topic,
            idempotent,
            cfg.compression,
            cfg.max_request_size,
        )
        if cfg.enable_idempotence and not idempotent:
            log.warning(
                "kafka sink: the broker does not support idempotent producers; "
                "duplicates possible on retries (consumers de-duplicate)"
            )
    return producer, idempotent


def create_topics(cfg: KafkaSinkConfig) -> None:
    """Create the frame, track and event topics with ``cfg.topic_partitions`` (0: do nothing).

    Raises:
        SinkError: the admin request failed (existing topics are not an error).
    """
    if cfg.topic_partitions <= 0:
        return
    from kafka.admin import KafkaAdminClient, NewTopic
    from kafka.errors import TopicAlreadyExistsError

    admin = KafkaAdminClient(
        bootstrap_servers=servers(cfg.bootstrap_servers),
        client_id=cfg.client_id,
        request_timeout_ms=int(cfg.connect_timeout_s * 1000),
        **cfg.security.client_kwargs(),
    )
    try:
        for topic in (cfg.topic, cfg.tracks_topic, cfg.events_topic):
            if topic is None:
                continue
            with contextlib.suppress(TopicAlreadyExistsError):
                admin.create_topics([NewTopic(topic, cfg.topic_partitions, 1)])
    except Exception as exc:
        raise SinkError(
            f"kafka topic {cfg.topic!r}: cannot create topics: {error_text(exc)}"
        ) from exc
    finally:
        admin.close()


def close_producer(producer: Any, timeout_s: float) -> None:
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


def is_permanent(exc: BaseException) -> bool:
    """Errors a re-send cannot fix."""
    from kafka import errors as ke

    permanent = tuple(
        getattr(ke, name)
        for name in (
            "MessageSizeTooLargeError",
            "RecordListTooLargeError",
            "InvalidTopicError",
            "TopicAuthorizationFailedError",
            "ClusterAuthorizationFailedError",
            "AuthenticationFailedError",
            "SaslAuthenticationFailedError",
            "InvalidRequiredAcksError",
            "UnsupportedVersionError",
        )
        if hasattr(ke, name)
    )
    return isinstance(exc, (*permanent, TypeError, ValueError))


def error_text(exc: BaseException) -> str:
    """``ErrorName: message`` (the name only once)."""
    text, name = str(exc), type(exc).__name__
    return text if text.startswith(name) else f"{name}: {text}"
