"""The street demo scored: ``configs/street.yaml`` on the first 400 frames of the street video
(PETS 2009 S2.L1 = OpenCV's ``vtest.avi``), boxes against the MOT15 ground truth.

    PYTHONPATH=. .venv/bin/python -m bench.street                              # shipped model
    PYTHONPATH=. .venv/bin/python -m bench.street --model models/x.pt --name street_x

Frames 0-399 are written once as lossless PNGs under ``bench/results/tmp/street/frames``
(from ``~/.cache/vis-pipeline/vtest.avi``, which ``scripts/get_street_video.sh`` fetches),
run through ``vis_pipeline.run`` at 10 fps (the file's rate) with JSONL only and one detector
thread, and scored by ``vis_eval.pets09`` (TrackEval HOTA, IDF1, id switches, FP / FN boxes).
Without the video or the ground truth the study prints what is missing and exits 0.
Writes ``bench/results/<name>.{json,md}``.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import cv2

from bench.common import RESULTS, ROOT, setup_logging, write_report
from streams.sinks import jsonl_path
from vis_eval import pets09
from vis_eval.tables import markdown_table
from vis_pipeline import load_config, run

log = logging.getLogger("bench.street")

CONFIG = ROOT / "configs" / "street.yaml"
VIDEO = Path.home() / ".cache" / "vis-pipeline" / "vtest.avi"
WORK = RESULTS / "tmp" / "street"
COMMAND = "PYTHONPATH=. .venv/bin/python -m bench.street"
BASE = [
    "detector.threads=1",
    "fps=10",
    "sinks.overlay=false",
    "sinks.jsonl=true",
    "sinks.kafka=null",
    "resume=false",
]


def frames(video: Path, n: int = pets09.DEV_FRAMES) -> Path:
    """The first ``n`` frames of ``video`` as ``WORK/frames/%05d.png`` (``frames_<n>`` for
    another count than the scored one; written once)."""
    out = WORK / ("frames" if n == pets09.DEV_FRAMES else f"frames_{n}")
    if len(list(out.glob("*.png"))) == n:
        return out
    out.mkdir(parents=True, exist_ok=True)
    cap = cv2.VideoCapture(str(video))
    for i in range(n):
        ok, frame = cap.read()
        if not ok:
            raise RuntimeError(f"{video} ended at frame {i}, {n} needed")
        cv2.imwrite(str(out / f"{i:05d}.png"), frame)
    cap.release()
    return out


def street_overrides(model: str, overrides: list[str]) -> list[str]:
    """The study's settings, then ``model`` and the caller's ``overrides``."""
    return [*BASE, f"detector.weights={model}", *overrides]


def run_street(model: str, overrides: list[str], name: str) -> tuple[dict, dict]:
    """``configs/street.yaml`` with ``model`` and ``overrides`` on frames 0-399, scored:
    (the TrackEval row, the run summary). Its JSONL is ``WORK/<name>/00000-...jsonl``."""
    src = frames(VIDEO)
    out = WORK / name
    cfg = load_config(
        CONFIG, street_overrides(model, overrides), sources=[str(src)], output=str(out)
    )
    summary = run(cfg, progress=True).to_json()
    if summary.get("exit_code"):
        raise RuntimeError(f"pipeline failed: {summary.get('error')}")
    result = pets09.score(
        pets09.load_gt(), {"ours": pets09.tracks_from_jsonl(jsonl_path(out, src.name))}
    )["ours"]
    return result, summary


def fold_scores(name: str) -> dict[str, dict[str, float]]:
    """HOTA, DetA and AssA of the run ``WORK/<name>`` on each fold of the dev span split in
    time (``pets09.FOLDS``: A = frames 0-199, B = 200-399)."""
    tracks = pets09.tracks_from_jsonl(jsonl_path(WORK / name, frames(VIDEO).name))
    gt = pets09.load_gt()
    out = {}
    for fold, (a, b) in pets09.FOLDS.items():
        s = pets09.score_span(gt, {"t": tracks}, a, b)["t"]
        out[fold] = {k: round(float(s[k]), 2) for k in ("HOTA", "DetA", "AssA")}
    return out


def missing_inputs() -> list[Path]:
    """What the study needs and this machine lacks (the footage, the ground truth)."""
    return [p for p in (VIDEO, pets09.DATA / "gt.txt") if not p.is_file()]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="people", help="detector.weights (name or path)")
    ap.add_argument("--name", default="street", help="report name under bench/results")
    ap.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    args = ap.parse_args(argv)
    setup_logging()
    missing = missing_inputs()
    if missing:
        print(f"bench.street skipped: {', '.join(map(str, missing))} absent", file=sys.stderr)
        return 0
    overrides = street_overrides(args.model, args.overrides)
    result, _ = run_street(args.model, args.overrides, args.name)
    row = {"model": args.model, **result}
    cols = [("model", "model", "s")] + [
        (k, k, ".2f" if isinstance(v, float) else "d") for k, v in result.items()
    ]
    extra = f" `{' '.join('--set ' + o for o in args.overrides)}`" if args.overrides else ""
    md = (
        f"Street demo on PETS 2009 S2.L1 frames 0-399, `{COMMAND} --model {args.model}`"
        f"{extra}; configs/street.yaml, 10 fps, 1 detector thread; boxes scored against the "
        "MOT15 ground truth (TrackEval).\n\n" + markdown_table([row], cols)
    )
    payload = {"command": COMMAND, "config": "configs/street.yaml", "overrides": overrides}
    _, m = write_report(args.name, {**payload, "result": row}, md)
    print(m.read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
