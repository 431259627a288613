"""``configs/annotate.yaml``: the annotators' preset loads, runs offline on the bundled sample
with its detector levers, and writes the records (with test-time augmentation's
``uncertainty`` on keyframe instances), the exports and the frames the exports name."""

from __future__ import annotations

import json

import cv2
import pytest

from tests.conftest import ROOT
from vis_pipeline import load_config
from vis_pipeline.cli import main

PRESET = ROOT / "configs" / "annotate.yaml"
FRAMES = 20


def test_the_preset_is_offline_with_exports_and_its_levers_on():
    cfg = load_config(PRESET)
    assert cfg.mode == "offline" and cfg.sinks.jsonl and cfg.sinks.exports
    assert cfg.detector.tta is not None and cfg.detector.tta.flip


@pytest.mark.slow
def test_the_preset_runs_on_the_sample(tmp_path, capsys):
    src = tmp_path / "sample"
    src.mkdir()
    cap = cv2.VideoCapture(str(ROOT / "data" / "sample" / "sample.mp4"))
    for i in range(FRAMES):
        ok, frame = cap.read()
        assert ok
        cv2.imwrite(str(src / f"{i:05d}.png"), frame)
    cap.release()
    out = tmp_path / "out"
    # the sample's objects are synthetic shapes: the demo model finds them, people would not
    code = main(["run", "-c", str(PRESET), "-s", str(src), "-o", str(out), "--no-progress",
                 "--set", "detector.weights=demo", "--set", "detector.classes=null",
                 "--set", "detector.threads=1", "--set", "sinks.overlay=false"])  # fmt: skip
    assert code == 0, capsys.readouterr().err
    records = [json.loads(line) for line in (out / "sample.jsonl").read_text().splitlines()]
    assert [r["frame_index"] for r in records] == list(range(FRAMES))
    keyframe = [i for r in records if r["keyframe"] for i in r["instances"]]
    propagated = [i for r in records if not r["keyframe"] for i in r["instances"]]
    assert keyframe and propagated
    assert all(0.0 <= i["uncertainty"] <= 1.0 for i in keyframe)
    assert not any("uncertainty" in i for i in propagated)
    written = {p.relative_to(out).parts[0] for p in out.rglob("*") if p.is_file()}
    assert {"sample.jsonl", "images"} <= written and len(written) > 3, written
