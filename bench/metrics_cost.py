"""What metrics cost: frames per second with ``metrics.port`` on against off, interleaved.

    .venv/bin/python -m bench.metrics_cost                 # both demos, 4 rounds each
    .venv/bin/python -m bench.metrics_cost --rounds 2 --street-frames 100

Each run is a fresh ``run_pipeline.py`` process with the config's own sinks (JSONL + overlay;
Kafka off, resume off) and its summary's fps (frames over the processing time, the model
already loaded). "on" adds ``--metrics-port`` on loopback while this process scrapes
``/metrics``, ``/healthz`` and ``/readyz`` once a second (a scraper 15 times as eager as
Prometheus' default). Runs alternate off/on, the order reversed each round (ABBA), so that
the drift of a shared machine falls on both arms alike. Demos:

* street: ``configs/street.yaml`` on the first ``--street-frames`` frames of the PETS 2009
  street video (``~/.cache/pets09/vtest.avi`` or ``~/.cache/vis-pipeline/vtest.avi``), cut
  to lossless PNGs at 10 fps once;
* synthetic: ``configs/demo.yaml`` on ``data/sample/sample.mp4`` (150 frames).

Each round gives a paired ratio (fps on / fps off of its two adjacent runs); "within noise"
means the 95 % interval of their mean (2 standard errors) contains 1. Writes
``bench/results/metrics_cost.{json,md}`` (date, CPU model from ``lscpu``, commit).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import cv2

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
VIDEOS = (
    Path.home() / ".cache" / "pets09" / "vtest.avi",
    Path.home() / ".cache" / "vis-pipeline" / "vtest.avi",
)
COMMAND = ".venv/bin/python -m bench.metrics_cost"


def street_frames(n: int, folder: Path) -> Path:
    """The first ``n`` frames of the street video as PNGs in ``folder``."""
    video = next((v for v in VIDEOS if v.is_file()), None)
    if video is None:
        raise SystemExit(f"the street video is absent ({VIDEOS[0]}): scripts/get_street_video.sh")
    folder.mkdir(parents=True, exist_ok=True)
    cap = cv2.VideoCapture(str(video))
    for i in range(n):
        ok, frame = cap.read()
        if not ok:
            raise SystemExit(f"{video} ended at frame {i}, {n} needed")
        cv2.imwrite(str(folder / f"{i:05d}.png"), frame)
    cap.release()
    return folder


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def scrape_until(port: int, done: threading.Event, counts: dict[str, int]) -> None:
    """``/metrics``, ``/healthz``, ``/readyz`` once a second until ``done``."""
    while not done.wait(1.0):
        for path in ("/metrics", "/healthz", "/readyz"):
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as r:
                    r.read()
                counts["ok"] += 1
            except OSError:  # not listening yet (model loading) or answered 503
                counts["failed"] += 1


def run_once(config: str, source: str | None, overrides: list[str], metrics: bool) -> dict:
    """One ``run_pipeline.py`` process: its summary's fps and, with metrics, the scrapes."""
    with tempfile.TemporaryDirectory() as tmp:
        summary = Path(tmp) / "summary.json"
        cmd = [sys.executable, "run_pipeline.py", "-c", config, "-o", tmp, "--no-progress"]
        cmd += ["--summary-json", str(summary)]
        if source:
            cmd += ["--source", source]
        for o in ["sinks.kafka=null", "resume=false", *overrides]:
            cmd += ["--set", o]
        counts = {"ok": 0, "failed": 0}
        done = threading.Event()
        scraper = None
        if metrics:
            port = free_port()
            cmd += ["--metrics-port", str(port), "--set", "metrics.host=127.0.0.1"]
            scraper = threading.Thread(target=scrape_until, args=(port, done, counts))
            scraper.start()
        try:
            subprocess.run(cmd, cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
        finally:
            done.set()
            if scraper is not None:
                scraper.join()
        s = json.loads(summary.read_text())
    return {"fps": round(s["fps"], 3), "frames": s["frames"], "scrapes": counts}


def cpu_model() -> str:
    out = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
    for line in out.splitlines():
        if line.startswith("Model name:"):
            return line.split(":", 1)[1].strip()
    return "unknown"


def commit() -> str:
    head = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
    ).stdout.strip()
    dirty = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=no"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    ).stdout.strip()
    return f"{head} + uncommitted changes" if dirty else head


def arm(fps: list[float]) -> dict:
    return {
        "fps": fps,
        "mean": round(statistics.mean(fps), 3),
        "stdev": round(statistics.stdev(fps), 3) if len(fps) > 1 else 0.0,
        "min": min(fps),
        "max": max(fps),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=4, help="runs per arm and demo (4)")
    ap.add_argument("--street-frames", type=int, default=150, help="street frames (150)")
    ap.add_argument("--demos", nargs="+", default=["street", "synthetic"])
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        demos = {}
        if "street" in args.demos:
            src = street_frames(args.street_frames, Path(tmp) / "street")
            demos["street"] = ("configs/street.yaml", str(src), ["fps=10"])
        if "synthetic" in args.demos:
            demos["synthetic"] = ("configs/demo.yaml", None, [])
        runs: dict[str, dict[str, list[dict]]] = {d: {"off": [], "on": []} for d in demos}
        for i in range(args.rounds):
            for demo, (config, source, overrides) in demos.items():
                order = ("off", "on") if i % 2 == 0 else ("on", "off")
                for which in order:
                    r = run_once(config, source, overrides, metrics=which == "on")
                    runs[demo][which].append(r)
                    print(f"round {i} {demo} metrics {which}: {r}", flush=True)
    report = {
        "study": "metrics_cost",
        "date_utc": time.strftime("%Y-%m-%d %H:%M", time.gmtime()),
        "cpu": cpu_model(),
        "commit": commit(),
        "command": COMMAND,
        "rounds": args.rounds,
        "street_frames": args.street_frames,
        "demos": {},
    }
    md = [
        f"# Metrics on vs off ({report['date_utc']} UTC, {report['cpu']}, commit "
        f"{report['commit']})",
        "",
        f'`{COMMAND}`: {args.rounds} runs per arm, interleaved (ABBA); "on" is scraped '
        "once a second. fps = the run summary's (frames over processing time).",
        "",
        "| demo | frames | fps off (mean ± sd, min-max) | fps on (mean ± sd, min-max) "
        "| on/off, paired (95 %) | within noise |",
        "|---|---:|---|---|---|---|",
    ]
    for demo, arms in runs.items():
        off, on = (arm([r["fps"] for r in arms[k]]) for k in ("off", "on"))
        paired = [b["fps"] / a["fps"] for a, b in zip(arms["off"], arms["on"])]
        ratio = round(statistics.mean(paired), 3)
        half = 2 * statistics.stdev(paired) / len(paired) ** 0.5 if len(paired) > 1 else 0.0
        within = ratio - half <= 1.0 <= ratio + half
        scrapes = sum(r["scrapes"]["ok"] for r in arms["on"])
        report["demos"][demo] = {
            "frames": arms["off"][0]["frames"],
            "off": off,
            "on": on,
            "paired_on_over_off": [round(x, 3) for x in paired],
            "on_over_off_mean": ratio,
            "on_over_off_95pct": [round(ratio - half, 3), round(ratio + half, 3)],
            "within_noise": within,
            "scrapes_answered": scrapes,
        }
        md.append(
            f"| {demo} | {arms['off'][0]['frames']} | {off['mean']:.2f} ± {off['stdev']:.2f} "
            f"({off['min']:.2f}-{off['max']:.2f}) | {on['mean']:.2f} ± {on['stdev']:.2f} "
            f"({on['min']:.2f}-{on['max']:.2f}) | {ratio:.3f} ({ratio - half:.3f}-"
            f"{ratio + half:.3f}) | {'yes' if within else 'NO'} |"
        )
    md += [
        "",
        "The machine is shared (2 cores, other jobs running): compare the arms, not the "
        "absolute fps with other tables.",
    ]
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "metrics_cost.json").write_text(json.dumps(report, indent=2) + "\n")
    (RESULTS / "metrics_cost.md").write_text("\n".join(md) + "\n")
    print("\n".join(md))
    return 0


if __name__ == "__main__":
    sys.exit(main())
