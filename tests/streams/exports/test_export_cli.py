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


def _hostile_run(path, n=300, size=(4320, 8192)):
    """One 8K record with ``n`` one-pixel instances (a small file, a large frame)."""
    h, w = size
    insts = []
    for i in range(n):
        x, y = (i * 37) % w, (i * 53) % h
        insts.append({
            "track_id": i + 1, "class_id": 1, "label": "person", "score": 0.6,
            "bbox": [x, y, x + 1, y + 1], "mask": {"x": x, "y": y, "size": [1, 1], "counts": "01"},
        })  # fmt: skip
    rec = {"schema": "vis.frame/2", "stream_id": "big", "frame_index": 0, "timestamp_ms": 0.0,
           "keyframe": True, "propagated_from": [], "width": w, "height": h,
           "instances": insts}  # fmt: skip
    path.write_text(json.dumps(rec) + "\n")
    return insts


def test_cvat_of_tiny_masks_in_a_huge_frame_names_each_pixel(tmp_path, capsys):
    """Each mask is read from its runs (the work of a frame per instance made this take
    minutes): the shapes are the pixels the record gives."""
    insts = _hostile_run(tmp_path / "big.jsonl")
    out = tmp_path / "exp"
    assert main(["export", "-f", "cvat", "-i", str(tmp_path / "big.jsonl"), "-o", str(out),
                 "--no-progress"]) == 0  # fmt: skip
    xml = (out / "big.cvat.xml").read_text()
    for inst in (insts[0], insts[123], insts[-1]):
        x, y = inst["mask"]["x"], inst["mask"]["y"]
        assert f'rle="0,1" left="{x}" top="{y}" width="1" height="1"' in xml
    assert xml.count("<mask ") == len(insts)


def test_cvat_rle_from_runs_equals_decoding_the_frame():
    import numpy as np  # noqa: PLC0415

    from streams.exports.common import box_local  # noqa: PLC0415
    from streams.exports.cvat import cvat_rle, cvat_rle_of  # noqa: PLC0415
    from vis.ops.rle import encode_full  # noqa: PLC0415
    from vis.schema import decode_record  # noqa: PLC0415

    rng = np.random.default_rng(0)
    for t in range(200):
        h, w = (int(v) for v in rng.integers(1, 40, 2))
        m = np.zeros((h, w), bool)
        if t % 4 == 0:
            m = rng.random((h, w)) < 0.3
        elif t % 4 == 1:
            y, x = rng.integers(0, h), rng.integers(0, w)
            m[y : y + rng.integers(1, 15), x : x + rng.integers(1, 15)] = True
        elif t % 4 == 2:
            m[:] = True
        rle = encode_full(m[None])[0]
        assert cvat_rle_of(rle) == cvat_rle(m)
        rec = {"schema": "vis.frame/1", "stream_id": "s", "frame_index": 0, "timestamp_ms": 0.0,
               "keyframe": True, "propagated_from": [], "width": w, "height": h,
               "instances": [{"track_id": 1, "class_id": 1, "label": "a", "score": 0.5,
                              "bbox": [0, 0, 1, 1], "mask": rle}]}  # fmt: skip
        a = decode_record(rec).detections.masks[0]
        b = decode_record(box_local(rec)).detections.masks[0]
        assert (a.x0, a.y0, a.image_size) == (b.x0, b.y0, b.image_size)
        assert np.array_equal(a.bits, b.bits)


@pytest.mark.parametrize("how", ["SIGINT", "SIGTERM"])
def test_interrupted_export_exits_130_and_leaves_no_temporary(story, tmp_path, capsys,
                                                              monkeypatch, how):  # fmt: skip
    import os  # noqa: PLC0415
    import signal  # noqa: PLC0415

    import streams.exports.cvat as cvat  # noqa: PLC0415

    def interrupt(rle):
        if how == "SIGINT":
            raise KeyboardInterrupt
        os.kill(os.getpid(), signal.SIGTERM)

    monkeypatch.setattr(cvat, "cvat_rle_of", interrupt)
    out = tmp_path / "exp"
    assert main(["export", "-f", "all", "-i", str(story.jsonl), "-o", str(out),
                 "--no-progress"]) == 130  # fmt: skip
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and f"interrupted by {how}" in err
    assert not [p for p in out.iterdir() if p.name.startswith("vis-export-")]
    assert signal.getsignal(signal.SIGTERM) is not None


def test_export_to_a_file_path_is_one_line_exit_2(story, tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert main(["export", "-f", "coco", "-i", str(story.jsonl), "-o", str(blocker / "exp"),
                 "--no-progress"]) == 2  # fmt: skip
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "cannot be a folder" in err and str(blocker) in err
