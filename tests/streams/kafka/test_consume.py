"""The consumer helper: malformed records, consumer groups, start positions, the CLI."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from kafka import KafkaProducer
from kafka.partitioner.default import murmur2

from streams.kafka import FrameAssembler, FrameReader, KafkaSink, dumps_json, main, parse_start
from vis.schema import encode_record

from .conftest import make_results, read_frames


def _streams_covering(n_partitions: int, per_partition: int = 1) -> list[str]:
    """Stream ids whose keys land on every partition (kafka-python's default partitioner)."""
    chosen: dict[int, list[str]] = {p: [] for p in range(n_partitions)}
    i = 0
    while any(len(v) < per_partition for v in chosen.values()):
        sid = f"cam-{i}"
        p = (murmur2(sid.encode()) & 0x7FFFFFFF) % n_partitions
        if len(chosen[p]) < per_partition:
            chosen[p].append(sid)
        i += 1
    return [s for p in sorted(chosen) for s in chosen[p]]


def _sink(broker, topic, **kw):
    return KafkaSink(
        bootstrap_servers=broker.bootstrap_servers, topic=topic, tracks_topic=None, **kw
    )


def test_malformed_records_are_counted_and_skipped(broker, topic):
    results = make_results(["cam-m"], 6)
    good = [encode_record(r) for r in results]
    bad_schema = {**good[0], "schema": "vis.frame/9"}
    bad_rle = json.loads(json.dumps(good[1]))
    bad_rle["instances"][0]["mask"]["counts"] = "!!not-rle!!"
    short_rle = json.loads(json.dumps(good[2]))
    short_rle["instances"][0]["mask"]["counts"] = short_rle["instances"][0]["mask"]["counts"][:5]
    truncated = dumps_json(good[3])[: len(dumps_json(good[3])) // 2]
    malformed = [
        dumps_json(bad_schema),
        dumps_json(bad_rle),
        dumps_json(short_rle),
        truncated,
        b"[1, 2, 3]",
        b"\xff\xfe not utf8",
        b"",
    ]
    producer = KafkaProducer(bootstrap_servers=broker.bootstrap_servers)
    values = []
    for i, rec in enumerate(good):  # interleave good and bad
        values.append(dumps_json(rec))
        if i < len(malformed):
            values.append(malformed[i])
    values += malformed[len(good) :]
    for v in values:
        producer.send(topic, key=b"cam-m", value=v, partition=0)
    producer.send(topic, key=None, value=b"{}", partition=0)  # no key, no schema
    producer.flush()
    producer.close()

    frames, reader = read_frames(broker.bootstrap_servers, topic, idle_s=1.5)
    a = reader.assembler
    assert [f.record for f in frames] == good
    assert a.malformed == len(malformed) + 1
    assert a.streams["cam-m"].malformed == len(malformed)
    assert a.streams["?"].malformed == 1
    assert a.streams["cam-m"].frames == len(good)


def test_assembler_dedups_and_counts():
    results = make_results(["d"], 3)
    vals = [dumps_json(encode_record(r)) for r in results]
    a = FrameAssembler()
    out = [a.add(v) for v in vals + vals[:2]]
    assert [o is not None for o in out] == [True, True, True, False, False]
    assert a.duplicates == 2 and a.streams["d"].duplicates == 2 and a.streams["d"].missing == 0
    size_not_a_list = (
        b'{"schema":"vis.frame/1","stream_id":"d","frame_index":9,'
        b'"timestamp_ms":0,"keyframe":true,"width":4,"height":4,"instances":'
        b'[{"class_id":1,"score":1,"bbox":[0,0,1,1],"mask":{"size":4}}]}'
    )
    weird = [size_not_a_list, b"[" * 100000, b"null"]
    assert all(a.add(v, b"d") is None for v in weird)
    assert a.malformed == len(weird) and a.streams["d"].malformed == len(weird)
    b = FrameAssembler(dedup=False)
    assert all(b.add(v) is not None for v in vals + vals[:2])
    assert b.add(None) is None and b.malformed == 1


@pytest.mark.slow
def test_two_consumers_in_one_group_split_partitions(broker, topic):
    n_parts = 4
    streams = _streams_covering(n_parts)
    results = make_results(streams, 8)
    probe = _sink(broker, topic, topic_partitions=n_parts)  # creates the topic
    probe.close()

    readers = [
        FrameReader(
            topic,
            bootstrap_servers=broker.bootstrap_servers,
            group_id=f"g-{topic}",
            max_poll_interval_ms=5000,
        )
        for _ in range(2)
    ]
    got: list[list] = [[], []]
    stop = threading.Event()

    def run(i: int) -> None:
        for fr in readers[i].frames(idle_s=None, timeout_s=40, stop=stop):
            got[i].append(fr)

    threads = [threading.Thread(target=run, args=(i,), daemon=True) for i in range(2)]
    for t in threads:
        t.start()
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:  # both members joined and the split is complete
            a, b = readers[0].assigned, readers[1].assigned
            if a and b and sorted(a + b) == list(range(n_parts)):
                break
            time.sleep(0.1)
        else:
            pytest.fail(f"group did not settle: {readers[0].assigned} {readers[1].assigned}")
        assignment = [list(readers[0].assigned), list(readers[1].assigned)]

        with _sink(broker, topic) as sink:
            for r in results:
                sink.write(r)
        deadline = time.monotonic() + 20
        while len(got[0]) + len(got[1]) < len(results) and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        stop.set()
        for t in threads:
            t.join(10)
        for r in readers:
            r.close()

    assert set(assignment[0]).isdisjoint(assignment[1])
    assert got[0] and got[1], "each member should read its share"
    for i in range(2):
        assert {f.partition for f in got[i]} <= set(assignment[i])
    streams_a = {f.stream_id for f in got[0]}
    streams_b = {f.stream_id for f in got[1]}
    assert streams_a.isdisjoint(streams_b) and streams_a | streams_b == set(streams)
    keys = sorted((f.stream_id, f.frame_index) for f in got[0] + got[1])
    assert keys == sorted((r.stream_id, r.frame_index) for r in results)


@pytest.mark.slow
def test_start_positions(broker, topic):
    results = make_results(["pos"], 10)
    with _sink(broker, topic, topic_partitions=1) as sink:
        for r in results[:5]:
            sink.write(r)
        sink.flush()
        time.sleep(0.05)
        t_ms = int(time.time() * 1000)
        time.sleep(0.05)
        for r in results[5:]:
            sink.write(r)

    def indices(start: str) -> list[int]:
        frames, _ = read_frames(broker.bootstrap_servers, topic, start=start, idle_s=1.0)
        return [f.frame_index for f in frames]

    assert indices("earliest") == list(range(10))
    assert indices("offset:7") == [7, 8, 9]
    assert indices(f"timestamp:{t_ms}") == [5, 6, 7, 8, 9]
    assert indices("latest") == []
    # latest: only what is produced after the reader started
    reader = FrameReader(topic, bootstrap_servers=broker.bootstrap_servers, start="latest")
    time.sleep(0.05)
    more = make_results(["pos"], 12)[10:]
    with _sink(broker, topic) as sink:
        for r in more:
            sink.write(r)
    assert [f.frame_index for f in reader.frames(idle_s=1.5, timeout_s=15)] == [10, 11]
    reader.close()
    reader = FrameReader(
        topic, bootstrap_servers=broker.bootstrap_servers, partitions=[0], start="offset:2"
    )
    frames = list(reader.frames(max_records=3, idle_s=2.0))
    reader.close()
    assert [f.frame_index for f in frames] == [2, 3, 4]


def test_a_read_to_the_end_stops_at_the_topic_as_it_stood_without_an_idle_spell(broker, topic):
    """``to_end``: every partition read up to its end offset at the start, then the read
    stops, with no idle timeout to end it; frames written afterwards are not waited for.
    Without it this read would never end (no idle_s, no timeout)."""
    streams = _streams_covering(3)
    results = make_results(streams, 4)
    with _sink(broker, topic, topic_partitions=3) as sink:
        for r in results:
            sink.write(r)
    reader = FrameReader(topic, bootstrap_servers=broker.bootstrap_servers, dedup=False)
    got: list = []
    done = threading.Event()

    def read() -> None:
        got.extend(reader.frames(idle_s=None, to_end=True))
        done.set()

    worker = threading.Thread(target=read, daemon=True)
    worker.start()
    assert done.wait(60), "a read to the end did not stop at the end"
    reader.close()
    assert sorted((f.stream_id, f.frame_index) for f in got) == sorted(
        (r.stream_id, r.frame_index) for r in results
    )
    assert len(got) == len(results)  # no frame twice


@pytest.mark.parametrize(
    "text,expected",
    [
        ("earliest", ("earliest", None)),
        ("latest", ("latest", None)),
        ("offset:12", ("offset", 12)),
        ("timestamp:1700000000000", ("timestamp", 1700000000000)),
    ],
)
def test_parse_start(text, expected):
    assert parse_start(text) == expected


@pytest.mark.parametrize("text", ["", "first", "offset:", "offset:-1", "timestamp:x"])
def test_parse_start_rejects(text):
    with pytest.raises(ValueError, match="start="):
        parse_start(text)


def test_cli_summary_and_jsonl(broker, topic, tmp_path: Path, capsys):
    results = make_results(["cli-a", "cli-b"], 5)
    with _sink(broker, topic) as sink:
        for r in results:
            sink.write(r)
    producer = KafkaProducer(bootstrap_servers=broker.bootstrap_servers)
    producer.send(topic, key=b"cli-a", value=b"{broken")
    producer.send(topic, key=b"cli-a", value=dumps_json(encode_record(results[0])))  # duplicate
    producer.flush()
    producer.close()

    out = tmp_path / "frames.jsonl"
    rc = main(
        [
            "--topic",
            topic,
            "--bootstrap",
            broker.bootstrap_servers,
            "--timeout",
            "1.5",
            "--jsonl",
            str(out),
        ]
    )
    assert rc == 0
    text = capsys.readouterr().out
    lines = out.read_text().splitlines()
    assert len(lines) == len(results)
    assert sorted(
        (json.loads(s)["stream_id"], json.loads(s)["frame_index"]) for s in lines
    ) == sorted((r.stream_id, r.frame_index) for r in results)
    rows = {ln.split()[0]: ln.split() for ln in text.splitlines() if ln.startswith("cli-")}
    # stream frames first last missing tracks duplicates malformed
    assert rows["cli-a"][1] == "5" and rows["cli-a"][6] == "1" and rows["cli-a"][7] == "1"
    assert rows["cli-b"][1] == "5" and rows["cli-b"][6] == "0" and rows["cli-b"][7] == "0"
    assert "malformed 1, duplicates 1" in text

    # the module entry point, as a user runs it
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "streams.kafka",
            "--topic",
            topic,
            "--bootstrap",
            broker.bootstrap_servers,
            "--timeout",
            "1",
            "--max-records",
            "4",
        ],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=Path(__file__).resolve().parents[3],
    )
    assert proc.returncode == 0, proc.stderr
    assert "records 4" in proc.stdout
