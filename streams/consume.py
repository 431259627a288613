"""Read ``vis.frame/1`` records back from Kafka: validate, reassemble parts, de-duplicate.

Contract: ``FrameReader(topic, bootstrap_servers=...).frames()`` yields one ``ConsumedFrame``
per frame, in partition order (so in order per stream), with split frames
(``part``/``parts``) put back together and, by default, repeated (stream_id, frame_index)
pairs skipped. Malformed records (not JSON, wrong schema, bad RLE) are counted and skipped,
never raised. Masks are decoded only when ``ConsumedFrame.result()`` asks for them.
``FrameAssembler`` and ``TrackTimelines`` hold the logic without any I/O.

CLI::

    python -m streams.consume --topic vis.frames --bootstrap 127.0.0.1:9092 \\
        [--group G] [--from earliest|latest|offset:N|timestamp:MS] [--max-records N] \\
        [--timeout S] [--jsonl OUT]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import sys
import threading
import time
from collections.abc import Iterable, Iterator
from typing import Any, Self

from streams.kafka_sink import KafkaSecurity
from vis.schema import SchemaError, decode_mask, decode_record, validate_record
from vis.types import FrameResult

log = logging.getLogger(__name__)

UNKNOWN_STREAM = "?"


# -- decoded frames -----------------------------------------------------------------------------
@dataclasses.dataclass
class ConsumedFrame:
    """One complete frame record read from Kafka.

    Attributes:
        record: the ``vis.frame/1`` dict (parts joined, ``part``/``parts`` removed).
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
        """The ``FrameResult``; masks are decoded now (cached) unless ``with_masks=False``."""
        if not with_masks:
            return decode_record(self.record, with_masks=False)
        if self._result is None:
            self._result = decode_record(self.record, with_masks=True)
        return self._result


@dataclasses.dataclass
class StreamCounts:
    """Per-stream counters of what was read."""

    frames: int = 0
    duplicates: int = 0
    malformed: int = 0
    first_frame: int | None = None
    last_frame: int | None = None
    track_ids: set[int] = dataclasses.field(default_factory=set)

    @property
    def missing(self) -> int:
        """Frame indices between first and last that were not read."""
        if self.first_frame is None or self.last_frame is None:
            return 0
        return self.last_frame - self.first_frame + 1 - self.frames


class FrameAssembler:
    """Raw record values -> complete ``vis.frame/1`` dicts, counting what is wrong.

    Args:
        dedup: drop frames whose (stream_id, frame_index) was already returned.
        validate_masks: decode every RLE once to reject bad ones (costs ~1 ms per 720p mask).
    """

    def __init__(self, *, dedup: bool = True, validate_masks: bool = True) -> None:
        self.dedup = dedup
        self.validate_masks = validate_masks
        self.records = 0
        self.malformed = 0
        self.duplicates = 0
        self.streams: dict[str, StreamCounts] = {}
        self._seen: dict[str, set[int]] = {}
        self._parts: dict[tuple[str, int], dict[int, dict[str, Any]]] = {}
        self.last_error = ""

    @property
    def incomplete(self) -> int:
        """Split frames still missing parts."""
        return len(self._parts)

    def _counts(self, stream_id: str) -> StreamCounts:
        c = self.streams.get(stream_id)
        if c is None:
            c = self.streams[stream_id] = StreamCounts()
        return c

    def add(self, value: bytes | str | None, key: bytes | None = None) -> dict[str, Any] | None:
        """One record value -> the complete frame dict it finishes, or None."""
        self.records += 1
        try:
            rec = self._parse(value)
        except Exception as exc:  # noqa: BLE001 - any unreadable record is counted, not fatal
            self.malformed += 1
            self.last_error = str(exc)
            sid = key.decode("utf-8", "replace") if key else UNKNOWN_STREAM
            self._counts(sid).malformed += 1
            log.debug("malformed record (key %r): %s", sid, exc)
            return None
        sid, fi = rec["stream_id"], rec["frame_index"]
        if self.dedup and fi in self._seen.get(sid, ()):
            self.duplicates += 1
            self._counts(sid).duplicates += 1
            return None
        if "parts" in rec:
            rec = self._join(rec)
            if rec is None:
                return None
        if self.dedup:
            self._seen.setdefault(sid, set()).add(fi)
        c = self._counts(sid)
        c.frames += 1
        c.first_frame = fi if c.first_frame is None else min(c.first_frame, fi)
        c.last_frame = fi if c.last_frame is None else max(c.last_frame, fi)
        c.track_ids.update(i.get("track_id", -1) for i in rec["instances"])
        c.track_ids.discard(-1)
        return rec

    def _parse(self, value: bytes | str | None) -> dict[str, Any]:
        if value is None:
            raise SchemaError("empty record")
        try:
            obj = json.loads(value)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise SchemaError(f"not JSON: {exc}") from exc
        rec = validate_record(obj)
        if "parts" in rec or "part" in rec:
            part, parts = rec.get("part"), rec.get("parts")
            if (not isinstance(part, int) or not isinstance(parts, int) or isinstance(part, bool)
                    or not 0 <= part < parts):
                raise SchemaError(f"bad part {part!r} of {parts!r}")
        for inst in rec["instances"]:
            if not isinstance(inst.get("track_id", -1), int):
                raise SchemaError("track_id is not an integer")
            if self.validate_masks:
                decode_mask(inst["mask"])
        return rec

    def _join(self, rec: dict[str, Any]) -> dict[str, Any] | None:
        key = (rec["stream_id"], rec["frame_index"])
        got = self._parts.setdefault(key, {})
        got[rec["part"]] = rec
        if len(got) < rec["parts"]:
            return None
        del self._parts[key]
        ordered = [got[i] for i in range(rec["parts"])]
        head = {k: v for k, v in ordered[0].items() if k not in ("part", "parts", "instances")}
        head["instances"] = [inst for p in ordered for inst in p["instances"]]
        return head


# -- track timelines ----------------------------------------------------------------------------
@dataclasses.dataclass
class Timeline:
    """One track's presence over a stream: frames (sorted), boxes and scores per frame."""

    stream_id: str
    track_id: int
    class_id: int
    label: str
    frames: list[int] = dataclasses.field(default_factory=list)
    boxes: list[list[float]] = dataclasses.field(default_factory=list)
    scores: list[float] = dataclasses.field(default_factory=list)

    @property
    def first_frame(self) -> int:
        return self.frames[0]

    @property
    def last_frame(self) -> int:
        return self.frames[-1]

    @property
    def frame_count(self) -> int:
        return len(self.frames)


class TrackTimelines:
    """Accumulates per-track timelines from frame records (any order, duplicates ignored)."""

    def __init__(self) -> None:
        self._tracks: dict[tuple[str, int], dict[int, tuple[list[float], float]]] = {}
        self._meta: dict[tuple[str, int], tuple[int, str]] = {}

    def add(self, record: dict[str, Any]) -> None:
        sid, fi = record["stream_id"], record["frame_index"]
        for inst in record["instances"]:
            tid = int(inst.get("track_id", -1))
            if tid < 0:
                continue
            key = (sid, tid)
            self._meta.setdefault(key, (int(inst["class_id"]),
                                        str(inst.get("label", inst["class_id"]))))
            self._tracks.setdefault(key, {})[fi] = (list(inst["bbox"]), float(inst["score"]))

    def timelines(self, stream_id: str | None = None) -> list[Timeline]:
        """All timelines (of one stream), sorted by stream then first frame."""
        out = []
        for (sid, tid), by_frame in self._tracks.items():
            if stream_id is not None and sid != stream_id:
                continue
            cid, label = self._meta[(sid, tid)]
            t = Timeline(sid, tid, cid, label)
            for fi in sorted(by_frame):
                box, score = by_frame[fi]
                t.frames.append(fi)
                t.boxes.append(box)
                t.scores.append(score)
            out.append(t)
        return sorted(out, key=lambda t: (t.stream_id, t.first_frame, t.track_id))


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
    """Iterates the frames of a ``vis.frame/1`` topic.

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

    def __init__(self, topic: str, *, bootstrap_servers: str, group_id: str | None = None,
                 partitions: Iterable[int] | None = None, start: str = "earliest",
                 dedup: bool = True, validate_masks: bool = True,
                 security: KafkaSecurity | None = None, client_id: str = "vis-consume",
                 max_poll_interval_ms: int = 5000,
                 consumer_kwargs: dict[str, Any] | None = None) -> None:
        from kafka import KafkaConsumer

        if group_id is not None and partitions is not None:
            raise ValueError("give either group_id or partitions, not both")
        self.topic = topic
        self.group_id = group_id
        self.start_kind, self.start_value = parse_start(start)
        self.assembler = FrameAssembler(dedup=dedup, validate_masks=validate_masks)
        kwargs: dict[str, Any] = {
            "bootstrap_servers": [s.strip() for s in bootstrap_servers.split(",") if s.strip()],
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

    def frames(self, *, max_records: int | None = None, idle_s: float | None = 5.0,
               timeout_s: float | None = None, join_timeout_s: float = 30.0,
               stop: threading.Event | None = None) -> Iterator[ConsumedFrame]:
        """Yield complete frames.

        Args:
            max_records: stop after this many raw records (None: no limit).
            idle_s: stop after this long without a record once partitions are assigned
                (None: never).
            timeout_s: stop after this long in total (None: never).
            join_timeout_s: stop if no partition is assigned within this long.
            stop: stop (between polls) once this event is set.
        """
        start = time.monotonic()
        deadline = start + timeout_s if timeout_s is not None else float("inf")
        if self.group_id is None and not self._positioned:
            if not self._assign(min(deadline, start + 30.0)):
                log.warning("topic %s not found", self.topic)
                return
            self._positioned = True
        last = None
        n = 0
        while True:
            now = time.monotonic()
            if now >= deadline or (stop is not None and stop.is_set()):
                return
            if last is None:
                if self.consumer.assignment():
                    last = now
                elif now - start >= join_timeout_s:
                    log.warning("no partition of %s assigned after %.0f s", self.topic,
                                join_timeout_s)
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
                        yield ConsumedFrame(rec, partition=msg.partition, offset=msg.offset,
                                            kafka_timestamp_ms=msg.timestamp,
                                            received_s=time.time())
                    if max_records is not None and n >= max_records:
                        self._commit()
                        return
            if got:
                last = time.monotonic()
                self._commit()

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


# -- CLI ----------------------------------------------------------------------------------------
def format_summary(assembler: FrameAssembler) -> str:
    """A per-stream table of frames, tracks, missing, duplicates and malformed records."""
    rows = [("stream", "frames", "first", "last", "missing", "tracks", "duplicates",
             "malformed")]
    for sid in sorted(assembler.streams):
        c = assembler.streams[sid]
        rows.append((sid, str(c.frames), str(c.first_frame if c.first_frame is not None else "-"),
                     str(c.last_frame if c.last_frame is not None else "-"), str(c.missing),
                     str(len(c.track_ids)), str(c.duplicates), str(c.malformed)))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(v.ljust(w) for v, w in zip(r, widths)).rstrip() for r in rows]
    lines.append(f"records {assembler.records}, malformed {assembler.malformed}, duplicates "
                 f"{assembler.duplicates}, incomplete split frames {assembler.incomplete}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m streams.consume",
                                 description="Read vis.frame/1 records from a Kafka topic.")
    ap.add_argument("--topic", default="vis.frames")
    ap.add_argument("--bootstrap", default="127.0.0.1:9092", help="host:port[,host:port]")
    ap.add_argument("--group", default=None, help="consumer group (default: no group)")
    ap.add_argument("--partitions", default=None, help="comma-separated partitions (no group)")
    ap.add_argument("--from", dest="start", default="earliest",
                    help="earliest | latest | offset:N | timestamp:MS")
    ap.add_argument("--max-records", type=int, default=None)
    ap.add_argument("--timeout", type=float, default=5.0,
                    help="stop after this many seconds without a new record")
    ap.add_argument("--no-dedup", action="store_true", help="keep repeated frames")
    ap.add_argument("--no-validate-masks", action="store_true", help="skip RLE checks")
    ap.add_argument("--jsonl", default=None, help="write frames as JSON lines ('-': stdout)")
    ap.add_argument("--security-protocol", default="PLAINTEXT")
    ap.add_argument("--sasl-mechanism", default=None)
    ap.add_argument("--sasl-username", default=None)
    ap.add_argument("--sasl-password-env", default=None,
                    help="NAME of the environment variable holding the SASL password")
    ap.add_argument("--ssl-cafile", default=None)
    ap.add_argument("-v", "--verbose", action="store_true")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    if not args.verbose:
        logging.getLogger("kafka").setLevel(logging.CRITICAL)
    try:
        parse_start(args.start)
        security = KafkaSecurity(
            security_protocol=args.security_protocol, sasl_mechanism=args.sasl_mechanism,
            sasl_plain_username=args.sasl_username, sasl_password_env=args.sasl_password_env,
            ssl_cafile=args.ssl_cafile)
        partitions = ([int(p) for p in args.partitions.split(",")] if args.partitions
                      else None)
        reader = FrameReader(args.topic, bootstrap_servers=args.bootstrap, group_id=args.group,
                             partitions=partitions, start=args.start,
                             dedup=not args.no_dedup,
                             validate_masks=not args.no_validate_masks, security=security)
    except Exception as exc:  # noqa: BLE001 - report any setup error in one line
        print(f"error: {exc}", file=sys.stderr)
        return 2
    out = None
    try:
        if args.jsonl:
            out = sys.stdout if args.jsonl == "-" else open(args.jsonl, "w", encoding="utf-8")  # noqa: SIM115
        for frame in reader.frames(max_records=args.max_records, idle_s=args.timeout):
            if out is not None:
                out.write(json.dumps(frame.record, separators=(",", ":")) + "\n")
    except KeyboardInterrupt:
        pass
    finally:
        if out is not None and out is not sys.stdout:
            out.close()
        reader.close()
    print(format_summary(reader.assembler), file=sys.stderr if args.jsonl == "-" else sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
