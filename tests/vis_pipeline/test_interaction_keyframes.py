"""Keyframes where tracks interact, through the whole run: the held frames an offline stream
asks for are detected by the run's loop, and the triggers reach the summary."""

from __future__ import annotations

import json

import cv2

from tests.vis.test_offline import H, W, crossing_scene
from vis.ops.masks import BoxMask
from vis.ops.rle import encode_box_as_full
from vis.ops.boxes import mask_to_box
from vis_pipeline.cli import main


def write_inputs(tmp_path):
    """The crossing scene as a video and its true boxes as a detections file."""
    frames, truth = crossing_scene()
    video = tmp_path / "cross.avi"
    out = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 25, (W, H))
    for f in frames:
        out.write(f.image)
    out.release()
    dets = tmp_path / "dets.jsonl"
    with open(dets, "w") as fh:
        for f in frames:
            inst = []
            for masks in truth.values():
                m = BoxMask.from_box(mask_to_box(masks[f.index]), (H, W))
                box = [float(m.x0), float(m.y0), float(m.x1), float(m.y1)]
                inst.append(
                    {
                        "class_id": 1,
                        "label": "person",
                        "score": 0.95,
                        "bbox": box,
                        "mask": encode_box_as_full(m),
                    }
                )
            rec = {
                "schema": "vis.frame/1",
                "stream_id": "cross",
                "frame_index": f.index,
                "timestamp_ms": f.index * 40.0,
                "keyframe": True,
                "width": W,
                "height": H,
                "instances": inst,
            }
            fh.write(json.dumps(rec) + "\n")
    return video, dets


def test_the_run_detects_the_held_frames_asked_and_counts_them(tmp_path, capsys):
    video, dets = write_inputs(tmp_path)
    sets = [
        "detector.type=precomputed",
        f"detector.path={dets}",
        "detector.weights=null",
        "keyframes.interval=10",
        "keyframes.policy=interaction",
        "sinks.overlay=false",
    ]
    args = ["--source", str(video), "--output", str(tmp_path / "o"), "--no-progress"]
    args += ["--summary-json", str(tmp_path / "summary.json")]
    for s in sets:
        args += ["--set", s]
    code = main(args)
    out, err = capsys.readouterr()
    assert code == 0, err
    records = [json.loads(line) for line in (tmp_path / "o" / "cross.jsonl").open()]
    assert [r["frame_index"] for r in records] == list(range(40))
    keys = [r["frame_index"] for r in records if r["keyframe"]]
    # the crossing, detected after the fact; the saved call paid back a frame later (31)
    assert keys[:2] == [0, 10] and 14 <= keys[2] <= 18 and keys[3:] == [20, 31]
    assert len(records[keys[2]]["instances"]) == 2
    summary = json.loads((tmp_path / "summary.json").read_text())
    (stream,) = summary["streams"]
    assert stream["keyframe_reasons"]["interaction_held"] == 1
    assert stream["keyframes"] == summary["detector_calls"] == len(keys) == 5
    assert "interaction_held 1" in out + err
