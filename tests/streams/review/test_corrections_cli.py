"""``vis-pipeline corrections``: decisions from the command line, in order, merged into an
existing file, and one line with exit code 2 for any bad input."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from streams.review.corrections import Decision, load_corrections, resolve
from tests.conftest import ROOT
from vis_pipeline.cli import main


def test_records_decisions_in_command_line_order(story, tmp_path, capsys):
    out = tmp_path / "c.json"
    code = main(["corrections", str(story.jsonl), "-o", str(out), "--accept", "1", "--reject",
                 "1:6-9,5", "--wrong-class", "2:0-3=person", "--reviewer", "ann"])  # fmt: skip
    assert code == 0
    assert "4 decisions about 3 tracks of cam 1" in capsys.readouterr().out
    corr = load_corrections(out, story.jsonl)
    assert corr.reviewer == "ann"
    assert corr.decisions == [
        Decision(1, "accept"), Decision(1, "reject", frames=(6, 9)), Decision(5, "reject"),
        Decision(2, "wrong_class", label="person", frames=(0, 3)),
    ]  # fmt: skip
    assert resolve(corr, 1, 4).decision == "accept" and resolve(corr, 1, 7).decision == "reject"


def test_merge_adds_after_the_file_and_overrides(story, tmp_path):
    out = tmp_path / "c.json"
    args = ["corrections", str(story.jsonl), "-o", str(out)]
    assert main([*args, "--reject", "1:6-9", "--accept", "5"]) == 0
    assert main([*args, "--accept", "2"]) == 2  # exists: --merge or remove it
    assert main([*args, "--merge", "--accept", "1:0-9", "--reject", "2:7-9"]) == 0
    corr = load_corrections(out, story.jsonl)
    # 1:0-9 is the whole of track 1: recorded as such, and the reject it covers is dropped
    assert corr.decisions == [
        Decision(5, "accept"), Decision(1, "accept"), Decision(2, "reject", frames=(7, 9)),
    ]  # fmt: skip
    assert main([*args, "--merge"]) == 0  # nothing to add: checks the file against the run


BAD = [
    (["--accept", "42"], "--accept 42: track 42 is not in run 'cam 1' (tracks 1, 2, 5)"),
    (["--reject", "5:0-4"], "frames 0-4 are outside track 5 (frames 2-4)"),
    (["--reject", "5:4-2"], "--reject 5:4-2: frames [4, 2] of track 5 must be [start, stop]"),
    (["--reject", "five"], "--reject 'five': expected TRACK or TRACK:START-STOP"),
    (["--wrong-class", "2"], "--wrong-class '2': expected TRACKS=LABEL"),
    (["--wrong-class", "2=bicycle"], "label 'bicycle' for track 2 is not one of the run's labels"),
    ([], "no decisions: give --accept, --reject or --wrong-class"),
    (["--accept", "1", "--reviewer", "r" * 300], "--reviewer 'rrrr"),
    (["--wrong-class", "2=" + "c" * 300], "(300 characters) is longer than 200 characters"),
    (["--accept", "1", "-o", "/nonexistent-dir/c.json"], "cannot write --output"),
]


@pytest.mark.parametrize(("extra", "message"), BAD)
def test_bad_input_is_one_line_and_exit_2(story, tmp_path, capsys, extra, message):
    out = tmp_path / "c.json"
    assert main(["corrections", str(story.jsonl), "-o", str(out), *extra]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and message in err
    assert not out.exists()


def test_refuses_to_merge_into_another_runs_file(story, tmp_path, capsys):
    other = tmp_path / "other.jsonl"
    lines = story.jsonl.read_text().splitlines()
    other.write_text("\n".join(lines[:-1]) + "\n")  # one frame shorter: other track spans
    out = tmp_path / "c.json"
    assert main(["corrections", str(other), "-o", str(out), "--accept", "1"]) == 0
    capsys.readouterr()
    assert main(["corrections", str(story.jsonl), "-o", str(out), "--merge", "--reject", "1"]) == 2
    err = capsys.readouterr().err
    assert "belongs to another run" in err and "review this run's page again" in err
    assert json.loads(out.read_text())["decisions"] == [{"track_id": 1, "decision": "accept"}]


@pytest.mark.slow
def test_the_installed_entry_point(story, tmp_path):
    """Through ``python -m vis_pipeline`` (what the ``vis-pipeline`` script calls; ~10 s of
    imports on 2 cores)."""
    out = tmp_path / "c.json"
    cmd = [sys.executable, "-m", "vis_pipeline", "corrections", str(story.jsonl), "-o", str(out)]
    env = {"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}
    ok = subprocess.run([*cmd, "--reject", "5"], capture_output=True, text=True, env=env, cwd=ROOT)
    assert ok.returncode == 0, ok.stderr
    assert load_corrections(out, story.jsonl).decisions == [Decision(5, "reject")]
    bad = subprocess.run([*cmd, "--merge", "--accept", "7"], capture_output=True, text=True,
                         env=env, cwd=ROOT)  # fmt: skip
    assert bad.returncode == 2
    assert bad.stderr.strip() == (
        "error: --accept 7: track 7 is not in run 'cam 1' (tracks 1, 2, 5); "
        "decide about the run's own tracks"
    )


@pytest.mark.parametrize("special", ["/dev/zero", "/dev/null"])
def test_a_special_file_as_the_run_is_one_line_exit_2(tmp_path, capsys, special):
    """Not read (``/dev/zero`` has no end of line): refused by what it is."""
    out = tmp_path / "c.json"
    assert main(["corrections", special, "-o", str(out), "--accept", "1"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and f"cannot read {special}: not a regular file" in err
    assert main(["export", "-f", "coco", "-i", special, "-o", str(tmp_path / "x")]) == 2
    assert "not a regular file" in capsys.readouterr().err
