"""Pipeline fps per detector engine: the street demo's configuration (people on real
pedestrians, PETS 2009 S2.L1 = OpenCV's vtest.avi, 768x576) on its first ``--frames`` frames,
with the detector on every frame (N=1) and on every 10th (N=10), for each engine.

    .venv/bin/python -m bench.engine_fps [--frames 120]

Needs ``~/.cache/vis-pipeline/vtest.avi`` (``scripts/get_street_video.sh``). Runs are
sequential (one pipeline at a time), N=1 and N=10 of every engine alternating, JSONL sink only.
Writes ``bench/results/engine_fps.json`` and ``.md``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2

from bench.common import ROOT, TMP, write_report

VIDEO = Path("~/.cache/vis-pipeline/vtest.avi").expanduser()
ENGINES = ("torch", "onnxruntime", "openvino")


def clip(frames: int) -> Path:
    """The first ``frames`` frames of the street video as an MJPEG AVI (written once)."""
    out = TMP / f"vtest_{frames}.avi"
    if out.is_file():
        return out
    TMP.mkdir(parents=True, exist_ok=True)
    cap = cv2.VideoCapture(str(VIDEO))
    fps = cap.get(cv2.CAP_PROP_FPS) or 10.0
    writer = None
    for _ in range(frames):
        ok, img = cap.read()
        if not ok:
            break
        if writer is None:
            h, w = img.shape[:2]
            writer = cv2.VideoWriter(str(out), cv2.VideoWriter_fourcc(*"MJPG"), fps, (w, h))
        writer.write(img)
    cap.release()
    if writer is not None:
        writer.release()
    return out


def run_once(video: Path, engine: str, interval: int, threads: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        summary = Path(tmp) / "s.json"
        cmd = [
            sys.executable,
            str(ROOT / "run_pipeline.py"),
            "-c",
            str(ROOT / "configs" / "street.yaml"),
            "--source",
            str(video),
            "-o",
            tmp,
            "--no-progress",
            "--restart",
            "--summary-json",
            str(summary),
        ]
        for setting in (
            f"detector.engine={engine}",
            f"detector.threads={threads}",
            f"keyframes.interval={interval}",
            "sinks.overlay=false",
        ):
            cmd += ["--set", setting]
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
        s = json.loads(summary.read_text())
    per = {k: round(v / s["frames"] * 1000, 1) for k, v in s["stage_seconds"].items()}
    return {
        "engine": engine,
        "interval": interval,
        "frames": s["frames"],
        "fps": s["fps"],
        "ms_per_frame_by_stage": per,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=120)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    if not VIDEO.is_file():
        print(f"bench.engine_fps: {VIDEO} is missing: run scripts/get_street_video.sh")
        return 2
    video = clip(args.frames)
    rows = []
    for engine in ENGINES:  # export / compile once, outside the measured runs
        run_once(video, engine, 10, args.threads)
    for interval in (1, 10):
        for engine in ENGINES:
            rows.append(run_once(video, engine, interval, args.threads))
            print(rows[-1], flush=True)
    md = [
        f"Street demo settings, first {args.frames} frames of vtest.avi (768x576), "
        f"{args.threads} detector thread(s), JSONL sink; load average at the end "
        f"{__import__('os').getloadavg()[0]:.1f}\n",
        "| engine | N | fps | detect ms/frame | flow | propagate | track |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        p = r["ms_per_frame_by_stage"]
        md.append(
            f"| {r['engine']} | {r['interval']} | {r['fps']:.1f} | {p.get('detect', 0)} | "
            f"{p.get('flow', 0)} | {p.get('propagate', 0)} | {p.get('track', 0)} |"
        )
    write_report("engine_fps", {"date": time.strftime("%Y-%m-%d"), "rows": rows}, "\n".join(md))
    print("bench.engine_fps: done: bench/results/engine_fps.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
