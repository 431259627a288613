"""The latest value of every key of a (compacted) topic, read from the start.

Contract: ``TopicTable(kafka, topic).catch_up()`` reads every partition of ``topic`` from
where it left off up to the end offsets the broker reports now, keeping only the newest
value per key (a ``None`` value, a tombstone, deletes the key), so memory is bounded by the
number of live keys, not by the topic's history. After ``catch_up`` returns, every record
acknowledged before the call is reflected in ``get``. Thread-safe (one lock). Records
of one producer call must be sent one per request (``JobsKafka.producer``): tansu reports
a partition's end as the start of its last record batch, which is then the last record.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

from vis_pipeline.worker.kafka_io import JobsKafka


class TopicTable:
    """Args:
    kafka: connection settings.
    topic: the topic to mirror.
    """

    def __init__(self, kafka: JobsKafka, topic: str) -> None:
        self.kafka = kafka
        self.topic = topic
        self._values: dict[str, bytes] = {}
        self._lock = threading.Lock()
        self._consumer: Any = None
        self._parts: set[int] = set()
        #: records read so far (including those later replaced)
        self.records = 0

    def catch_up(self, timeout_s: float = 30.0) -> None:
        """Read up to the end offsets reported now.

        Raises:
            TimeoutError: the end was not reached within ``timeout_s``.
        """
        with self._lock:
            self._catch_up(time.monotonic() + timeout_s)

    def _catch_up(self, deadline: float) -> None:
        from kafka import TopicPartition

        if self._consumer is None:
            self._consumer = self.kafka.consumer(client_id=f"{self.kafka.client_id}-table")
        consumer = self._consumer
        known = consumer.partitions_for_topic(self.topic) or set()
        if known != self._parts:  # first call, or partitions were added
            tps = [TopicPartition(self.topic, p) for p in sorted(known)]
            new = [tp for tp in tps if tp.partition not in self._parts]
            consumer.assign(tps)
            if new:
                consumer.seek_to_beginning(*new)
            self._parts = set(known)
        tps = list(consumer.assignment())
        if not tps:
            return
        ends = consumer.end_offsets(tps)
        while any(consumer.position(tp) < ends[tp] for tp in tps):
            if time.monotonic() >= deadline:
                raise TimeoutError(f"topic {self.topic}: not read to its end in time")
            for batch in consumer.poll(timeout_ms=200).values():
                for msg in batch:
                    self.records += 1
                    key = (msg.key or b"").decode("utf-8", "replace")
                    if msg.value is None:
                        self._values.pop(key, None)
                    else:
                        self._values[key] = msg.value

    def get(self, key: str) -> bytes | None:
        with self._lock:
            return self._values.get(key)

    def items(self) -> Iterator[tuple[str, bytes]]:
        """A snapshot of (key, latest value) pairs."""
        with self._lock:
            snapshot = list(self._values.items())
        return iter(snapshot)

    def close(self) -> None:
        with self._lock:
            if self._consumer is not None:
                self._consumer.close()
                self._consumer = None
