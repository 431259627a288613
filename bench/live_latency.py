"""Live latency: a real ffmpeg HTTP stream at 25 fps on loopback through the pipeline.

    .venv/bin/python -m bench.live_latency [--seconds 20]

For keyframe intervals 1 and 10: processed fps, dropped frames, end-to-end latency (frame
decoded -> result handed to the sinks) p50/p99 and per-stage p50/p99. Writes
bench/results/live_latency.json and .md.
"""

from __future__ import annotations

import argparse
import json
import socket
import subprocess
import threading
import time
from pathlib import Path

from vis_pipeline import load_config, run

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> None:
    import imageio_ffmpeg

    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    a = ap.parse_args()
    rows = []
    for n in (1, 10):
        port = free_port()
        url = f"http://127.0.0.1:{port}/live.mjpg"
        server = subprocess.Popen(
            [
                imageio_ffmpeg.get_ffmpeg_exe(),
                "-hide_banner",
                "-loglevel",
                "quiet",
                "-re",
                "-stream_loop",
                "-1",
                "-i",
                str(ROOT / "data/sample/sample.mp4"),
                "-c:v",
                "mjpeg",
                "-q:v",
                "3",
                "-f",
                "mpjpeg",
                "-listen",
                "1",
                url,
            ]
        )
        time.sleep(0.5)
        cfg = load_config(
            str(ROOT / "configs/live.yaml"),
            [f"keyframes.interval={n}", "sinks.jsonl=false", "live.report_every_s=0"],
            sources=[url],
            output="/tmp/vis-live-bench",
        )
        stop, box = threading.Event(), {}
        t = threading.Thread(
            target=lambda c=cfg, st=stop, b=box: b.update(s=run(c, progress=False, stop=st))
        )
        t.start()
        time.sleep(a.seconds)
        stop.set()
        t.join(60)
        server.kill()
        s = box["s"].streams[0]
        rows.append(
            {
                "interval": n,
                "frames": s["frames"],
                "fps": round(s["frames"] / s["seconds"], 2),
                "dropped": s["dropped_frames"],
                "latency_ms_p50": s["latency_ms_p50"],
                "latency_ms_p99": s["latency_ms_p99"],
                "stage_ms_p50_p99": s["stage_ms_p50_p99"],
            }
        )
        print(rows[-1], flush=True)
    a.out.mkdir(parents=True, exist_ok=True)
    (a.out / "live_latency.json").write_text(
        json.dumps(
            {
                "stream_fps": 25,
                "seconds": a.seconds,
                "date": time.strftime("%Y-%m-%d"),
                "rows": rows,
            },
            indent=2,
        )
        + "\n"
    )
    md = [
        "| keyframe interval | processed fps (stream 25) | dropped | latency p50 ms "
        "| latency p99 ms | detect p50/p99 ms | propagate p50/p99 ms |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        st = r["stage_ms_p50_p99"]
        det, prop = st.get("detect", [0, 0]), st.get("propagate", [0, 0])
        md.append(
            f"| {r['interval']} | {r['fps']} | {r['dropped']} | {r['latency_ms_p50']} | "
            f"{r['latency_ms_p99']} | {det[0]}/{det[1]} | "
            f"{prop[0]}/{prop[1]} |"
        )
    (a.out / "live_latency.md").write_text("\n".join(md) + "\n")
    print("\n".join(md))


if __name__ == "__main__":
    main()
