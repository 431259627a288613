"""RunSummary: the printed summary and the --summary-json document."""

from __future__ import annotations

from vis_pipeline.summary import RunSummary


def stream(**over) -> dict:
    s = {
        "stream_id": "cam0",
        "source": "in/cam0.mp4",
        "live": False,
        "frames": 10,
        "keyframes": 2,
        "tracks": 3,
        "corrupt_frames": 1,
        "truncated": False,
        "dropped_frames": 0,
        "reconnects": 0,
        "resumed_after_frame": -1,
        "rtsp_transport": None,
        "seconds": 2.0,
        "fps": 5.0,
        "latency_ms_p50": 12.0,
        "latency_ms_p99": 30.0,
        "stage_seconds": {"decode": 0.1, "detect": 0.5},
        "stage_ms_p50_p99": {"detect": [50.0, 60.0]},
    }
    s.update(over)
    return s


def test_empty_summary_renders_and_serialises():
    s = RunSummary()
    assert s.frames == 0 and s.fps == 0.0
    assert s.render().startswith("total: 0 streams, 0 frames")
    j = s.to_json()
    assert j["frames"] == 0 and j["keyframes"] == 0 and j["stage_seconds"] == {"sink": 0.0}


def test_render_and_json_add_up_the_streams():
    s = RunSummary(
        streams=[
            stream(),
            stream(stream_id="cam1", frames=30, keyframes=3, resumed_after_frame=9, truncated=True),
        ],
        failed_inputs=["empty.mp4 is empty"],
        skipped_complete=["cam2"],
        seconds=4.0,
        sink_seconds=0.4,
        detector_calls=4,
        sink_stats={"KafkaSink": {"sent": 40}},
        outputs=["out/cam0.jsonl"],
        exit_code=2,
        error="empty.mp4 is empty",
    )
    text = s.render()
    for needle in (
        "stream cam0 (in/cam0.mp4)",
        "frames 10  keyframes 2  tracks 3  corrupt skipped 1",
        "TRUNCATED  resumed after frame 9",
        "ms/frame by stage: decode 10.0  detect 50.0",
        "ms per call p50/p99: detect 50.0/60.0",
        "total: 2 streams, 40 frames in 4.0 s (10.00 fps); detector calls 4; sinks "
        "10.0 ms/frame; 1 already complete; 1 failed",
        "  failed: empty.mp4 is empty",
        "  sink KafkaSink: sent 40",
        "  wrote out/cam0.jsonl",
    ):
        assert needle in text, needle
    j = s.to_json()
    assert j["frames"] == 40 and j["keyframes"] == 5 and j["fps"] == 10.0
    assert j["stage_seconds"] == {"decode": 0.2, "detect": 1.0, "sink": 0.4}
    assert j["exit_code"] == 2 and j["skipped_complete"] == ["cam2"]


def test_a_less_sure_detectors_scale_is_shown():
    """``score_scale`` (the tracker's reading of a detector less sure than
    ``tracker.score_reference``) is printed when the scores were read as other than given."""
    assert "scores read x1.42" in RunSummary(streams=[stream(score_scale=1.4167)]).render()
    assert "scores read" not in RunSummary(streams=[stream(score_scale=1.0)]).render()


def test_live_streams_show_drops_and_reconnects():
    text = RunSummary(streams=[stream(live=True, dropped_frames=7, reconnects=2)]).render()
    assert "dropped 7  reconnects 2" in text


def test_the_summary_names_the_engine_its_precision_and_the_cpu():
    s = RunSummary(
        streams=[stream()],
        detector={"engine": "openvino", "requested": "f32", "precision": "f32"},
        cpu={"model": "Intel(R) Xeon(R) Processor", "features": ["AVX2", "AVX-512", "AMX"]},
    )
    assert (
        "  detector: openvino at f32 (asked f32) on Intel(R) Xeon(R) Processor "
        "(AVX2 AVX-512 AMX)" in s.render().splitlines()
    )
    j = s.to_json()
    assert j["detector"]["precision"] == "f32" and j["cpu"]["features"][-1] == "AMX"


def test_frames_a_sink_did_not_take_are_counted_apart_from_those_processed():
    s = RunSummary(
        streams=[stream(frames=52, written_frames=50, unwritten_frames=2)],
        sink_stats={"JsonlSink": {"lines": 50, "failed": 1}},
        exit_code=3,
        error="cannot write out/cam0.jsonl: No space left on device",
    )
    text = s.render()
    assert "written 50  NOT written 2" in text
    assert "2 frames NOT written (a sink failed)" in text
    assert "sink JsonlSink: lines 50, failed 1" in text
    j = s.to_json()
    assert j["frames"] == 52 and j["written_frames"] == 50 and j["unwritten_frames"] == 2
    assert "NOT written" not in RunSummary(streams=[stream(written_frames=10)]).render()


def test_a_schedule_that_chose_says_why_it_spent_its_calls():
    fixed = RunSummary(streams=[stream(keyframe_reasons={"start": 1, "interval": 1})]).render()
    assert "keyframe reasons" not in fixed  # the fixed schedule's line is as it was
    chose = stream(keyframe_reasons={"start": 1, "budget": 3, "interaction_held": 2})
    text = RunSummary(streams=[chose]).render()
    assert "keyframe reasons budget 3, interaction_held 2, start 1" in text


def test_the_repair_counts_are_shown_when_it_decided_something():
    """Offline identity repair: the interactions it decided and the ids it changed are told."""
    repaired = stream(repair={"interactions": 4, "exchanges_undone": 1, "swaps_undone": 2})
    assert (
        "interactions 4 (exchanges undone 1, swaps undone 2)"
        in RunSummary(streams=[repaired]).render()
    )
    quiet = stream(repair={"interactions": 0, "exchanges_undone": 0, "swaps_undone": 0})
    assert "interactions" not in RunSummary(streams=[quiet, stream(repair=None)]).render()
    assert RunSummary(streams=[repaired]).to_json()["streams"][0]["repair"]["interactions"] == 4


def test_tracks_the_repair_rejoined_are_shown_net_of_those_undone():
    counts = {"interactions": 2, "exchanges_undone": 0, "swaps_undone": 0}
    joined = stream(repair={**counts, "tracks_joined": 5, "joins_undone": 2})
    assert "tracks rejoined 3" in RunSummary(streams=[joined]).render()
    none = stream(repair={**counts, "tracks_joined": 0, "joins_undone": 0})
    assert "rejoined" not in RunSummary(streams=[none]).render()


def test_a_repair_window_the_memory_budget_shortened_is_shown():
    counts = {"interactions": 0, "exchanges_undone": 0, "swaps_undone": 0}
    capped = stream(repair={**counts, "budget_window": 14})
    assert "repair window 14 frames (repair.max_held_mb)" in RunSummary(streams=[capped]).render()
    assert "repair window" not in RunSummary(streams=[stream(repair=counts)]).render()


def test_a_resumed_stream_shows_its_output_frames_and_this_runs_work():
    """``frames`` counts the output (earlier runs included); the fps, the ms per frame and
    ``frames_this_run`` are this run's alone."""
    s = RunSummary(
        streams=[stream(frames=40, frames_this_run=15, resumed_after_frame=24, fps=7.5)],
        seconds=3.0,
        sink_seconds=0.3,
    )
    text = s.render()
    assert "frames 40 (15 this run)  keyframes 2" in text
    assert "ms/frame by stage: decode 6.7  detect 33.3" in text  # over the 15 frames
    assert "total: 1 streams, 40 frames (15 this run) in 3.0 s (5.00 fps)" in text
    assert "sinks 20.0 ms/frame" in text
    j = s.to_json()
    assert j["frames"] == 40 and j["frames_this_run"] == 15 and j["fps"] == 5.0
    fresh = RunSummary(streams=[stream()], seconds=2.0).render()
    assert "this run" not in fresh and "frames 10  keyframes 2" in fresh


def test_an_output_not_written_is_counted_and_not_listed_as_written():
    failure = "cannot write the overlay video out/cam0.overlay.mp4: a folder is in the way; x"
    s = RunSummary(
        streams=[stream()],
        outputs=["out/cam0.jsonl"],
        failed_outputs=[failure],
        exit_code=3,
        error=failure,
    )
    text = s.render()
    assert "0 failed; 1 output(s) NOT written" in text
    assert f"  NOT written: {failure}" in text and "wrote out/cam0.overlay.mp4" not in text
    assert s.to_json()["failed_outputs"] == [failure]
