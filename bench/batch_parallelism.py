"""How to use both cores for offline batch jobs: torch intra-op threads vs streams in
parallel vs two processes. One command:

    .venv/bin/python -m bench.batch_parallelism [--videos 4 --frames 100]

Writes bench/results/parallelism.json and bench/results/parallelism.md.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tools.make_sample import write_scene  # noqa: E402
from vis_eval.synthetic import SceneConfig  # noqa: E402


def pipeline(sources: list[Path], out: Path, sets: list[str]) -> list[str]:
    cmd = [
        sys.executable,
        str(ROOT / "run_pipeline.py"),
        "-c",
        str(ROOT / "configs/demo.yaml"),
        "-o",
        str(out),
        "--no-progress",
        "--restart",
        "--set",
        "sinks.overlay=false",
    ]
    for s in sources:
        cmd += ["-s", str(s)]
    for s in sets:
        cmd += ["--set", s]
    return cmd


def timed(cmds: list[list[str]]) -> float:
    t = time.perf_counter()
    procs = [subprocess.Popen(c, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE) for c in cmds]
    for p in procs:
        _, err = p.communicate()
        if p.returncode != 0:
            raise SystemExit(f"pipeline failed: {err.decode()[-500:]}")
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--videos", type=int, default=4)
    ap.add_argument("--frames", type=int, default=100)
    ap.add_argument("--intervals", type=int, nargs="+", default=[1, 10])
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    a = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="vis-par-"))
    videos = []
    for i in range(a.videos):
        v = tmp / f"v{i}.mp4"
        write_scene(SceneConfig(n_frames=a.frames, seed=500 + i, n_objects=6), v)
        videos.append(v)
    total = a.videos * a.frames
    rows = []
    for n in a.intervals:
        k = f"keyframes.interval={n}"
        variants = {
            "1 process, torch threads=1, 1 stream at a time": [
                pipeline(videos, tmp / "a", [k, "detector.threads=1"])
            ],
            "1 process, torch threads=2, 1 stream at a time": [
                pipeline(videos, tmp / "b", [k, "detector.threads=2"])
            ],
            "1 process, torch threads=2, 2 streams, batch 2": [
                pipeline(
                    videos,
                    tmp / "c",
                    [k, "detector.threads=2", "parallel_streams=2", "detector.batch_size=2"],
                )
            ],
            "1 process, torch threads=1, 2 streams, batch 2": [
                pipeline(
                    videos,
                    tmp / "d",
                    [k, "detector.threads=1", "parallel_streams=2", "detector.batch_size=2"],
                )
            ],
            "2 processes x torch threads=1": [
                pipeline(videos[0::2], tmp / "e", [k, "detector.threads=1"]),
                pipeline(videos[1::2], tmp / "e", [k, "detector.threads=1"]),
            ],
        }
        base = None
        for name, cmds in variants.items():
            secs = timed(cmds)
            fps = total / secs
            base = base or fps
            load = os.getloadavg()[0]
            rows.append(
                {
                    "interval": n,
                    "variant": name,
                    "seconds": round(secs, 2),
                    "fps": round(fps, 2),
                    "vs_first": round(fps / base, 2),
                    "load_avg_1min_after": round(load, 2),
                }
            )
            print(rows[-1], flush=True)
    a.out.mkdir(parents=True, exist_ok=True)
    meta = {
        "videos": a.videos,
        "frames_each": a.frames,
        "resolution": "640x360",
        "model": "demo tiny_fpn",
        "date": time.strftime("%Y-%m-%d"),
        "cores": 2,
    }
    (a.out / "parallelism.json").write_text(
        json.dumps({"meta": meta, "rows": rows}, indent=2) + "\n"
    )
    md = [
        "| keyframe interval | variant | seconds | fps | vs threads=1 | load after |",
        "|---|---|---|---|---|---|",
    ]
    md += [
        f"| {r['interval']} | {r['variant']} | {r['seconds']} | {r['fps']} | {r['vs_first']}x | "
        f"{r['load_avg_1min_after']} |"
        for r in rows
    ]
    (a.out / "parallelism.md").write_text(
        f"{a.videos} videos x {a.frames} frames, 640x360, demo model, 2 cores, {meta['date']}. "
        "A 1-minute load average above ~2.5 after a row means another process shared the "
        "cores: rerun that row.\n\n" + "\n".join(md) + "\n"
    )
    print("\n".join(md))


if __name__ == "__main__":
    main()
