"""Throughput of the keyframe design: the detector on every frame (N=1) against every 10th
(N=10), offline and live, through ``run_pipeline.py`` in one run. One command each:

    .venv/bin/python -m bench.demo_fps                      # the synthetic demo (tiny model)
    .venv/bin/python -m bench.demo_fps --street             # the street demo (people model)
    .venv/bin/python -m bench.demo_fps --r50                # torchvision's R50-FPN architecture

Each (mode, N) is a fresh ``run_pipeline.py`` process on the same clip with the config's sinks
(JSONL + overlay video; Kafka off). Reported per run: wall fps, ms per frame by stage, and the
**processing** cost per frame: the processing loop's stages (detect, flow, propagate, track,
propagate_back), decode (reader thread) and sinks (writer thread) excluded, as issue #11
defines the per-frame cost. The ratio N=10 / N=1 is given for both.

* ``--street``: ``configs/street.yaml`` on the first 200 frames of the street video (lossless
  PNGs at 10 fps, as ``bench.street`` makes them), JSONL + overlay.
* ``--r50``: the demo clip through torchvision's R50-FPN Mask R-CNN architecture with its
  initial weights (COCO weights cannot be fetched here; ``bench.engines.random_r50_checkpoint``),
  eager torch, input shorter side 480. Those weights find nothing, so its tracking cost is
  nil; the ratio is therefore also composed from its measured detector cost per keyframe and
  the demo model's measured per-frame costs (``bench/results/demo_fps.json``, same clip):
  (D + c1) / (D / 10 + c10).

Writes bench/results/<name>.{json,md} (default name: demo_fps, demo_fps_street, demo_fps_r50).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from vis.detection.precision import cpu_features  # noqa: E402

RESULTS = ROOT / "bench" / "results"
LOOP_STAGES = ("detect", "flow", "propagate", "track", "propagate_back")
STREET_FRAMES = 200


def run_once(config: Path, overrides: list[str], source: str | None = None) -> dict:
    """One ``run_pipeline.py`` process; its summary JSON."""
    with tempfile.TemporaryDirectory() as tmp:
        summary = Path(tmp) / "s.json"
        cmd = [sys.executable, str(ROOT / "run_pipeline.py"), "-c", str(config), "-o", tmp]
        cmd += ["--no-progress", "--summary-json", str(summary)]
        if source:
            cmd += ["--source", source]
        for o in ["sinks.kafka=null", "resume=false", *overrides]:
            cmd += ["--set", o]
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
        return json.loads(summary.read_text())


def row(mode: str, n: int, s: dict) -> dict:
    frames = s["frames"]
    per = {k: round(v / frames * 1000, 2) for k, v in s["stage_seconds"].items()}
    return {
        "mode": mode,
        "interval": n,
        "frames": frames,
        "detector_calls": s.get("detector_calls"),
        "seconds": round(s["seconds"], 2),
        "fps": round(s["fps"], 2),
        "ms_per_frame_by_stage": per,
        "processing_ms_per_frame": round(sum(per.get(k, 0.0) for k in LOOP_STAGES), 2),
        "detect_ms_per_call": round(
            s["stage_seconds"].get("detect", 0.0) / max(s.get("detector_calls") or 1, 1) * 1000, 1
        ),
    }


def by_mode(rows: list[dict]) -> dict[str, dict[int, dict]]:
    """mode -> {interval: row}, for the modes that have both N=1 and N=10, in row order."""
    out = {}
    for mode in dict.fromkeys(r["mode"] for r in rows):
        by = {r["interval"]: r for r in rows if r["mode"] == mode}
        if 1 in by and 10 in by:
            out[mode] = by
    return out


def ratios(rows: list[dict]) -> dict:
    """mode -> {fps ratio, processing ratio} of N=10 over N=1."""
    return {
        mode: {
            "fps": round(by[10]["fps"] / by[1]["fps"], 2),
            "processing": round(
                by[1]["processing_ms_per_frame"] / by[10]["processing_ms_per_frame"], 2
            ),
        }
        for mode, by in by_mode(rows).items()
    }


def composed(d_ms: float, demo: dict) -> dict:
    """(D + c1) / (D/10 + c10) per mode, with D a detector's ms per keyframe and c the demo
    runs' processing ms per frame without their own detector."""
    out = {}
    for mode, by in by_mode(demo["rows"]).items():
        c = {
            n: by[n]["processing_ms_per_frame"] - by[n]["ms_per_frame_by_stage"].get("detect", 0)
            for n in (1, 10)
        }
        out[mode] = {
            "c1_ms": round(c[1], 2),
            "c10_ms": round(c[10], 2),
            "ratio": round((d_ms + c[1]) / (d_ms / 10 + c[10]), 2),
        }
    return out


def street_source() -> str:
    from bench.street import VIDEO, frames

    if not VIDEO.is_file():
        raise SystemExit(f"{VIDEO} absent: run scripts/get_street_video.sh first")
    return str(frames(VIDEO, STREET_FRAMES))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    which = ap.add_mutually_exclusive_group()
    which.add_argument("--street", action="store_true", help="configs/street.yaml, 200 frames")
    which.add_argument("--r50", action="store_true", help="the R50-FPN architecture")
    ap.add_argument("--modes", nargs="+", default=["offline", "live"])
    ap.add_argument("--intervals", type=int, nargs="+", default=[1, 10])
    ap.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    ap.add_argument("--name", default=None)
    args = ap.parse_args(argv)
    config, source, extra = ROOT / "configs" / "demo.yaml", None, []
    what = "data/sample/sample.mp4 (640x360, 150 frames), configs/demo.yaml"
    name = args.name or "demo_fps"
    if args.street:
        config, source = ROOT / "configs" / "street.yaml", street_source()
        extra = ["fps=10"]
        what = f"street video frames 0-{STREET_FRAMES - 1} (768x576), configs/street.yaml"
        name = args.name or "demo_fps_street"
    elif args.r50:
        from bench.engines import random_r50_checkpoint

        extra = [
            f"detector.weights={random_r50_checkpoint()}",
            "detector.engine=torch",
            "detector.min_size=480",
            "detector.score_threshold=0.05",
        ]
        what = "data/sample/sample.mp4, configs/demo.yaml with R50-FPN (initial weights)"
        name = args.name or "demo_fps_r50"
    rows = []
    for mode in args.modes:
        for n in args.intervals:
            s = run_once(
                config, [*extra, f"mode={mode}", f"keyframes.interval={n}", *args.overrides], source
            )
            rows.append(row(mode, n, s))
            print(rows[-1], flush=True)
    report = {
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "cpu": cpu_features().describe(),
        "clip": what,
        "overrides": [*extra, *args.overrides],
        "rows": rows,
        "ratio_n10_vs_n1": ratios(rows),
    }
    demo_json = RESULTS / "demo_fps.json"
    if args.r50 and demo_json.is_file():
        d = next((r["detect_ms_per_call"] for r in rows if r["interval"] == 1), None)
        if d:
            report["composed_with_demo_c"] = composed(d, json.loads(demo_json.read_text()))
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{name}.json").write_text(json.dumps(report, indent=2) + "\n")
    md = [
        f"{what}; {report['date']}, {report['cpu']}; `python -m bench.demo_fps"
        + (" --street" if args.street else " --r50" if args.r50 else "")
        + "`",
        "",
        "| mode | N | fps | processing ms/frame | detect | flow | propagate | track "
        "| propagate_back | decode | sinks | ms per detector call |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        p = r["ms_per_frame_by_stage"]
        md.append(
            f"| {r['mode']} | {r['interval']} | {r['fps']:.1f} | {r['processing_ms_per_frame']} | "
            + " | ".join(
                str(p.get(k, 0))
                for k in ("detect", "flow", "propagate", "track", "propagate_back", "decode")
            )
            + f" | {p.get('sink', 0)} | {r['detect_ms_per_call']} |"
        )
    md.append("")
    for mode, r in report["ratio_n10_vs_n1"].items():
        md.append(
            f"* {mode}: N=10 runs at **{r['fps']}x** the fps of N=1; processing cost per "
            f"frame (decode and sinks excluded) N=1 / N=10 = **{r['processing']}x**."
        )
    for mode, r in report.get("composed_with_demo_c", {}).items():
        md.append(
            f"* {mode}, composed: this detector's cost per keyframe with the demo runs' per-frame "
            f"costs (c1 {r['c1_ms']} ms, c10 {r['c10_ms']} ms): **{r['ratio']}x**."
        )
    (RESULTS / f"{name}.md").write_text("\n".join(md) + "\n")
    print("\n".join(md))
    return 0


if __name__ == "__main__":
    sys.exit(main())
