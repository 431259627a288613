"""The review page records decisions in a real browser (headless Chromium): a scripted
``#autotest=`` fragment fills each row's frame range and class and clicks its buttons, the
page writes the corrections it would download, and they load against the run; a reload keeps
them (localStorage)."""

from __future__ import annotations

import html
import json
import re
import shutil
import subprocess
import urllib.parse

import pytest

from streams.review.corrections import Decision, load_corrections, resolve
from tests.conftest import ROOT
from vis_pipeline.cli import main

STEPS = [
    {"track": 1, "action": "accept", "frames": [0, 4]},
    {"track": 1, "action": "reject", "frames": [6, 9]},
    {"track": 5, "action": "accept"},
    {"track": 5, "action": "reject"},  # the whole track again: replaces the accept
    {"track": 2, "action": "wrong_class", "label": "person", "frames": [7, 9]},
    {"track": 5, "action": "accept", "frames": [0, 4]},  # outside track 5 (2-4): refused
]


def _chromium():
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("Chromium not found: apt-get install -y chromium (scripts/system_packages.sh)")
    return chromium


def _open(chromium, page, steps, profile):
    url = page.as_uri() + "#autotest=" + urllib.parse.quote(json.dumps(steps))
    flags = [chromium, "--headless", "--no-sandbox", "--disable-gpu", f"--user-data-dir={profile}",
             "--virtual-time-budget=5000", "--dump-dom", url]  # fmt: skip
    return subprocess.run(flags, capture_output=True, text=True, timeout=120).stdout


def _out(dom):
    m = re.search(r'<pre id="corrections-out" data-errors="([^"]*)">(.*?)</pre>', dom, re.S)
    assert m is not None, "the page did not run its autotest"
    return json.loads(html.unescape(m.group(1))), html.unescape(m.group(2))


@pytest.mark.slow
def test_clicks_record_decisions_that_load_against_the_run(story, tmp_path):
    chromium = _chromium()
    review = tmp_path / "review"
    assert main(["review", str(story.jsonl), "--video", str(story.video), "-o", str(review),
                 "--no-progress"]) == 0  # fmt: skip
    profile = tmp_path / "profile"
    dom = _open(chromium, review / "index.html", STEPS, profile)
    errors, text = _out(dom)
    assert errors == ["track 5: frames must be within 2-4, start <= stop"]
    saved = tmp_path / "cam_1.corrections.json"
    saved.write_text(text)
    corr = load_corrections(saved, story.jsonl)  # the run's identity, tracks, frames, labels
    assert load_corrections(saved, review / "cam_1.quality.jsonl") == corr  # the same run
    assert corr.decisions == [
        Decision(1, "accept", frames=(0, 4)), Decision(1, "reject", frames=(6, 9)),
        Decision(5, "reject"), Decision(2, "wrong_class", label="person", frames=(7, 9)),
    ]  # fmt: skip
    assert resolve(corr, 1, 3).decision == "accept" and resolve(corr, 1, 8).decision == "reject"
    assert resolve(corr, 1, 5) is None and resolve(corr, 2, 0) is None
    jsonschema = pytest.importorskip("jsonschema")
    schema = json.loads((ROOT / "docs" / "vis.corrections.v1.schema.json").read_text())
    jsonschema.validate(json.loads(text), schema)
    # the state is shown: a class per row, a badge, the count
    rows = {
        int(t): c for c, t in re.findall(r'<tr class="track ?([\w ]*)" data-track="(\d+)"', dom)
    }
    assert rows == {1: "mixed", 2: "wrong_class", 5: "reject"}
    assert '<span id="count">3 / 3 tracks decided</span>' in dom
    # a reload in the same browser profile keeps the decisions (localStorage, keyed by run)
    errors, again = _out(_open(chromium, review / "index.html", [], profile))
    assert errors == [] and json.loads(again)["decisions"] == json.loads(text)["decisions"]
    # another profile starts empty
    _, fresh = _out(_open(chromium, review / "index.html", [], tmp_path / "other"))
    assert json.loads(fresh)["decisions"] == []
