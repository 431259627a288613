"""Read ``vis.frame`` records back from Kafka: validate, reassemble parts, de-duplicate.

Contract: ``FrameReader(topic, bootstrap_servers=...).frames()`` yields one ``ConsumedFrame``
per frame, in partition order (so in order per stream), with split frames
(``part``/``parts``) put back together and, by default, repeated (stream_id, frame_index)
pairs skipped (``FrameAssembler``, in ``records``). Malformed records (not JSON, wrong
schema, bad RLE, a field out of range or over a limit of ``vis.schema.validate_record``)
are counted and skipped, never raised, so ``ConsumedFrame.result()`` decodes every frame
it yields within bounded memory. Masks are decoded only when ``ConsumedFrame.result()``
asks for them. ``EventReader(topic, ...).events()`` yields the
``vis.event/1`` analytics events of an events topic the same way (checked, de-duplicated,
in order per stream). The CLI is ``python -m streams.kafka``.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Iterable, Iterator
from typing import Any, Self

from streams.kafka.config import KafkaSecurity, servers
from streams.kafka.events import EventAssembler
from streams.kafka.records import FrameAssembler
from vis.schema import decode_record
from vis.types import FrameResult

log = logging.getLogger(__name__)


# -- decoded frames -----------------------------------------------------------------------------
@dataclasses.dataclass
class ConsumedFrame:
    """One complete frame record read from Kafka.

    Attributes:
        record: the ``vis.frame`` dict (parts joined, ``part``/``parts`` removed).
        partition, offset: where its (last) record was read.
        kafka_timestamp_ms: the record's Kafka timestamp (producer time).
        received_s: ``time.time()`` when it was read.
    """

    record: dict[str, Any]
    partition: int = -1
    offset: int = -1
    kafka_timestamp_ms: int = -1
    received_s: float = 0.0
    _result: FrameResult | None = dataclasses.field(default=None, repr=False)

    @property
    def stream_id(self) -> str:
        return self.record["stream_id"]

    @property
    def frame_index(self) -> int:
        return self.record["frame_index"]

    def result(self, with_masks: bool = True) -> FrameResult:
        """The ``FrameResult``; masks are decoded now (cached) unless ``with_masks=False``.

        Raises:
            SchemaError: only for a frame read with ``validate_masks=False`` whose masks do
                not decode (the reader checked everything else).
        """
        if not with_masks:
            return decode_record(self.record, with_masks=False)
        if self._result is None:
            self._result = decode_record(self.record, with_masks=True)
        return self._result


# -- the Kafka reader ---------------------------------------------------------------------------
def parse_start(text: str) -> tuple[str, int | None]:
    """``earliest`` | ``latest`` | ``offset:N`` | ``timestamp:MS`` -> (kind, number)."""
    if text in ("earliest", "latest"):
        return text, None
    kind, _, num = text.partition(":")
    if kind in ("offset", "timestamp") and num.lstrip("-").isdigit() and int(num) >= 0:
        return kind, int(num)
    raise ValueError(f"start={text!r} must be earliest, latest, offset:N or timestamp:MS")


class FrameReader:
    """Iterates the frames of a ``vis.frame`` topic.

    Args:
        topic: the frame topic.
        bootstrap_servers: ``host:port[,host:port]``.
        group_id: consumer group (partitions shared with the group's other members; offsets
            committed after each batch). None reads partitions directly.
        partitions: explicit partitions (no group); None means all.
        start: ``earliest``, ``latest``, ``offset:N`` or ``timestamp:MS`` (in a group,
            ``earliest``/``latest`` apply only where the group has no committed offset).
        dedup, validate_masks: see ``FrameAssembler``.
        security: ``KafkaSecurity`` passed to the consumer.
        max_poll_interval_ms: small values make a group join quickly (tansu waits for the
            rebalance timeout before a member joins); a member that spends longer than this
            between polls (at most 100 frames per poll) is dropped from the group, so raise
            it for slow per-frame work.
        consumer_kwargs: extra ``KafkaConsumer`` arguments.
    """

    def __init__(
        self,
        topic: str,
        *,
        bootstrap_servers: str,
        group_id: str | None = None,
        partitions: Iterable[int] | None = None,
        start: str = "earliest",
        dedup: bool = True,
        validate_masks: bool = True,
        security: KafkaSecurity | None = None,
        client_id: str = "vis-consume",
        max_poll_interval_ms: int = 5000,
        consumer_kwargs: dict[str, Any] | None = None,
    ) -> None:
        from kafka import KafkaConsumer

        if group_id is not None and partitions is not None:
            raise ValueError("give either group_id or partitions, not both")
        self.topic = topic
        self.group_id = group_id
        self.start_kind, self.start_value = parse_start(start)
        self.assembler = FrameAssembler(dedup=dedup, validate_masks=validate_masks)
        kwargs: dict[str, Any] = {
            "bootstrap_servers": servers(bootstrap_servers),
            "client_id": client_id,
            "group_id": group_id,
            "auto_offset_reset": "latest" if self.start_kind == "latest" else "earliest",
            "enable_auto_commit": False,
            "max_poll_interval_ms": max_poll_interval_ms,
            "session_timeout_ms": max(6000, max_poll_interval_ms),
            "heartbeat_interval_ms": 1000,
            "max_partition_fetch_bytes": 16 * 1024 * 1024,
            "request_timeout_ms": max(30000, max_poll_interval_ms + 5000),
            "bootstrap_timeout_ms": 10000,
            **(security or KafkaSecurity()).client_kwargs(),
            **(consumer_kwargs or {}),
        }
        self.consumer = KafkaConsumer(**kwargs)
        self._positioned = False
        #: partitions this reader holds now (updated on each group rebalance).
        self.assigned: list[int] = []
        # Records older than this are skipped until a partition reaches it: tansu answers
        # "latest" with the last batch's base offset, not the log end, so seeking to the end
        # (or past the last timestamp) can land before records that are not wanted.
        self._min_ts: float | None = None
        if self.start_kind == "timestamp":
            self._min_ts = float(self.start_value or 0)
        elif self.start_kind == "latest" and group_id is None:
            self._min_ts = time.time() * 1000.0
        self._ts_reached: set[int] = set()
        self._seeked: set[int] = set()
        #: records skipped by that rule.
        self.skipped_old = 0
        if group_id is not None:
            from kafka import ConsumerRebalanceListener

            reader = self

            class _Seek(ConsumerRebalanceListener):
                def on_partitions_revoked(self, revoked: Any) -> None:
                    reader.assigned = []

                def on_partitions_assigned(self, assigned: Any) -> None:
                    reader.assigned = sorted(tp.partition for tp in assigned)
                    log.info("group %s: assigned %s", group_id, reader.assigned)
                    fresh = [tp for tp in assigned if tp.partition not in reader._seeked]
                    if reader.start_kind in ("offset", "timestamp") and fresh:
                        reader._seek(fresh)  # once per partition, not on every rebalance
                    reader._seeked.update(tp.partition for tp in fresh)

            self.consumer.subscribe([topic], listener=_Seek())
        else:  # position now, so that "latest" means "from the time the reader was made"
            self._partitions = None if partitions is None else sorted(set(partitions))
            self._positioned = self._assign(time.monotonic() + 10.0)

    def _assign(self, deadline: float) -> bool:
        """Assign the explicit partitions once the topic's metadata is known."""
        from kafka import TopicPartition

        parts = self._partitions
        if parts is None:
            while True:
                known = self.consumer.partitions_for_topic(self.topic)
                if known:
                    parts = sorted(known)
                    break
                if time.monotonic() >= deadline:
                    return False
                time.sleep(0.2)
        tps = [TopicPartition(self.topic, p) for p in parts]
        self.consumer.assign(tps)
        self._seek(tps)
        for tp in tps:  # resolve the seek now (kafka-python defers it to the first poll)
            self.consumer.position(tp, timeout_ms=10000)
        self.assigned = list(parts)
        return True

    def _seek(self, tps: list[Any]) -> None:
        kind, value = self.start_kind, self.start_value
        if kind == "earliest":
            self.consumer.seek_to_beginning(*tps)
        elif kind == "latest":
            self.consumer.seek_to_end(*tps)
        elif kind == "offset":
            for tp in tps:
                self.consumer.seek(tp, value)
        else:
            found = self.consumer.offsets_for_times({tp: value for tp in tps})
            ends = self.consumer.end_offsets(tps)
            for tp in tps:
                hit = found.get(tp)
                self.consumer.seek(tp, hit.offset if hit is not None else ends[tp])

    def frames(
        self,
        *,
        max_records: int | None = None,
        idle_s: float | None = 5.0,
        timeout_s: float | None = None,
        join_timeout_s: float = 30.0,
        stop: threading.Event | None = None,
        to_end: bool = False,
    ) -> Iterator[ConsumedFrame]:
        """Yield complete frames.

        Args:
            max_records: stop after this many raw records (None: no limit).
            idle_s: stop after this long without a record once partitions are assigned
                (None: never).
            timeout_s: stop after this long in total (None: never).
            join_timeout_s: stop if no partition is assigned within this long.
            stop: stop (between polls) once this event is set.
            to_end: stop once every partition assigned at the start has been read up to
                the end it had then (the topic as it stood: an export, a check that every
                frame arrived), however slowly the broker serves it; ``idle_s`` still stops
                a read that gets nothing for that long.
        """
        start = time.monotonic()
        deadline = start + timeout_s if timeout_s is not None else float("inf")
        if self.group_id is None and not self._positioned:
            if not self._assign(min(deadline, start + 30.0)):
                log.warning("topic %s not found", self.topic)
                return
            self._positioned = True
        last = None
        ends: dict | None = None
        n = 0
        while True:
            now = time.monotonic()
            if now >= deadline or (stop is not None and stop.is_set()):
                return
            if last is None:
                if self.consumer.assignment():
                    last = now
                    if to_end:
                        ends = self.consumer.end_offsets(list(self.consumer.assignment()))
                elif now - start >= join_timeout_s:
                    log.warning(
                        "no partition of %s assigned after %.0f s", self.topic, join_timeout_s
                    )
                    return
            if idle_s is not None and last is not None and now - last >= idle_s:
                return
            # small batches: a group member must poll again within max_poll_interval_ms
            batch = self.consumer.poll(timeout_ms=200, max_records=100)
            got = False
            for tp in sorted(batch, key=lambda t: t.partition):
                for msg in batch[tp]:
                    got = True
                    n += 1
                    if self._min_ts is not None and tp.partition not in self._ts_reached:
                        if msg.timestamp < self._min_ts:
                            self.skipped_old += 1
                            continue
                        self._ts_reached.add(tp.partition)
                    rec = self.assembler.add(msg.value, msg.key)
                    if rec is not None:
                        yield ConsumedFrame(
                            rec,
                            partition=msg.partition,
                            offset=msg.offset,
                            kafka_timestamp_ms=msg.timestamp,
                            received_s=time.time(),
                        )
                    if max_records is not None and n >= max_records:
                        self._commit()
                        return
            if got:
                last = time.monotonic()
                self._commit()
            if ends is not None and self._reached(ends):
                return

    def _reached(self, ends: dict) -> bool:
        """Every partition of ``ends`` read up to its offset there (one it is no longer
        assigned, after a rebalance, is another member's to read)."""
        held = self.consumer.assignment()
        return all(self.consumer.position(tp) >= end for tp, end in ends.items() if tp in held)

    def _commit(self) -> None:
        if self.group_id is None:
            return
        try:
            self.consumer.commit()
        except Exception as exc:  # noqa: BLE001 - a rebalance may void the commit
            log.warning("group %s: offset commit failed: %s", self.group_id, exc)

    def assigned_partitions(self) -> list[int]:
        return sorted(tp.partition for tp in self.consumer.assignment())

    def close(self) -> None:
        self.consumer.close(autocommit=False)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class EventReader(FrameReader):
    """Iterates the analytics events (``vis.event/1`` dicts) of an events topic.

    Takes ``FrameReader``'s arguments (``validate_masks`` is ignored); ``dedup`` drops
    re-sent copies of an event. Malformed records are counted in ``assembler.malformed``.
    """

    def __init__(self, topic: str, *, dedup: bool = True, **kwargs: Any) -> None:
        kwargs.setdefault("client_id", "vis-consume-events")
        super().__init__(topic, dedup=dedup, **kwargs)
        self.assembler = EventAssembler(dedup=dedup)  # type: ignore[assignment]

    def events(self, **kwargs: Any) -> Iterator[dict[str, Any]]:
        """Yield events; takes the stopping arguments of ``FrameReader.frames``."""
        for item in self.frames(**kwargs):
            yield item.record
