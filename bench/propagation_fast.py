"""Propagation under fast motion on DAVIS 2016, judged on two folds: DIS's finest pyramid level
(``propagation.finest_scale``) tuned on one fold and reported on the other. (A forward-backward
occlusion check was measured with it and removed: docs/history.md.)

    OMP_NUM_THREADS=1 PYTHONPATH=. .venv/bin/python -m bench.propagation_fast
    OMP_NUM_THREADS=1 PYTHONPATH=. .venv/bin/python -m bench.propagation_fast --street-fps

The six sequences are split by motion, stratified: ranked by the mean IoU of the annotation
with itself one frame later (bmx-trees 0.47, stroller 0.71, dance-twirl 0.76, lucia 0.83,
car-shadow 0.94, car-roundabout 0.97), each consecutive pair split between the folds:
**A** = bmx-trees, dance-twirl, car-shadow; **B** = stroller, lucia, car-roundabout.

Each sequence is scored as ``bench.davis_propagation`` does (the true mask on frames 0, N,
2N, ...; J over the frames in between; forward = live, bidirectional = offline) at N = 5 and
10 for every setting in ``SETTINGS``. Tuning on a fold picks the setting with the best mean J
there (mean over the fold's sequences and N = 5, 10; forward and bidirectional picked
separately); the report gives its J on the other fold. Cost: the flow's ms per frame pair
(DIS alone, ``FlowEstimator.stats``) and the propagation's (flow + warps), one thread.

``--street-fps``: the live path on the street clip (``vtest.avi``: ``bench.demo_fps
--street``'s 200 frames and config, live mode, N=5) per setting: frames per second and the
flow stage's ms per frame from the run summary. Writes bench/results/propagation_fast.{json,md}.
"""

from __future__ import annotations

import argparse
import logging
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np

from bench.common import machine, write_report
from bench.davis_propagation import load_sequence, ready, score_spans
from vis.ops.flow import FlowEstimator, Region
from vis.propagation import PropagationConfig, Propagator
from vis_eval import davis

log = logging.getLogger("bench.propagation_fast")

COMMAND = "OMP_NUM_THREADS=1 PYTHONPATH=. .venv/bin/python -m bench.propagation_fast"
INTERVALS = (5, 10)
FOLDS = {
    "A": ["bmx-trees", "dance-twirl", "car-shadow"],
    "B": ["stroller", "lucia", "car-roundabout"],
}
#: name -> ``propagation`` keys (``default``: DIS ultrafast's own finest level, 2, no check)
SETTINGS: dict[str, dict] = {
    "default": {"finest_scale": "preset"},
    "finest_1": {"finest_scale": 1},
    "finest_0": {"finest_scale": 0},
}
#: the street clip, where ``scripts/get_street_video.sh`` or a Debian package put it
STREET = [Path.home() / ".cache" / p / "vtest.avi" for p in ("vis-pipeline", "pets09")]


def _dirty() -> bool:
    """The working tree differs from its commit (tracked files)."""
    out = subprocess.run(["git", "status", "--porcelain", "-uno"], capture_output=True, text=True)
    return bool(out.stdout.strip())


def score_sequence(grays: list, gt: list, interval: int, setting: dict) -> dict:
    """J forward / bidirectional over the frames between keyframes, and the cost."""
    prop = Propagator(PropagationConfig(**setting))
    spans = score_spans(grays, gt, interval, prop)
    pairs = max(spans.pairs, 1)
    return {
        "forward": float(np.mean(spans.j["forward"])),
        "bidirectional": float(np.mean(spans.j["bidirectional"])),
        "frames": len(spans.j["forward"]),
        "flow_ms": 1000 * prop.flow.stats["flow_s"] / pairs,
        "propagation_ms": 1000 * spans.seconds / pairs,
    }


def fold_mean(rows: list[dict], setting: str, fold: str, key: str, n: int | None = None) -> float:
    sel = [
        r[key]
        for r in rows
        if r["setting"] == setting and r["sequence"] in FOLDS[fold] and n in (None, r["N"])
    ]
    return float(np.mean(sel))


def judge(rows: list[dict]) -> dict:
    """Per mode, per tuning fold: the pick, its J on the other fold, the default's there."""
    out = {}
    for mode in ("forward", "bidirectional"):
        for tuned, other in (("A", "B"), ("B", "A")):
            pick = max(SETTINGS, key=lambda s: fold_mean(rows, s, tuned, mode))
            out[f"{mode} tuned on {tuned}"] = {
                "pick": pick,
                "tuned_J": round(fold_mean(rows, pick, tuned, mode), 4),
                "reported_on": other,
                "J": round(fold_mean(rows, pick, other, mode), 4),
                "default_J": round(fold_mean(rows, "default", other, mode), 4),
            }
    return out


def street_fps(setting: dict, interval: int = 5) -> dict:
    """The live path on the street clip (``bench.demo_fps --street``'s frames and config):
    wall fps and the flow stage's ms per frame."""
    from bench.demo_fps import ROOT as DEMO_ROOT
    from bench.demo_fps import STREET_FRAMES, row, run_once
    from bench.street import frames

    video = next((p for p in STREET if p.is_file()), None)
    if video is None:
        raise SystemExit("the street clip is absent: run scripts/get_street_video.sh first")

    summary = run_once(
        DEMO_ROOT / "configs" / "street.yaml",
        [
            "mode=live",
            f"keyframes.interval={interval}",
            *(f"propagation.{k}={str(v).lower()}" for k, v in setting.items()),
            "detector.threads=1",
        ],
        str(frames(video, STREET_FRAMES)),
    )
    return row("live", interval, summary)


def flow_cost(pairs: int = 40, repeats: int = 3) -> dict:
    """Per setting, ms of one flow call on the whole street frame (768x576, one thread):
    median and min over ``pairs`` frame pairs of the best of ``repeats``, the settings
    interleaved so that a busy machine weighs on all of them alike."""
    video = next((p for p in STREET if p.is_file()), None)
    if video is None:
        raise SystemExit("the street clip is absent: run scripts/get_street_video.sh first")
    cap = cv2.VideoCapture(str(video))
    grays = []
    for _ in range(pairs + 1):
        ok, frame = cap.read()
        if not ok:
            break
        grays.append(cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY))
    cap.release()
    h, w = grays[0].shape
    whole = [Region(0, 0, w, h)]
    est = {
        name: FlowEstimator(
            finest_scale=None if setting["finest_scale"] == "preset" else setting["finest_scale"]
        )
        for name, setting in SETTINGS.items()
    }
    ms: dict[str, list[float]] = {name: [] for name in est}
    for e in est.values():
        e.field(grays[1], grays[0], whole)  # DIS instance made
    for i in range(1, len(grays)):
        for name, e in est.items():
            best = np.inf
            for _ in range(repeats):
                t0 = time.perf_counter()
                e.field(grays[i], grays[i - 1], whole)
                best = min(best, time.perf_counter() - t0)
            ms[name].append(1000 * best)
    return {
        name: {"median_ms": float(np.median(v)), "min_ms": float(np.min(v)), "size": [w, h]}
        for name, v in ms.items()
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=davis.DATA, help="the DAVIS folder")
    ap.add_argument("--street-fps", action="store_true", help="also the live path on vtest.avi")
    args = ap.parse_args(argv)
    names = [s for fold in FOLDS.values() for s in fold]
    if not ready("bench.propagation_fast", args.data, names):
        return 0
    rows = []
    for name in names:
        grays, gt = load_sequence(args.data, name)
        fold = next(f for f, seqs in FOLDS.items() if name in seqs)
        for n in INTERVALS:
            for s, setting in SETTINGS.items():
                r = {"sequence": name, "fold": fold, "N": n, "setting": s}
                r.update(score_sequence(grays, gt, n, setting))
                log.info("%s", r)
                rows.append(r)
    payload = {"command": COMMAND, "folds": FOLDS, "settings": SETTINGS, "rows": rows}
    payload["judgement"] = judge(rows)
    lines = [
        "# Propagation under fast motion: finest flow level, two folds",
        "",
        f"`{COMMAND}`; DAVIS 2016 480p, the true mask every N frames, J between keyframes. "
        f"Folds (stratified by motion): A = {', '.join(FOLDS['A'])}; B = "
        f"{', '.join(FOLDS['B'])}. ms: per frame pair, one thread, flow alone / flow + warps. "
        f"Code: commit {machine()['commit']} + uncommitted changes where the tree has them "
        f"({'yes' if _dirty() else 'no'}).",
        "",
        "| sequence | fold | N | setting | J forward (live) | J both directions (offline) | "
        "flow ms | propagation ms |",
        "|---|---|---:|---|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['sequence']} | {r['fold']} | {r['N']} | {r['setting']} | {r['forward']:.3f} | "
            f"{r['bidirectional']:.3f} | {r['flow_ms']:.1f} | {r['propagation_ms']:.1f} |"
        )
    lines += ["", "Fold means:", "", "| fold | N | setting | J forward | J both | flow ms |"]
    lines.append("|---|---:|---|---:|---:|---:|")
    for fold in FOLDS:
        for n in INTERVALS:
            for s in SETTINGS:
                f, b, ms = (
                    fold_mean(rows, s, fold, k, n) for k in ("forward", "bidirectional", "flow_ms")
                )
                lines.append(f"| {fold} | {n} | {s} | {f:.3f} | {b:.3f} | {ms:.1f} |")
    lines += ["", "Tuned on one fold, reported on the other (mean over N = 5, 10):", ""]
    for k, v in payload["judgement"].items():
        lines.append(
            f"* {k}: **{v['pick']}** ({v['tuned_J']:.3f} there); on {v['reported_on']}: "
            f"**{v['J']:.3f}** (default {v['default_J']:.3f})"
        )
    if args.street_fps:
        lines += [
            "",
            "Live path on the street clip (`vtest.avi`, the 200 frames and config of "
            "`bench.demo_fps --street`, mode live, N=5, one detector thread):",
            "",
            "| setting | fps | flow ms/frame | processing ms/frame |",
            "|---|---:|---:|---:|",
        ]
        street = {}
        for s, setting in SETTINGS.items():
            street[s] = r = street_fps(setting)
            log.info("street %s %s", s, r)
            lines.append(
                f"| {s} | {r['fps']:.1f} | {r['ms_per_frame_by_stage'].get('flow', 0):.1f} | "
                f"{r['processing_ms_per_frame']:.1f} |"
            )
        payload["street"] = street
        cost = flow_cost()
        payload["flow_cost"] = cost
        lines += [
            "",
            "Flow alone on the whole street frame (768x576, one thread; median / min over 40 "
            "frame pairs of the best of 3, settings interleaved):",
            "",
            "| setting | median ms | min ms |",
            "|---|---:|---:|",
        ]
        for name, c in cost.items():
            lines.append(f"| {name} | {c['median_ms']:.1f} | {c['min_ms']:.1f} |")
    write_report("propagation_fast", payload, "\n".join(lines))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
