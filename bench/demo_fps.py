"""Demo throughput: the sample video through configs/demo.yaml with the detector on every
frame (N=1) and on every 10th (N=10), in one run. One command:

    .venv/bin/python -m bench.demo_fps

Writes bench/results/demo_fps.json and bench/results/demo_fps.md.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    rows = []
    for n in (1, 10):
        with tempfile.TemporaryDirectory() as tmp:
            summary = Path(tmp) / "s.json"
            subprocess.run(
                [
                    sys.executable,
                    str(ROOT / "run_pipeline.py"),
                    "-c",
                    str(ROOT / "configs/demo.yaml"),
                    "-o",
                    tmp,
                    "--no-progress",
                    "--set",
                    f"keyframes.interval={n}",
                    "--summary-json",
                    str(summary),
                ],
                check=True,
                stdout=subprocess.DEVNULL,
            )
            s = json.loads(summary.read_text())
        per = {k: round(v / s["frames"] * 1000, 1) for k, v in s["stage_seconds"].items()}
        rows.append(
            {
                "interval": n,
                "frames": s["frames"],
                "seconds": round(s["seconds"], 2),
                "fps": s["fps"],
                "ms_per_frame_by_stage": per,
            }
        )
        print(rows[-1], flush=True)
    speedup = rows[1]["fps"] / rows[0]["fps"]
    out = ROOT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "demo_fps.json").write_text(
        json.dumps(
            {
                "date": time.strftime("%Y-%m-%d"),
                "video": "data/sample/sample.mp4 (640x360, 150 frames)",
                "sinks": "jsonl + overlay video",
                "rows": rows,
                "speedup_n10_vs_n1": round(speedup, 2),
            },
            indent=2,
        )
        + "\n"
    )
    md = [
        "| keyframe interval | fps | ms/frame: detect | flow | propagate | track | sink |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        p = r["ms_per_frame_by_stage"]
        md.append(
            f"| {r['interval']} | {r['fps']:.1f} | {p.get('detect', 0)} | {p.get('flow', 0)} | "
            f"{p.get('propagate', 0)} | {p.get('track', 0)} | {p.get('sink', 0)} |"
        )
    md.append(f"\nN=10 runs at {speedup:.1f}x the fps of N=1 (detector on every frame).")
    (out / "demo_fps.md").write_text("\n".join(md) + "\n")
    print("\n".join(md))


if __name__ == "__main__":
    main()
