"""Line and zone counts on real footage against the ground truth's tracks, and their cost.

    PYTHONPATH=. .venv/bin/python -m bench.analytics            # both parts
    PYTHONPATH=. .venv/bin/python -m bench.analytics --part speed

``counts``: PETS 2009 S2.L1, frames 0-399 (``../shared/data/pets09-dev``), with the line and
zone of ``configs/street.yaml``. Reference: the ground truth's tracks, each decided on its
box's bottom-centre with the same hysteresis (the ground truth has no masks). Ours: our
tracker on the foreign detector's detections (``vis_eval.pets09.run_ours``) at keyframe
intervals N = 1, 3, 5, counted once on the masks (``ground: mask``) and once on the same
tracks' box bottom-centres (``ground: box``). ``speed``: ``Analytics.update`` per frame at
20 person-sized masks, 4 zones and 2 lines (fresh masks every frame, so each mask's binary
crop is computed inside the timing), and on the real runs.

Writes bench/results/analytics.{json,md}.
"""

from __future__ import annotations

import argparse
import time
from collections import Counter
from pathlib import Path

import numpy as np

from bench.common import write_report
from vis.analytics import Analytics, AnalyticsConfig, LineSpec, ZoneSpec
from vis.ops.masks import BoxMask
from vis.types import Detections, FrameResult
from vis_eval import pets09
from vis_pipeline.config import load_config

ROOT = Path(__file__).resolve().parents[1]
INTERVALS = (1, 3, 5)
LABELS = ["background", "person"]


def street_analytics(ground: str) -> AnalyticsConfig:
    cfg = load_config(ROOT / "configs" / "street.yaml", [f"analytics.ground={ground}"])
    return cfg.analytics


def tally(events: list[dict]) -> dict[str, int]:
    """Counts per line and direction and entries per zone."""
    c: Counter = Counter()
    for e in events:
        if e["event"] == "line_cross":
            c[f"{e['line']} {e['direction']}"] += 1
        elif e["event"] == "zone_enter":
            c[f"{e['zone']} entries"] += 1
    return dict(c)


def reference_events() -> list[dict]:
    """The ground truth's tracks through the analytics, on their boxes' bottom-centres."""
    h, w = pets09.SIZE
    analytics = Analytics(street_analytics("box"), stream_id="pets")
    events = []
    for f, objs in sorted(pets09.load_gt().items()):
        d = Detections(
            xyxy=np.array([b for _, b in objs], np.float32).reshape(-1, 4),
            masks=[BoxMask.empty((h, w)) for _ in objs],
            scores=np.ones(len(objs)),
            class_ids=np.ones(len(objs), np.int64),
            track_ids=[t for t, _ in objs],
            image_size=(h, w),
        )
        result = FrameResult("pets", f, f * 1000.0 / pets09.FPS, True, w, h, d, LABELS)
        events += [e.to_dict() for e in analytics.update(result)]
    return events


def run_counts() -> dict:
    reference = tally(reference_events())
    rows = []
    for n in INTERVALS:
        by_mask = Analytics(street_analytics("mask"), stream_id="pets")
        by_box = Analytics(street_analytics("box"), stream_id="pets")
        events: dict[str, list[dict]] = {"mask": [], "box": []}
        seconds: list[float] = []

        def on_result(result: FrameResult, a=by_mask, b=by_box, ev=events, s=seconds) -> None:
            t0 = time.perf_counter()
            ev["mask"] += [e.to_dict() for e in a.update(result)]
            s.append(time.perf_counter() - t0)
            ev["box"] += [e.to_dict() for e in b.update(result)]

        dets = pets09.detections_path("foreign", Path("/tmp"))
        pets09.run_ours(dets, interval=n, on_result=on_result)
        rows.append(
            {
                "interval": n,
                "mask": tally(events["mask"]),
                "box": tally(events["box"]),
                "ms_per_frame_mean": 1000.0 * float(np.mean(seconds)),
                "ms_per_frame_p99": 1000.0 * float(np.percentile(seconds, 99)),
            }
        )
        print(n, rows[-1], flush=True)
    return {"reference": reference, "runs": rows}


def _person(rng: np.random.Generator, h: int, w: int) -> tuple[BoxMask, list[float]]:
    """A person-sized elliptic mask (about 40 x 100 px) somewhere in the frame."""
    bh, bw = int(rng.integers(80, 120)), int(rng.integers(30, 50))
    y0, x0 = int(rng.integers(0, h - bh)), int(rng.integers(0, w - bw))
    yy, xx = np.mgrid[0:bh, 0:bw]
    prob = (((yy - bh / 2) / (bh / 2)) ** 2 + ((xx - bw / 2) / (bw / 2)) ** 2 <= 1).astype(
        np.float32
    )
    return BoxMask(x0, y0, prob, (h, w)), [x0, y0, x0 + bw, y0 + bh]


def run_speed(frames: int = 400, tracks: int = 20) -> dict:
    h, w = pets09.SIZE
    zones = tuple(
        ZoneSpec(f"z{i}", ((x, y), (x + 300, y), (x + 300, y + 250), (x, y + 250)))
        for i, (x, y) in enumerate([(20, 20), (420, 20), (20, 300), (420, 300)])
    )
    lines = (
        LineSpec("a", ((384, 10), (384, 566))),
        LineSpec("b", ((10, 288), (758, 288))),
    )
    out = {}
    for name, cfg in (
        ("20 tracks, 4 zones, 2 lines, ground mask", AnalyticsConfig(lines=lines, zones=zones)),
        ("20 tracks, 4 zones, ground mask", AnalyticsConfig(zones=zones)),
        ("20 tracks, 2 lines, ground mask", AnalyticsConfig(lines=lines)),
    ):
        rng = np.random.default_rng(0)
        analytics = Analytics(cfg, stream_id="s")
        seconds = []
        for f in range(frames):
            people = [_person(rng, h, w) for _ in range(tracks)]
            d = Detections(
                xyxy=np.array([b for _, b in people], np.float32),
                masks=[m for m, _ in people],
                scores=np.ones(tracks),
                class_ids=np.ones(tracks, np.int64),
                track_ids=np.arange(1, tracks + 1),
                image_size=(h, w),
            )
            result = FrameResult("s", f, f * 100.0, False, w, h, d, LABELS)
            t0 = time.perf_counter()
            analytics.update(result)
            seconds.append(time.perf_counter() - t0)
        seconds = seconds[10:]  # the zones' rasters are made on the first frame
        out[name] = {
            "ms_mean": 1000.0 * float(np.mean(seconds)),
            "ms_p50": 1000.0 * float(np.median(seconds)),
            "ms_p99": 1000.0 * float(np.percentile(seconds, 99)),
        }
        print(name, out[name], flush=True)
    return out


def markdown(payload: dict) -> str:
    lines = []
    counts = payload.get("counts")
    if counts:
        ref = counts["reference"]
        keys = sorted(set(ref) | {k for r in counts["runs"] for m in ("mask", "box") for k in r[m]})
        lines += [
            "## Counts on PETS09 S2.L1 frames 0-399 (configs/street.yaml's line and zone)",
            "",
            "Reference: the ground truth's tracks on their box bottom-centres. Ours: our tracker "
            "on the foreign detections; error = ours - reference (mask-based / box-based).",
            "",
            "| count | reference | "
            + " | ".join(f"N={r['interval']} mask / box" for r in counts["runs"])
            + " |",
            "|---|---:|" + "---:|" * len(counts["runs"]),
        ]
        for k in keys:
            cells = []
            for r in counts["runs"]:
                m, b = r["mask"].get(k, 0), r["box"].get(k, 0)
                cells.append(f"{m} / {b} ({m - ref.get(k, 0):+d} / {b - ref.get(k, 0):+d})")
            lines.append(f"| {k} | {ref.get(k, 0)} | " + " | ".join(cells) + " |")
        lines += ["", "| N | analytics ms/frame mean | p99 |", "|---:|---:|---:|"]
        for r in counts["runs"]:
            lines.append(
                f"| {r['interval']} | {r['ms_per_frame_mean']:.3f} | {r['ms_per_frame_p99']:.3f} |"
            )
        lines.append("")
    speed = payload.get("speed")
    if speed:
        lines += ["## Speed of Analytics.update (768x576, fresh masks every frame)", ""]
        lines += ["| case | ms mean | p50 | p99 |", "|---|---:|---:|---:|"]
        for k, v in speed.items():
            lines.append(f"| {k} | {v['ms_mean']:.3f} | {v['ms_p50']:.3f} | {v['ms_p99']:.3f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--part", choices=["all", "counts", "speed"], default="all")
    args = p.parse_args(argv)
    payload: dict = {}
    if args.part in ("all", "counts"):
        missing = pets09.available()
        if missing is not None:
            raise SystemExit(f"bench.analytics: {missing}")
        payload["counts"] = run_counts()
    if args.part in ("all", "speed"):
        payload["speed"] = run_speed()
    name = "analytics" if args.part == "all" else f"analytics_{args.part}"
    j, m = write_report(name, payload, markdown(payload))
    print(m.read_text())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
