"""The whole pipeline publishing to a real broker: what consumers read equals the JSONL sink."""

from __future__ import annotations

import json
import socket
import time

import pytest
from kafka import KafkaConsumer

from streams.kafka import FrameReader
from tools.make_sample import write_scene
from vis_eval.synthetic import SceneConfig
from vis_pipeline import load_config, run
from vis_pipeline.cli import main


@pytest.mark.slow
def test_pipeline_to_topic_equals_jsonl_per_stream(broker, topic, tmp_path):
    videos = []
    for i in range(2):
        v = tmp_path / f"cam{i}.mp4"
        write_scene(
            SceneConfig(
                width=320,
                height=192,
                n_frames=25,
                seed=40 + i,
                n_objects=3,
                size_range=(14.0, 26.0),
                spawn_rate=0.0,
            ),
            v,
        )
        videos.append(v)
    kafka = {
        "bootstrap_servers": broker.bootstrap_servers,
        "topic": topic,
        "tracks_topic": f"{topic}.tracks",
        "topic_partitions": 2,
    }
    cfg = load_config(
        "configs/demo.yaml",
        [
            "keyframes.interval=4",
            "sinks.overlay=false",
            "parallel_streams=2",
            "detector.batch_size=2",
            f"sinks.kafka={json.dumps(kafka)}",
        ],
        sources=[str(v) for v in videos],
        output=str(tmp_path / "out"),
    )
    summary = run(cfg, progress=False)
    assert summary.exit_code == 0
    assert summary.sink_stats["KafkaSink"]["failed"] == 0
    with FrameReader(topic, bootstrap_servers=broker.bootstrap_servers) as reader:
        records = [f.record for f in reader.frames(idle_s=3.0, timeout_s=60.0)]
    for v in videos:
        expected = [
            json.loads(x) for x in (tmp_path / "out" / f"{v.stem}.jsonl").read_text().splitlines()
        ]
        got = [r for r in records if r["stream_id"] == v.stem]
        assert len(expected) == 25 and got == expected  # frame for frame, in order per stream


@pytest.mark.slow
def test_broker_down_at_start_is_a_one_line_error_and_no_hang(tmp_path, capsys):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    t = time.monotonic()
    code = main(
        [
            "--config",
            "configs/demo.yaml",
            "--output",
            str(tmp_path),
            "--no-progress",
            "--set",
            f"sinks.kafka={{bootstrap_servers: '127.0.0.1:{port}', connect_timeout_s: 3}}",
        ]
    )
    err = capsys.readouterr().err
    assert code == 3
    assert time.monotonic() - t < 30
    assert f"127.0.0.1:{port}" in err or "vis.frames" in err
    assert len(err.strip().splitlines()) == 1


@pytest.mark.slow
def test_batch_run_ends_a_finished_videos_tracks_with_stream_end(broker, topic, tmp_path):
    """A finished video's open tracks end when the video ends (``stream_end``), not when the
    run closes (``closed``): the runner calls ``end_stream`` on every sink."""
    videos = []
    for i in range(2):
        v = tmp_path / f"cam{i}.mp4"
        write_scene(
            SceneConfig(
                width=320,
                height=192,
                n_frames=12,
                seed=60 + i,
                n_objects=3,
                size_range=(14.0, 26.0),
                spawn_rate=0.0,
            ),
            v,
        )
        videos.append(v)
    tracks_topic = f"{topic}.tracks"
    kafka = {
        "bootstrap_servers": broker.bootstrap_servers,
        "topic": topic,
        "tracks_topic": tracks_topic,
        "topic_partitions": 1,
    }
    cfg = load_config(
        "configs/demo.yaml",
        [
            "keyframes.interval=4",
            "sinks.overlay=false",
            "sinks.jsonl=false",
            "parallel_streams=1",
            f"sinks.kafka={json.dumps(kafka)}",
        ],
        sources=[str(v) for v in videos],
        output=str(tmp_path / "out"),
    )
    assert run(cfg, progress=False).exit_code == 0
    consumer = KafkaConsumer(
        tracks_topic,
        bootstrap_servers=broker.bootstrap_servers,
        auto_offset_reset="earliest",
        consumer_timeout_ms=3000,
    )
    events = [json.loads(m.value) for m in consumer]  # one partition: in publishing order
    consumer.close()
    ended = [(i, e) for i, e in enumerate(events) if e["event"] == "ended"]
    first_ended = [(i, e) for i, e in ended if e["stream_id"] == "cam0"]
    assert first_ended, "cam0 has tracks: they must end"
    assert {e["reason"] for _, e in first_ended} == {"stream_end"}
    second_started = [
        i for i, e in enumerate(events) if e["stream_id"] == "cam1" and e["event"] == "started"
    ]
    assert second_started and max(i for i, _ in first_ended) < min(second_started)
    assert {e["reason"] for _, e in ended if e["stream_id"] == "cam1"} == {"stream_end"}
