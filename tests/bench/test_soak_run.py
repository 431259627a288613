"""The soak bench end to end on a tiny camera: a real ffmpeg MJPEG stream on loopback through
``vis_pipeline.run`` in live mode, sampled by the bench, reported and plotted."""

from __future__ import annotations

import json

import pytest

from bench.soak import JsonlRotation, main
from vis_eval.sequences import TrackSequence, jsonl_records


def test_jsonl_rotation_counts_validates_and_empties_the_file(tmp_path) -> None:
    good = json.dumps(jsonl_records(TrackSequence(size=(8, 8)), stream_id="s", n_frames=1)[0])
    path = tmp_path / "s.jsonl"
    path.write_text(good + "\n" + good + "\n" + good[:20])  # the last line is still being written
    rotation = JsonlRotation(tmp_path)
    rotation.rotate()
    assert rotation.bytes == 2 * len(good) + 2 + 20 and rotation.checked == 1
    assert path.read_bytes() == b"" and rotation.bad == []
    path.write_text('{"schema": "vis.frame/1"}\n')
    rotation.rotate()
    assert len(rotation.bad) == 1 and "s.jsonl" in rotation.bad[0]


@pytest.mark.slow
def test_soak_samples_a_live_run_and_writes_its_report(tmp_path) -> None:
    pytest.importorskip("imageio_ffmpeg", reason="the camera is served by imageio-ffmpeg's ffmpeg")
    args = ["--width", "320", "--height", "240", "--objects", "4", "--clip-frames", "10"]
    args += ["--minutes", "0.1", "--every-s", "2", "--no-kafka", "--clip-cache", str(tmp_path)]
    args += ["--out", str(tmp_path / "out"), "--plot", str(tmp_path / "soak.png")]
    assert main(args) == 0
    payload = json.loads((tmp_path / "out" / "soak.json").read_text())
    samples = payload["samples"]
    assert payload["run"] == "smoke" and len(samples) >= 3
    assert payload["misaligned_frames"] == 0  # every frame got its own detections
    assert samples[-1]["frames_out"] > 0 and samples[-1]["tracks"] >= 1
    assert all(s["rss_min_mb"] <= s["rss_mb"] <= s["rss_max_mb"] for s in samples)
    for s in samples:
        for queue in ("reader", "writer"):
            assert s["queue_max"][queue] <= s["queue_bound"][queue]
    processed = [s for s in samples if s["stages"].get("track", {}).get("n")]
    assert processed and all(s["stages"]["end_to_end"]["p99_ms"] > 0 for s in processed)
    assert payload["jsonl"]["lines_validated"] >= 1 and payload["jsonl"]["bad"] == []
    assert "SMOKE run" in (tmp_path / "out" / "soak.md").read_text()
    assert (tmp_path / "soak.png").stat().st_size > 10_000
