"""The throughput bench's arithmetic: ratios per mode and the composed R50 ratio."""

from bench.demo_fps import composed, ratios, row


def _summary(frames, seconds, stages, calls):
    return {
        "frames": frames,
        "seconds": seconds,
        "fps": frames / seconds,
        "stage_seconds": stages,
        "detector_calls": calls,
    }


def test_ratios_and_the_composed_ratio_follow_the_stage_times():
    rows = [
        # N=1: 100 frames, 50 ms detect + 10 ms of propagation a frame; sinks excluded
        row("live", 1, _summary(100, 6.0, {"detect": 5.0, "propagate": 1.0, "sink": 3.0}, 100)),
        # N=10: 5 ms detect + 10 ms propagation a frame
        row("live", 10, _summary(100, 1.5, {"detect": 0.5, "propagate": 1.0, "sink": 3.0}, 10)),
    ]
    assert rows[0]["processing_ms_per_frame"] == 60.0
    assert rows[1]["processing_ms_per_frame"] == 15.0
    assert rows[1]["detect_ms_per_call"] == 50.0
    assert ratios(rows) == {"live": {"fps": 4.0, "processing": 4.0}}
    # a 1 s detector with these per-frame costs: (1000 + 10) / (100 + 10)
    c = composed(1000.0, {"rows": rows})["live"]
    assert (c["c1_ms"], c["c10_ms"]) == (10.0, 10.0)
    assert c["ratio"] == round(1010 / 110, 2)
