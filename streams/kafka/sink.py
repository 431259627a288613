"""Kafka output: one ``vis.frame`` record per frame plus track start/end events.

Contract: ``KafkaSink(config).write(result)`` queues one record (key = stream_id, value =
``dumps_record(result)`` UTF-8, headers ``schema`` and ``content-type``) on ``config.topic``
and, when ``config.tracks_topic`` is set, ``vis.track/1`` started/ended events on it;
``write_events(events)`` queues ``vis.event/1`` analytics events on ``config.events_topic``
(key = stream_id), through the same buffer and delivery as the frames.
Delivery is at-least-once: every record stays in a bounded buffer until the broker
acknowledges it (acks=all); failed records are re-sent in their original order by a fresh
producer; ``write`` blocks while the buffer is full (back-pressure, up to
``block_timeout_s``); ``close()`` flushes. A record that cannot be delivered within
``delivery_timeout_s`` raises ``SinkError`` naming the topic and the error: nothing is
dropped silently. A frame larger than ``max_request_size`` is split into parts (``part`` /
``parts`` fields); a single instance that is still too large gets a coarsened mask
(``mask_coarsened`` = block size). See docs/kafka.md.

The sink interface: ``write(result, image=None)``, ``end_stream(stream_id)``, ``flush()``,
``close()``, ``stats()``. Call ``write``/``end_stream``/``flush``/``close`` from one thread
at a time (the runner's writer thread); ``stats()`` from any thread.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import logging
import threading
import time
from collections.abc import Sequence
from typing import Any, Self

import numpy as np

from streams.kafka.config import KafkaSinkConfig, check_codec
from streams.kafka.producer import (
    close_producer,
    connect_producer,
    create_topics,
    error_text,
    is_permanent,
)
from streams.kafka.records import RECORD_OVERHEAD, dumps_json, fit_record, headers
from streams.kafka.tracks import TRACK_SCHEMA, TrackEvents
from streams.sinks.base import Sink, SinkError
from vis.analytics import EVENT_SCHEMA, Event
from vis.schema import SCHEMAS, json_of, record_of
from vis.types import FrameResult

log = logging.getLogger(__name__)


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
        check_codec(config.compression)
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
        self._stats = {
            "frames": 0,
            "records": 0,
            "sent": 0,
            "failed": 0,
            "retried": 0,
            "bytes": 0,
            "oversize": 0,
            "parts": 0,
            "coarsened": 0,
            "track_events": 0,
            "events": 0,
            "recoveries": 0,
            "blocked_s": 0.0,
        }
        self._producer = self._connect(first=True)
        try:
            create_topics(config)
        except BaseException:
            close_producer(self._producer, 0.0)
            raise

    # -- public API ------------------------------------------------------------------------
    def stats(self) -> dict[str, int | float]:
        """Counters: ``frames`` written, ``records`` queued (frame records + parts + track
        events), ``sent`` acknowledged, ``failed`` send attempts, ``retried`` re-sent
        records, ``bytes`` acknowledged value bytes, ``oversize`` frames split or
        coarsened, ``parts`` extra part records, ``coarsened`` instances, ``track_events``,
        ``events`` (analytics events queued),
        ``recoveries`` (new producers after failures), ``blocked_s`` spent on back-pressure,
        ``pending`` unacknowledged records now."""
        with self._cond:
            out: dict[str, int | float] = dict(self._stats)
            out["pending"] = len(self._pending)
            out["blocked_s"] = round(float(out["blocked_s"]), 3)
            return out

    def health(self) -> dict[str, Any]:
        """Whether records are being delivered: ``oldest_pending_s`` (how long the oldest
        unacknowledged record has waited; 0 when none), ``failed`` (delivery failed for good)
        and ``last_error``."""
        with self._cond:
            oldest = next(iter(self._pending.values()), None)
            return {
                "oldest_pending_s": time.monotonic() - oldest.enqueued if oldest else 0.0,
                "failed": self._fatal is not None,
                "last_error": self._last_error,
            }

    def write(self, result: FrameResult, image: np.ndarray | None = None) -> None:
        """Queue one frame's record(s) and its track events; blocks on a full buffer.

        ``image`` (the frame) is not sent: records carry masks, not pixels.

        Raises:
            SinkError: delivery failed for good, or the buffer stayed full ``block_timeout_s``.
        """
        if self._closed:
            raise SinkError(f"kafka topic {self.config.topic!r}: write after close")
        self._raise_fatal()
        cfg = self.config
        version = cfg.record_version
        record = record_of(result, version=version)  # shared with the other sinks
        key = result.stream_id.encode("utf-8")
        values, coarsened = self._fit(record, json_of(result, version=version))
        msgs = [(cfg.topic, key, v, headers(SCHEMAS[version])) for v in values]
        if cfg.tracks_topic is not None:
            msgs += [
                (cfg.tracks_topic, key, dumps_json(ev), headers(TRACK_SCHEMA))
                for ev in self._tracks.update(record)
            ]
        self._enqueue(msgs)
        with self._cond:
            self._stats["frames"] += 1
            if len(values) > 1 or coarsened:
                self._stats["oversize"] += 1
            self._stats["parts"] += len(values) - 1
            self._stats["coarsened"] += coarsened
            self._stats["track_events"] += len(msgs) - len(values)

    def write_events(self, events: Sequence[Event]) -> None:
        """Queue analytics events on ``events_topic`` (keyed by stream); blocks on a full
        buffer like ``write``.

        Raises:
            SinkError: delivery failed for good, or the buffer stayed full ``block_timeout_s``.
        """
        topic = self.config.events_topic
        if topic is None or not events:
            return
        if self._closed:
            raise SinkError(f"kafka topic {topic!r}: write after close")
        self._raise_fatal()
        self._enqueue(
            [
                (
                    topic,
                    ev.stream_id.encode("utf-8"),
                    dumps_json(ev.to_dict()),
                    headers(EVENT_SCHEMA),
                )
                for ev in events
            ]
        )
        with self._cond:
            self._stats["events"] += len(events)

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
                raise SinkError(
                    f"kafka topic {self.config.topic!r}: {n} records not "
                    f"acknowledged after {timeout_s:.1f} s"
                    f"{self._last_error_suffix()}"
                )
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
                close_producer(producer, 5.0 if delivered else 0.0)
            log.info("kafka sink %s closed: %s", self.config.topic, self.stats())

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        c = self.config
        return (
            f"KafkaSink(bootstrap_servers={c.bootstrap_servers!r}, topic={c.topic!r}, "
            f"tracks_topic={c.tracks_topic!r}, events_topic={c.events_topic!r}, security_protocol="
            f"{c.security.security_protocol!r}, idempotent={self.idempotent})"
        )

    # -- internals -------------------------------------------------------------------------
    def _fit(self, record: dict[str, Any], value: bytes) -> tuple[list[bytes], int]:
        """``record`` (serialised: ``value``) -> the values to send, coarsened masks."""
        if len(value) <= self._budget:
            return [value], 0
        if self.config.oversize_policy == "error":
            raise SinkError(
                f"kafka topic {self.config.topic!r}: frame "
                f"{record['stream_id']}:{record['frame_index']} is "
                f"{len(value)} bytes, over max_request_size "
                f"{self.config.max_request_size} (oversize_policy=error)"
            )
        return fit_record(record, self._budget)

    def _publish_track_events(self, events: list[dict[str, Any]]) -> None:
        topic = self.config.tracks_topic
        if topic is None or not events:
            return
        self._enqueue(
            [
                (topic, ev["stream_id"].encode("utf-8"), dumps_json(ev), headers(TRACK_SCHEMA))
                for ev in events
            ]
        )
        with self._cond:
            self._stats["track_events"] += len(events)

    def _connect(self, first: bool = False) -> Any:
        producer, self.idempotent = connect_producer(self.config, first=first)
        return producer

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
                fits = not self._pending or (
                    len(self._pending) + need_n <= cfg.buffer_max_records
                    and self._pending_bytes + need_b <= cfg.buffer_max_bytes
                )
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
                    log.info(
                        "kafka sink: buffer full (%d records, %d bytes unacknowledged); "
                        "write blocks",
                        len(self._pending),
                        self._pending_bytes,
                    )
                if time.monotonic() - start >= cfg.block_timeout_s:
                    self._stats["blocked_s"] += time.monotonic() - start
                    raise SinkError(
                        f"kafka topic {cfg.topic!r}: buffer full for {cfg.block_timeout_s:.1f} s "
                        f"({len(self._pending)} records unacknowledged; broker "
                        f"{cfg.bootstrap_servers} unreachable?){self._last_error_suffix()}"
                    )
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
                        f"{self.config.delivery_timeout_s:.1f} s{self._last_error_suffix()}"
                    )
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
            close_producer(old, 0.0)
        log.warning(
            "kafka sink: producer failed (%s); reconnecting to re-send %d unacknowledged records",
            self._last_error or "?",
            n,
        )
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
                fut = producer.send(rec.topic, value=rec.value, key=rec.key, headers=rec.headers)
            except Exception as exc:  # noqa: BLE001 - synchronous send failure
                with self._cond:
                    self._stats["failed"] += 1
                    self._last_error = error_text(exc)
                    if is_permanent(exc):
                        self._fatal = SinkError(f"kafka topic {rec.topic!r}: {error_text(exc)}")
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
            self._last_error = error_text(exc)
            if is_permanent(exc):
                self._fatal = SinkError(f"kafka topic {rec.topic!r}: {error_text(exc)}")
            elif not self._needs_recovery:
                self._needs_recovery = True
                self._next_recovery = time.monotonic()
            self._cond.notify_all()
