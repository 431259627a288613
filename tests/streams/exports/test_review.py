"""``vis-pipeline review``: the CSV and the page list the scripted run's tracks worst first,
and the page renders with every thumbnail loaded in a real browser (headless Chromium)."""

from __future__ import annotations

import csv
import json
import re
import shutil
import subprocess

import pytest

from tests.streams.exports.conftest import FRAMES
from vis.schema import decode_record
from vis_pipeline.cli import main


def _review(story, tmp_path):
    out = tmp_path / "review"
    assert main(["review", str(story.jsonl), "--video", str(story.video), "-o", str(out),
                 "--no-progress"]) == 0  # fmt: skip
    return out


def test_review_lists_every_track_worst_first_with_thumbnails(story, tmp_path, capsys):
    out = _review(story, tmp_path)
    assert "review of 3 tracks" in capsys.readouterr().out
    rows = list(csv.DictReader(open(out / "review.csv")))
    assert len(rows) == 3
    scores = [float(r["track_review_score"]) for r in rows]
    assert scores == sorted(scores, reverse=True)
    # the short, low-scoring second person (3 frames, score 0.4) needs a look most
    assert rows[0]["track_id"] == "5" and rows[0]["first_frame"] == "2"
    assert rows[0]["last_frame"] == "4" and rows[0]["frames"] == "3"
    for r in rows:
        assert (out / r["thumbnail"]).stat().st_size > 0
    # the car was given "person" in 1 of its 7 frames: class margin (6 - 1) / 7
    car = next(r for r in rows if r["track_id"] == "2")
    assert float(car["class_margin"]) == pytest.approx(5 / 7, abs=1e-3)


def test_quality_records_keep_decoding_and_carry_the_signal(story, tmp_path):
    out = _review(story, tmp_path)
    lines = (out / "cam_1.quality.jsonl").read_text().splitlines()
    assert len(lines) == len(FRAMES)
    for line in lines:
        rec = json.loads(line)
        assert rec["schema"] == "vis.frame/1" and rec["schema_version"] == "1.1"
        frame = decode_record(rec)  # the 1.0 reader ignores the added fields
        assert len(frame.detections) == len(rec["instances"])
        for inst in rec["instances"]:
            q = inst["quality"]
            assert 0.0 <= q["review_score"] <= 1.0 and 0.0 <= q["track_review_score"] <= 1.0
            assert q["score"] == inst["score"]


def test_review_refuses_a_video_that_does_not_match(story, tmp_path, capsys):
    bad = tmp_path / "bad.avi"
    bad.write_bytes(b"nope")
    code = main(["review", str(story.jsonl), "--video", str(bad), "-o", str(tmp_path / "r"),
                 "--no-progress"])  # fmt: skip
    assert code == 2
    assert "cannot open video" in capsys.readouterr().err


PROBE = """<script>window.addEventListener('load', () => {
  const imgs = [...document.images];
  document.body.dataset.images = imgs.length;
  document.body.dataset.loaded = imgs.filter(i => i.complete && i.naturalWidth > 0).length;
  document.body.dataset.rows = document.querySelectorAll('tr.track').length;
});</script>"""


@pytest.mark.slow
def test_review_page_renders_in_headless_chromium(story, tmp_path):
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("Chromium not found: apt-get install -y chromium (scripts/system_packages.sh)")
    out = _review(story, tmp_path)
    # a copy of the page with a probe script, beside it so the thumbnails resolve (the
    # page's own script, the decisions, is tested in tests/streams/review)
    probe = out / "probe.html"
    probe.write_text((out / "index.html").read_text().replace("</body>", PROBE + "</body>"))
    flags = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=5000"]
    dom = subprocess.run(
        [*flags, "--dump-dom", probe.as_uri()], capture_output=True, text=True, timeout=120
    ).stdout
    body = re.search(r"<body([^>]*)>", dom).group(1)
    attrs = dict(re.findall(r'data-(\w+)="(\d+)"', body))
    assert attrs["rows"] == "3"
    assert int(attrs["images"]) > 3  # the 3 worst-frame thumbnails plus the strips
    assert attrs["loaded"] == attrs["images"]  # every thumbnail decoded
    shot = tmp_path / "shot.png"
    subprocess.run([*flags, "--window-size=1000,700", f"--screenshot={shot}",
                    (out / "index.html").as_uri()], capture_output=True, timeout=120)  # fmt: skip
    assert shot.stat().st_size > 10_000


def test_review_to_a_file_path_is_one_line_exit_2(story, tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    code = main(["review", str(story.jsonl), "--video", str(story.video), "-o",
                 str(blocker / "r"), "--no-progress"])  # fmt: skip
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "cannot be a folder" in err and str(blocker) in err


def test_test_time_augmentation_uncertainty_puts_the_uncertain_track_first(story, tmp_path):
    # the person seen the whole run is the least in need of a look until the augmented passes
    # disagree on it at every keyframe (and agree on everyone else)
    today = [r["track_id"] for r in csv.DictReader(open(_review(story, tmp_path) / "review.csv"))]
    assert today[0] != "1"
    lines = []
    for line in story.jsonl.read_text().splitlines():
        rec = json.loads(line)
        if rec["keyframe"]:
            for inst in rec["instances"]:
                inst["uncertainty"] = 1.0 if inst["track_id"] == 1 else 0.0
        lines.append(json.dumps(rec))
    story.jsonl.write_text("\n".join(lines) + "\n")
    out = _review(story, tmp_path / "tta")
    rows = list(csv.DictReader(open(out / "review.csv")))
    assert [r["track_id"] for r in rows][0] == "1" and float(rows[0]["uncertainty"]) == 1.0
    rec = json.loads((out / "cam_1.quality.jsonl").read_text().splitlines()[1])  # propagated
    assert {i["track_id"]: i["quality"]["uncertainty"] for i in rec["instances"]}[1] == 1.0
    assert "augmented passes' uncertainty 1.00" in (out / "index.html").read_text()
