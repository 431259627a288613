"""``vis-pipeline export`` and the batch-run export sink, end to end on the scripted run."""

from __future__ import annotations

import json

import pytest
from pycocotools.coco import COCO

from streams.exports import FORMATS
from streams.sinks.paths import export_path
from tests.streams.exports.conftest import FRAMES
from vis_pipeline.cli import main


def test_export_command_writes_every_format_and_a_summary(story, tmp_path, capsys):
    out = tmp_path / "exp"
    code = main(["export", "-f", "coco,cvat", "-f", "mots", "-i", str(story.jsonl),
                 "-o", str(out), "--video", str(story.video), "--no-progress"])  # fmt: skip
    assert code == 0
    text = capsys.readouterr().out
    assert "exported 1 run(s) in 3 file(s)" in text
    assert {p.name for p in out.iterdir()} == {
        "cam_1.coco.json", "cam_1.cvat.xml", "cam_1.mots.txt", "cam_1.mots.ids.csv", "images",
    }  # fmt: skip
    assert len(list((out / "images" / "cam_1").iterdir())) == len(FRAMES)
    assert main(["export", "-f", "all", "-i", str(story.jsonl), "-o", str(out),
                 "--no-progress"]) == 0  # fmt: skip


def test_export_command_refuses_bad_input_in_one_line(story, tmp_path, capsys):
    args = ["-i", str(story.jsonl), "-o", str(tmp_path / "x"), "--no-progress"]
    assert main(["export", "-f", "labelme", *args]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "unknown export format 'labelme'" in err
    assert main(["export", "-f", "coco", "-i", str(tmp_path / "none.jsonl"), "-o", "x"]) == 2
    assert "cannot read" in capsys.readouterr().err
    short = tmp_path / "short.avi"
    short.write_bytes(b"not a video")
    assert main(["export", "-f", "coco", *args, "--video", str(short)]) == 2
    assert "cannot open video" in capsys.readouterr().err


def test_batch_run_exports_each_stream_when_it_ends(story, tmp_path, capsys):
    """The run's own JSONL (precomputed detections, re-tracked) is what the exports hold."""
    out = tmp_path / "run"
    code = main([
        "--source", str(story.video), "--stream-id", "cam 1", "--output", str(out),
        "--set", "detector.type=precomputed", "--set", f"detector.path={story.jsonl}",
        "--set", "sinks.overlay=false", "--set", f"sinks.exports=[{','.join(FORMATS)}]",
        "--set", "sinks.export_images=true", "--set", "tracker.confirm_hits=1",
        "--no-progress",
    ])  # fmt: skip
    assert code == 0, capsys.readouterr().err
    records = [json.loads(line) for line in (out / "cam_1.jsonl").read_text().splitlines()]
    for name, (_, suffix) in FORMATS.items():
        assert export_path(out, "cam 1", suffix).exists(), name
    coco = COCO(str(out / "cam_1.coco.json"))
    assert len(coco.getImgIds()) == len(records)
    assert len(coco.getAnnIds()) == sum(len(r["instances"]) for r in records) > 0
    written = sorted(p.name for p in (out / "images" / "cam_1").iterdir())
    assert written == [f"{r['frame_index']:06d}.jpg" for r in records]


def test_exports_need_the_jsonl_sink(tmp_path, capsys):
    code = main(["--source", "x.mp4", "--output", str(tmp_path), "--set", "sinks.jsonl=false",
                 "--set", "sinks.exports=[coco]", "--print-config"])  # fmt: skip
    assert code == 2
    assert "sinks.exports needs sinks.jsonl: true" in capsys.readouterr().err
    code = main(["--source", "x.mp4", "--set", "sinks.exports=[labelme]", "--print-config"])
    assert code == 2
    assert "sinks.exports: unknown format 'labelme'" in capsys.readouterr().err


@pytest.mark.slow
def test_coco_export_trains_with_the_train_tool(story, tmp_path):
    """Round trip: the COCO export and its frames are training data for tools/train.py."""
    from vis.detection.models import load_model
    from vis_train.cli import ap_json_path
    from vis_train.cli import main as train_main

    out = tmp_path / "exp"
    assert main(["export", "-f", "coco", "-i", str(story.jsonl), "-o", str(out),
                 "--video", str(story.video), "--no-progress"]) == 0  # fmt: skip
    model = tmp_path / "m" / "tiny.pt"
    assert train_main([
        "--coco", str(out / "cam_1.coco.json"), "--images", str(out / "images"),
        "--classes", "person,car", "--arch", "tiny_fpn", "--steps", "2",
        "--train-sizes", "48", "--min-size", "48", "--max-size", "64", "--holdout", "0.34",
        "--warmup", "1", "--no-progress", "--out", str(model),
        "--checkpoint", str(tmp_path / "m" / "run" / "last.pt"),
    ]) == 0  # fmt: skip
    _, labels = load_model(weights=str(model))
    assert labels == ["__background__", "person", "car"]
    report = json.loads(ap_json_path(model).read_text())
    (held,) = report["held_out"].values()
    # the class-stratified split holds out ceil(0.34 x) of each class's frames (rarest class
    # first): 4 of the 9 exported frames, never trained on
    assert held["images"] == 4
