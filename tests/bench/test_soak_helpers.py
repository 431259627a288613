"""The soak bench's helpers: RSS reading, per-window stage statistics, the conclusions drawn
from a sampled series, and the looped camera's frame stamps and detections."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from pycocotools import mask as mask_utils

from bench.soak_clip import LoopedDetector, loop_order, read_stamp, stamp
from bench.soak_metrics import StageWindows, conclude, rss_bytes
from vis.detection.factory import DetectorConfig, build_detector
from vis.pipeline import StageTimer
from vis.types import Frame
from vis_eval.sequences import Instance, TrackSequence, jsonl_records, write_jsonl


def test_rss_follows_memory_this_process_touches() -> None:
    before = rss_bytes()
    block = np.ones(64 * 1024 * 1024, np.uint8)  # 64 MB, every page written
    during = rss_bytes()
    assert before > 0
    assert during - before >= 48 * 1024 * 1024
    assert block[-1] == 1
    assert rss_bytes(-1) == 0  # no such process


def test_stage_windows_report_only_the_calls_since_the_last_take() -> None:
    a, b = StageTimer(), StageTimer(keep=4)
    for s in (0.010, 0.020, 0.030):
        a.add("track", s)
    windows = StageWindows([a, b])
    w1 = windows.take()
    assert w1["track"].n == 3 and w1["track"].p50_ms == pytest.approx(20.0)
    assert w1["track"].max_ms == pytest.approx(30.0) and not w1["track"].partial
    a.add("track", 0.100)
    b.add("track", 0.200)  # the same stage in another timer is pooled
    w2 = windows.take()
    assert w2["track"].n == 2 and w2["track"].max_ms == pytest.approx(200.0)
    assert windows.take()["track"].n == 0  # nothing new
    for k in range(10):  # more calls than the timer keeps
        b.add("sink", 0.001 * (k + 1))
    w4 = windows.take()["sink"]
    assert w4.n == 10 and w4.partial and w4.max_ms == pytest.approx(10.0)
    assert w4.p50_ms == pytest.approx(8.5)  # over the newest 4 kept: 7, 8, 9, 10 ms


def _sample(t: float, rss: float, p99: float) -> dict:
    return {
        "t_s": t,
        "rss_mb": rss,
        "rss_max_mb": rss + 2,  # the window's largest per-second read
        "stages": {"track": {"n": 5, "p99_ms": p99}},
    }


def test_conclude_measures_growth_after_warmup_and_compares_early_and_late_p99() -> None:
    samples = [_sample(10, 50, 10), _sample(20, 80, 11), _sample(30, 95, 9)]  # warm-up
    samples += [_sample(t, 100 + (t - 60) / 60, 10 if t < 150 else 20) for t in range(60, 460, 10)]
    c = conclude(samples, warmup_s=60, span_s=300)
    r = c["rss"]
    assert r["warmup_t_s"] == 60 and r["at_warmup_mb"] == 100
    assert r["end_mb"] == pytest.approx(106.5)
    assert r["growth_pct"] == pytest.approx(6.5)
    assert r["slope_mb_per_min"] == pytest.approx(1.0, abs=0.01)
    # peaks: the first 150 s after warm-up (60..210 s) vs the last 150 s (> 300 s)
    assert r["early_peak_mb"] == pytest.approx(104.5) and r["late_peak_mb"] == pytest.approx(108.5)
    assert r["peak_growth_pct"] == pytest.approx(100 * 4 / 104.5, abs=0.01)
    assert c["span_s"] == pytest.approx(150)  # a third of a 450-s run
    assert c["p99"]["track"] == {"first_ms": 10.0, "last_ms": 20.0, "last_over_first": 2.0}
    with pytest.raises(ValueError, match="no samples"):
        conclude([])


def test_stamp_survives_jpeg_and_the_loop_goes_forward_then_back() -> None:
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (80, 240, 3), np.uint8)
    for value in (0, 1, 247, 4095):
        stamp(image, value)
        ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 90])
        assert read_stamp(cv2.imdecode(buf, cv2.IMREAD_COLOR)) == value
    assert loop_order(4) == [0, 1, 2, 3, 2, 1]


def test_looped_detector_serves_each_loop_position_and_counts_misaligned_frames(tmp_path) -> None:
    h, w, period = 64, 240, 3
    frames = {}
    for p in range(period):  # one square per position, at a place that tells them apart
        m = np.zeros((h, w), bool)
        m[20:40, 40 + 40 * p : 60 + 40 * p] = True
        rle = mask_utils.encode(np.asfortranarray(m[:, :, None].astype(np.uint8)))[0]
        frames[p] = [Instance(-1, 1, 0.9, rle)]
    seq = TrackSequence(frames=frames, size=(h, w))
    path = write_jsonl(
        tmp_path / "d.jsonl", jsonl_records(seq, stream_id="s", n_frames=period, labels={1: "a"})
    )
    cfg = DetectorConfig(type="precomputed", path=str(path), labels=["a"], embedder="histogram")
    looped = LoopedDetector(lambda: build_detector(cfg), period, build_detector(cfg))
    seen = []
    for i in range(8):
        image = np.full((h, w, 3), 128, np.uint8)
        stamp(image, i % period if i != 5 else 0)  # frame 5 shows the wrong position
        (d,) = looped.detect_frames([Frame("s", i, i * 40.0, image)])
        seen.append(int(d.xyxy[0, 0]))
    looped.close()
    assert seen == [40, 80, 120, 40, 80, 120, 40, 80]
    assert looped.misaligned == 1 and looped.frames == 8
