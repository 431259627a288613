"""Analytics through the real CLI: config errors are one line and exit 2; a run on the
synthetic sample writes events that validate against docs/vis.event.v1.schema.json and count
what the ground truth's objects did."""

from __future__ import annotations

import json
from collections import Counter

import jsonschema
import numpy as np
import pytest

from tests.conftest import ROOT, SAMPLE_GT
from vis.analytics import Analytics, AnalyticsConfig
from vis.types import Detections, FrameResult
from vis_eval.sequences import read_mots_by_frame
from vis_pipeline.cli import main
from vis_pipeline.config import load_config

LINE = "analytics.lines=[{name: mid, points: [[440, 0], [440, 360]]}]"
ZONE = "analytics.zones=[{name: right, polygon: [[400, 40], [620, 40], [620, 340], [400, 340]]}]"


def run_cli(args: list[str], capsys) -> tuple[int, str, str]:
    code = main(args)
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize(
    "setting, needle",
    [
        ("analytics.lines=[{name: a, points: [[10, 10], [10, 10]]}]", "degenerate"),
        ("analytics.lines=[{name: a, points: [[10, 10]]}]", "analytics.lines[0].points"),
        ("analytics.zones=[{name: z, polygon: [[0, 0], [50, 0]]}]", "at least 3 points"),
        ("analytics.zones=[{name: z, polygon: [[0, 0], [50, 0], [100, 0]]}]", "area is zero"),
        ("analytics.zones=[{name: z, polygon: [[0, 0], [5, 0], [5, 5]], max_occupancy: -1}]", "-1"),
        ("analytics.lines=[{name: a, points: [[0, 0], [9, 9]], classes: [dog]}]", "'dog'"),
        ("analytics.zone_exit_overlap=0.9", "zone_exit_overlap=0.9"),
        ("analytics.bogus=1", "unknown key analytics.bogus"),
        # the sample is 640x360: the frame size is known once the source opens
        ("analytics.lines=[{name: door, points: [[0, 100], [700, 100]]}]", "640x360"),
    ],
)
def test_config_errors_exit_2_with_one_line(setting, needle, tmp_path, capsys):
    out = tmp_path / "o"
    code, _, err = run_cli(
        ["--config", "configs/demo.yaml", "--set", setting, "-o", str(out), "--no-progress"],
        capsys,
    )
    assert code == 2, err
    assert needle in err and len(err.strip().splitlines()) == 1, err
    assert not (out / "sample.jsonl").exists() or (out / "sample.jsonl").stat().st_size == 0


def test_a_frame_bounds_error_keeps_what_an_earlier_run_wrote(tmp_path, capsys):
    out = tmp_path / "o"
    out.mkdir()
    (out / "sample.jsonl").write_text("kept\n")
    code, _, err = run_cli(
        [
            "--config",
            "configs/demo.yaml",
            "--set",
            "analytics.zones=[{name: lawn, polygon: [[0, 0], [100, 0], [100, 400]]}]",
            "-o",
            str(out),
            "--no-progress",
            "--restart",
        ],
        capsys,
    )
    assert code == 2 and "'lawn'" in err and "[100, 400]" in err and "640x360" in err
    assert (out / "sample.jsonl").read_text() == "kept\n"


def _reference_events(cfg: AnalyticsConfig) -> list[dict]:
    """The same analytics on the ground truth's masks and ids (the objects as they moved)."""
    labels = ["background", "disk", "box", "star"]
    analytics = Analytics(cfg, stream_id="sample")
    events = []
    for index, objects in sorted(read_mots_by_frame(SAMPLE_GT).items()):
        masks = np.stack([m for _, _, m in objects]) if objects else np.zeros((0, 360, 640))
        boxes = [
            [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]
            for ys, xs in (np.nonzero(m) for m in masks)
        ]
        d = Detections(
            xyxy=np.array(boxes, np.float32).reshape(-1, 4),
            masks=masks.astype(bool) if objects else [],
            scores=np.ones(len(objects)),
            class_ids=[c for _, c, _ in objects],
            track_ids=[t for t, _, _ in objects],
            image_size=(360, 640),
        )
        result = FrameResult("sample", index, index * 40.0, True, 640, 360, d, labels)
        events += [e.to_dict() for e in analytics.update(result)]
    return events


def _line_counts(events: list[dict]) -> Counter:
    return Counter(e["direction"] for e in events if e["event"] == "line_cross")


@pytest.mark.slow
def test_sample_run_events_validate_and_count_the_crossings(tmp_path, capsys):
    out = tmp_path / "out"
    code, _, err = run_cli(
        [
            "--config",
            "configs/demo.yaml",
            "--set",
            LINE,
            "--set",
            ZONE,
            "--set",
            "keyframes.interval=5",
            "--set",
            "sinks.overlay=false",
            "-o",
            str(out),
            "--no-progress",
        ],
        capsys,
    )
    assert code == 0, err
    schema = json.loads((ROOT / "docs" / "vis.event.v1.schema.json").read_text())
    events = [json.loads(x) for x in (out / "sample.events.jsonl").read_text().splitlines()]
    for e in events:
        jsonschema.validate(e, schema)
    frames = [e["frame_index"] for e in events]
    assert frames == sorted(frames)  # events follow the written frames
    # each track crosses each way at most once
    per_track = Counter(
        (e["track_id"], e["direction"]) for e in events if e["event"] == "line_cross"
    )
    assert set(per_track.values()) <= {1}
    cfg = load_config("configs/demo.yaml", [LINE, ZONE]).analytics
    reference = _reference_events(cfg)
    ours, truth = _line_counts(events), _line_counts(reference)
    # measured: ours in 2, out 1, as the ground truth's objects (the demo model, N=5)
    assert sum(truth.values()) >= 3
    assert ours == truth, (ours, truth)
    entries = Counter(e["event"] for e in events)
    truth_entries = Counter(e["event"] for e in reference)
    assert abs(entries["zone_enter"] - truth_entries["zone_enter"]) <= 1, (entries, truth_entries)
    # a finished file closes every entry: each track's entries and exits pair up, in order
    for tid in {e["track_id"] for e in events if e["event"] == "zone_enter"}:
        seq = [e["event"] for e in events if e.get("track_id") == tid and "zone_" in e["event"]]
        assert seq == ["zone_enter", "zone_exit"] * (len(seq) // 2), (tid, seq)
    assert events[-1]["event"] != "zone_occupancy" or events[-1]["count"] == 0
