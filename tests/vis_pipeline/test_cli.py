"""The CLI and the whole pipeline on real videos with the shipped demo model."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter, defaultdict

import numpy as np
import pytest

from tests.conftest import ROOT, SAMPLE_GT
from vis_eval.sequences import format_lines, read_mots_by_frame
from vis.schema import decode_record
from vis.tracking.config import TrackerConfig
from vis_pipeline.cli import main


def run_cli(args: list[str], capsys) -> tuple[int, str, str]:
    code = main(args)
    out, err = capsys.readouterr()
    return code, out, err


def read_jsonl(path):
    return [decode_record(json.loads(line)) for line in path.read_text().splitlines()]


def match_quality(results, gt_by_frame):
    """Per GT object: predicted ids it was matched to (IoU >= 0.5), mean IoU, coverage."""
    ids = defaultdict(list)
    ious, matched, total = [], 0, 0
    for r in results:
        d = r.detections
        for gid, _, gm in gt_by_frame.get(r.frame_index, []):
            if gm.sum() < 200:
                continue
            total += 1
            best, best_iou = None, 0.0
            for tid, pm in zip(d.track_ids, d.full_masks()):
                iou = (gm & pm).sum() / max((gm | pm).sum(), 1)
                if iou > best_iou:
                    best, best_iou = int(tid), iou
            if best_iou >= 0.5:
                matched += 1
                ious.append(best_iou)
                ids[gid].append(best)
    switches = sum(sum(1 for a, b in zip(v, v[1:]) if a != b) for v in ids.values())
    return {
        "coverage": matched / max(total, 1),
        "mean_iou": float(np.mean(ious)) if ious else 0.0,
        "switches": switches,
        "ids": ids,
    }


def test_help_documents_every_option(capsys):
    with pytest.raises(SystemExit) as info:
        main(["--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    for opt in (
        "--config",
        "--source",
        "--output",
        "--set",
        "--stream-id",
        "--no-progress",
        "--summary-json",
        "--print-config",
        "--log-level",
        "Exit codes",
    ):
        assert opt in out


def test_print_config_names_the_cpu_and_the_precision_the_engine_is_told(capsys):
    from vis.detection.precision import cpu_features

    code, out, _ = run_cli(
        ["--config", "configs/street.yaml", "--set", "detector.precision=bf16", "--print-config"],
        capsys,
    )
    assert code == 0
    assert "precision: bf16" in out
    assert f"# CPU: {cpu_features().describe()}" in out
    assert "# detector: openvino told to run at bf16" in out
    assert "its own default on this CPU:" in out


@pytest.mark.parametrize(
    "args, needle",
    [
        (["--set", "keyframes.interval=0"], "keyframes.interval=0"),
        (["--set", "detector.precision=bf16", "--set", "detector.engine=onnxruntime"], "bf16"),
        (["--set", "detector.bogus=1"], "unknown key detector.bogus"),
        (["--set", "tracker.max_lost_s=-3"], "tracker.max_lost_s=-3"),
        (["--config", "/nonexistent/cfg.yaml"], "/nonexistent/cfg.yaml"),
    ],
)
def test_invalid_config_exits_2_with_one_line(args, needle, capsys):
    code, out, err = run_cli(["--config", "configs/demo.yaml", *args, "--no-progress"], capsys)
    assert code == 2
    assert needle in err and len(err.strip().splitlines()) == 1


def _file(name: str, data: bytes):
    def make(tmp):
        (tmp / name).write_bytes(data)
        return tmp / name

    return make


def _fifo(tmp):
    os.mkfifo(tmp / "pipe.mp4")
    return tmp / "pipe.mp4"


@pytest.mark.parametrize(
    "make_source, needle",
    [
        (lambda tmp: tmp / "missing.mp4", "not found"),
        (_file("zero.mp4", b""), "empty (0 bytes)"),
        (_file("text.mp4", b"x" * 5000), "cannot be opened"),
        (lambda tmp: "/dev/zero", "is not a video file, a folder of images or a camera"),
        (lambda tmp: "/dev/null", "is not a video file, a folder of images or a camera"),
        (_fifo, "is not a video file, a folder of images or a camera"),
    ],
)
def test_bad_source_exits_2_naming_the_path(make_source, needle, tmp_path, capsys):
    src = make_source(tmp_path)
    code, out, err = run_cli(
        [
            "--config",
            "configs/demo.yaml",
            "--source",
            str(src),
            "--output",
            str(tmp_path / "o"),
            "--no-progress",
        ],
        capsys,
    )
    assert code == 2
    assert needle in err and str(src) in err and len(err.strip().splitlines()) == 1


def test_missing_or_wrong_weights_exit_2(tmp_path, capsys):
    code, _, err = run_cli(
        [
            "--config",
            "configs/demo.yaml",
            "--set",
            f"detector.weights={tmp_path}/none.pt",
            "--output",
            str(tmp_path),
            "--no-progress",
        ],
        capsys,
    )
    assert code == 2 and "none.pt" in err and "not found" in err
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"\x00" * 100)
    code, _, err = run_cli(
        [
            "--config",
            "configs/demo.yaml",
            "--set",
            f"detector.weights={bad}",
            "--output",
            str(tmp_path),
            "--no-progress",
        ],
        capsys,
    )
    assert code == 2 and "bad.pt" in err


@pytest.mark.slow
def test_demo_sample_end_to_end_ids_stable_and_masks_on_target(tmp_path, capsys):
    out = tmp_path / "out"
    summary = tmp_path / "summary.json"
    code, stdout, err = run_cli(
        [
            "--config",
            "configs/demo.yaml",
            "--output",
            str(out),
            "--set",
            "keyframes.interval=5",
            "--no-progress",
            "--summary-json",
            str(summary),
        ],
        capsys,
    )
    assert code == 0, err
    results = read_jsonl(out / "sample.jsonl")
    assert [r.frame_index for r in results] == list(range(150))
    assert sum(r.keyframe for r in results) == 30
    assert (out / "sample.overlay.mp4").stat().st_size > 10_000
    q = match_quality(results, read_mots_by_frame(SAMPLE_GT))
    # measured with the shipped model: coverage 0.96, mean IoU 0.90, 0 switches
    assert q["coverage"] >= 0.9, q["coverage"]
    assert q["mean_iou"] >= 0.85, q["mean_iou"]
    assert q["switches"] <= 1, {k: Counter(v) for k, v in q["ids"].items()}
    s = json.loads(summary.read_text())
    assert s["frames"] == 150 and s["keyframes"] == 30 and s["exit_code"] == 0
    assert {"decode", "detect", "flow", "propagate", "track", "sink"} <= set(s["stage_seconds"])
    assert "frames 150" in stdout and "fps" in stdout


@pytest.mark.slow
def test_image_folder_source_gives_the_same_results_as_the_video(small_video, tmp_path, capsys):
    import cv2

    from streams.sources import VideoFileSource

    video, _ = small_video
    folder = tmp_path / "frames"
    folder.mkdir()
    for f in VideoFileSource(video):
        cv2.imwrite(str(folder / f"{f.index}.png"), f.image)
    for src, name in ((video, "v"), (folder, "f")):
        code, _, err = run_cli(
            [
                "--config",
                "configs/demo.yaml",
                "--source",
                str(src),
                "--stream-id",
                "s",
                "--output",
                str(tmp_path / name),
                "--set",
                "sinks.overlay=false",
                "--no-progress",
            ],
            capsys,
        )
        assert code == 0, err
    a = [json.loads(x) for x in (tmp_path / "v" / "s.jsonl").read_text().splitlines()]
    b = [json.loads(x) for x in (tmp_path / "f" / "s.jsonl").read_text().splitlines()]
    assert len(a) == 40 and a == b


@pytest.mark.slow
def test_corrupt_frames_mid_video_leave_gaps_and_the_tracks_go_on(small_video, tmp_path, capsys):
    from tests.conftest import mjpeg_copy_with_corrupt_frames

    video, _ = small_video
    bad = tmp_path / "bad.avi"
    mjpeg_copy_with_corrupt_frames(video, bad, {12, 20})  # 20 is due to be a keyframe
    summary = tmp_path / "summary.json"
    code, _, err = run_cli(
        [
            "--config",
            "configs/demo.yaml",
            "--source",
            str(bad),
            "--output",
            str(tmp_path / "out"),
            "--set",
            "sinks.overlay=false",
            "--no-progress",
            "--summary-json",
            str(summary),
        ],
        capsys,
    )
    assert code == 0, err  # everything decodable was processed; the gaps are reported
    s = json.loads(summary.read_text())["streams"][0]
    assert s["corrupt_frames"] == 2 and not s["truncated"] and s["frames"] == 38
    recs = read_jsonl(tmp_path / "out" / "bad.jsonl")
    assert [r.frame_index for r in recs] == [i for i in range(40) if i not in (12, 20)]
    by_frame = {r.frame_index: r for r in recs}
    assert by_frame[21].keyframe  # the detector runs on the next frame instead
    for before, after in ((11, 13), (19, 21)):  # every track goes on (a keyframe may add one)
        assert set(by_frame[before].detections.track_ids) <= set(
            by_frame[after].detections.track_ids
        )


@pytest.mark.parametrize("score", [0.95, 0.6])
def test_precomputed_detections_are_tracked(small_video, tmp_path, capsys, score):
    """Another detector's file is tracked, whether that detector is as sure of the objects
    as the shipped models (0.95) or less (0.6, every threshold read on
    ``tracker.score_reference``'s scale); the summary says what its scores were read as."""
    from vis_eval.synthetic import CLASS_NAMES

    video, gt = small_video
    dets = tmp_path / "dets.jsonl"
    labels = {c: n for c, n in CLASS_NAMES.items()}
    with open(dets, "w") as fh:
        for frame, rows in sorted(read_mots_by_frame(gt).items()):
            inst = []
            for tid, cid, m in rows:
                ys, xs = np.nonzero(m)
                rle = format_lines(frame, [tid], [cid], m[None])[0].split()[5]
                inst.append(
                    {
                        "class_id": cid,
                        "label": labels[cid],
                        "score": score,
                        "bbox": [
                            int(xs.min()),
                            int(ys.min()),
                            int(xs.max()) + 1,
                            int(ys.max()) + 1,
                        ],
                        "mask": {"size": list(m.shape), "counts": rle},
                    }
                )
            fh.write(
                json.dumps(
                    {
                        "schema": "vis.frame/1",
                        "stream_id": "x",
                        "frame_index": frame,
                        "timestamp_ms": 0.0,
                        "keyframe": True,
                        "width": 320,
                        "height": 192,
                        "instances": inst,
                    }
                )
                + "\n"
            )
        fh.write("{truncated json\n")
    code, _, err = run_cli(
        [
            "--source",
            str(video),
            "--output",
            str(tmp_path / "o"),
            "--set",
            "detector.type=precomputed",
            "--set",
            f"detector.path={dets}",
            "--set",
            "detector.weights=null",
            "--set",
            "keyframes.interval=4",
            "--set",
            "sinks.overlay=false",
            "--summary-json",
            str(tmp_path / "summary.json"),
            "--no-progress",
        ],
        capsys,
    )
    assert code == 0, err
    results = read_jsonl(tmp_path / "o" / "small.jsonl")
    q = match_quality(results, read_mots_by_frame(gt))
    assert len(results) == 40
    assert q["coverage"] >= 0.9 and q["mean_iou"] >= 0.85 and q["switches"] == 0
    assert {r.labels[c] for r in results for c in r.detections.class_ids} <= set(labels.values())
    assert {round(float(v), 2) for r in results for v in r.detections.scores} == {score}
    (summary,) = json.loads((tmp_path / "summary.json").read_text())["streams"]
    reference = TrackerConfig().score_reference
    assert summary["score_scale"] == pytest.approx(max(1.0, reference / score), abs=1e-3)


def run_precomputed(video, dets, out, capsys) -> tuple[int, str, str]:
    """The CLI on ``video`` with the detections file ``dets``, every frame a keyframe."""
    sets = [
        "detector.type=precomputed",
        f"detector.path={dets}",
        "detector.weights=null",
        "keyframes.interval=1",
        "sinks.overlay=false",
    ]
    args = ["--source", str(video), "--output", str(out), "--no-progress"]
    for s in sets:
        args += ["--set", s]
    return run_cli(args, capsys)


def _box_rows(gt) -> dict[int, list[tuple[int, list[int]]]]:
    """{frame: [(class_id, [x0, y0, x1, y1])]} of the synthetic ground truth's objects."""
    out = {}
    for frame, rows in sorted(read_mots_by_frame(gt).items()):
        out[frame] = []
        for _, cid, m in rows:
            ys, xs = np.nonzero(m)
            out[frame].append(
                (cid, [int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1])
            )
    return out


@pytest.mark.parametrize("form", ["mot", "jsonl"])
def test_a_detector_of_boxes_only_is_tracked(small_video, tmp_path, capsys, form):
    """Boxes without masks, as most detectors and MOTChallenge ``det.txt`` files give them:
    a ``.txt`` in MOTChallenge's format (1-based frames, x, y, w, h, conf), or ``vis.frame``
    records whose instances have no ``mask``. Each box is its own mask; every object is
    tracked under one id."""
    video, gt = small_video
    boxes = _box_rows(gt)
    if form == "mot":
        dets = tmp_path / "det.txt"
        dets.write_text(
            "".join(
                f"{f + 1},-1,{b[0]},{b[1]},{b[2] - b[0]},{b[3] - b[1]},0.9,-1,-1,-1\n"
                for f, rows in boxes.items()
                for _, b in rows
            )
            + "not,a,line\n"
        )
    else:
        dets = tmp_path / "dets.jsonl"
        dets.write_text(
            "".join(
                json.dumps(
                    {
                        "schema": "vis.frame/2",
                        "stream_id": "x",
                        "frame_index": f,
                        "timestamp_ms": 0.0,
                        "keyframe": True,
                        "width": 320,
                        "height": 192,
                        "instances": [
                            {"class_id": 1, "label": "thing", "score": 0.9, "bbox": b}
                            for _, b in rows
                        ],
                    }
                )
                + "\n"
                for f, rows in boxes.items()
            )
        )
    code, _, err = run_precomputed(video, dets, tmp_path / "o", capsys)
    assert code == 0, err
    results = read_jsonl(tmp_path / "o" / "small.jsonl")
    assert len(results) == 40
    n_objects = {f: len(rows) for f, rows in boxes.items()}
    out_boxes = {r.frame_index: r.detections.xyxy for r in results}
    for f, rows in boxes.items():  # every object out, each at its box
        assert len(out_boxes[f]) == n_objects[f]
        for _, b in rows:
            assert np.abs(out_boxes[f] - np.array(b)).max(axis=1).min() <= 2
    ids = {tid for r in results for tid in r.detections.track_ids.tolist()}
    assert len(ids) == max(n_objects.values())  # no object changed id
    if form == "mot":
        assert {r.labels[c] for r in results for c in r.detections.class_ids} == {"person"}


def test_an_unsorted_mot_file_is_refused_with_the_fix(small_video, tmp_path, capsys):
    video, _ = small_video
    dets = tmp_path / "det.txt"
    dets.write_text("1,-1,10,10,20,20,0.9\n3,-1,10,10,20,20,0.9\n2,-1,10,10,20,20,0.9\n")
    code, _, err = run_precomputed(video, dets, tmp_path / "o", capsys)
    assert code == 2
    assert str(dets) in err and "sort the file by frame" in err


@pytest.mark.slow
def test_sigint_flushes_processed_frames_and_exits_130(tmp_path):
    out = tmp_path / "o"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [
            sys.executable,
            str(ROOT / "run_pipeline.py"),
            "--config",
            str(ROOT / "configs/demo.yaml"),
            "--output",
            str(out),
            "--set",
            "keyframes.interval=1",
            "--no-progress",
            "--summary-json",
            str(tmp_path / "s.json"),
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    jsonl = out / "sample.jsonl"
    deadline = time.time() + 120
    while time.time() < deadline and (
        not jsonl.exists() or len(jsonl.read_text().splitlines()) < 5
    ):
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    assert "interrupted by SIGINT" in stderr
    results = read_jsonl(jsonl)  # every line is a complete record
    s = json.loads((tmp_path / "s.json").read_text())
    assert 5 <= len(results) == s["frames"] < 150
    assert [r.frame_index for r in results] == list(range(len(results)))


# -- one CLI: every subcommand listed, the older forms kept ------------------------------------
def _help(args: list[str], capsys) -> str:
    with pytest.raises(SystemExit) as info:
        main(args)
    assert info.value.code == 0
    return capsys.readouterr().out


def test_help_lists_every_subcommand_with_a_line_and_each_one_answers(capsys):
    from vis_pipeline import cli
    from vis_pipeline.worker.cli import build_parser as worker_parser

    dispatched = {"run", "train", "consume", *cli.ANNOTATION_COMMANDS, *cli.WORKER_COMMANDS}
    worker = worker_parser()._subparsers._group_actions[0].choices  # noqa: SLF001
    assert dispatched | set(worker) == set(cli.SUBCOMMANDS)
    out = _help(["--help"], capsys)
    for name, line in cli.SUBCOMMANDS.items():
        assert any(row.split() == [name, *line.split()] for row in out.splitlines()), name
    for name in cli.SUBCOMMANDS:
        usage = _help([name, "--help"], capsys).splitlines()[0]
        assert usage.startswith(f"usage: vis-pipeline {name}"), usage


def test_run_is_the_same_command_as_no_subcommand(capsys):
    args = ["--config", "configs/demo.yaml", "--set", "keyframes.interval=3", "--print-config"]
    assert run_cli(["run", *args], capsys) == run_cli(args, capsys)
    code, _, err = run_cli(["run", "--config", "configs/demo.yaml", "--set", "x.y=1"], capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1


def test_vis_pipeline_train_is_tools_train_under_its_new_name(capsys):
    from vis_train.cli import parse_args

    out = _help(["train", "--help"], capsys)
    assert out.startswith("usage: vis-pipeline train") and "--pennfudan" in out
    args = ["--pennfudan", "p", "--classes", "person", "--out", "m.pt"]
    assert parse_args(args, "vis-pipeline train").prog == "vis-pipeline train"
    assert parse_args(args).prog == "tools/train.py"  # what the AP JSON of the old form says
    with pytest.raises(SystemExit) as info:  # no data: the same usage error, exit 2
        main(["train", "--classes", "person"])
    assert info.value.code == 2


@pytest.mark.slow
def test_the_older_command_forms_still_work():
    def cli(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=300
        )

    old = cli("tools/train.py", "--help")
    assert old.returncode == 0 and old.stdout.startswith("usage: tools/train.py")
    assert old.stderr.strip() == "note: tools/train.py is now `vis-pipeline train` (same options)"
    bad = cli("tools/train.py", "--classes", "person")
    assert bad.returncode == 2 and "--pennfudan" in bad.stderr
    script = cli("run_pipeline.py", "--help")
    assert script.returncode == 0 and script.stdout.startswith("usage: run_pipeline.py")
    assert "subcommands" in script.stdout
    kafka = cli("-m", "streams.kafka", "--help")
    assert kafka.returncode == 0 and kafka.stdout.startswith("usage: python -m streams.kafka")


def test_skipped_detection_records_are_counted_in_the_summary(small_video, tmp_path, capsys):
    """Rows of a det.txt that are not finite numbers are skipped one by one, each logged, and
    the run's summary says how many: a run that lost input never reads as a clean one."""
    video, gt = small_video
    boxes = _box_rows(gt)
    good = "".join(
        f"{f + 1},-1,{b[0]},{b[1]},{b[2] - b[0]},{b[3] - b[1]},0.9,-1,-1,-1\n"
        for f, rows in boxes.items()
        for _, b in rows
    )
    bad = "1,-1,nan,0,10,10,0.9\n2,-1,0,0,inf,10,0.9\n3,-1,1e30,0,10,10,0.9\n"
    dets = tmp_path / "det.txt"
    # the bad rows sit at frames 1-3, in frame order with the good ones
    lines = sorted((good + bad).splitlines(), key=lambda row: int(row.split(",")[0]))
    dets.write_text("\n".join(lines) + "\n")
    code, out, err = run_precomputed(video, dets, tmp_path / "o", capsys)
    assert code == 0, err
    assert "3 detection records skipped" in out + err
    results = read_jsonl(tmp_path / "o" / "small.jsonl")
    assert len(results) == 40
    assert all(len(r.detections) == len(boxes[r.frame_index]) for r in results[5:])
