"""Write the benchmark set: one video + MOTS ground truth per scenario, and a manifest.

    python -m bench.make_set --out bench/data            # 8 sequences, ~900 frames, 640x360
    python -m bench.make_set --out bench/data --scale 2  # 2 seeded variants of each challenge

Writes ``<out>/<seq>.mp4`` (mp4v, 25 fps), ``<out>/<seq>.gt.txt`` (MOTS text, 0-based frames,
ids ``class * 1000 + k``) and ``<out>/manifest.json`` (per sequence: challenge, frame count,
size, ground-truth facts such as the longest occlusion gap, and the scene parameters).
The same command always writes the same ground truth.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

import cv2

from vis_eval.benchmark_set import Scenario, benchmark_scenarios, render_scenario, sequence_stats
from vis_eval.sequences import format_lines, write_mots

FPS = 25.0


def write_scenario(s: Scenario, out_dir: Path) -> dict:
    """Render ``s`` to ``out_dir/<name>.mp4`` + ``.gt.txt``; return its manifest entry."""
    cfg = s.scene
    video = out_dir / f"{s.name}.mp4"
    writer = cv2.VideoWriter(
        str(video), cv2.VideoWriter_fourcc(*"mp4v"), FPS, (cfg.width, cfg.height)
    )
    if not writer.isOpened():
        raise SystemExit(f"cannot write {video}")
    frames, lines = [], []
    try:
        for f in render_scenario(s):
            writer.write(f.image)
            lines += format_lines(f.index, f.track_ids, f.class_ids, f.masks)
            f.image = None  # keep only the ground truth in memory
            frames.append(f)
    finally:
        writer.release()
    write_mots(out_dir / f"{s.name}.gt.txt", lines)
    return {
        "name": s.name,
        "challenge": s.challenge,
        "video": video.name,
        "gt": f"{s.name}.gt.txt",
        "width": cfg.width,
        "height": cfg.height,
        "fps": FPS,
        **sequence_stats(frames),
        "scene": dataclasses.asdict(cfg),
        "scripted": [dataclasses.asdict(o) for o in s.scripted],
        "occluders": [dataclasses.asdict(o) for o in s.occluders],
        "lighting_steps": [list(x) for x in s.lighting_steps],
    }


def write_set(out_dir: Path, scale: int = 1, only: list[str] | None = None) -> dict:
    """Write the whole set (or the sequences named in ``only``) and ``manifest.json``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    entries = []
    for s in benchmark_scenarios(scale):
        if only and s.name not in only:
            continue
        t0 = time.perf_counter()
        entries.append(write_scenario(s, out_dir))
        e = entries[-1]
        print(
            f"{s.name:18s} {e['frames']:4d} frames  {e['tracks']:3d} tracks  "
            f"max {e['max_instances']} at once, {e['max_overlapping']} overlapping, "
            f"longest gap {e['max_gap']} frames  ({time.perf_counter() - t0:.1f} s)",
            file=sys.stderr,
        )
    mpath = out_dir / "manifest.json"
    if only and mpath.is_file():  # partial rewrite: keep the other sequences' entries
        old = {e["name"]: e for e in json.loads(mpath.read_text())["sequences"]}
        old.update({e["name"]: e for e in entries})
        order = [s.name for s in benchmark_scenarios(scale)]
        entries = sorted(
            old.values(), key=lambda e: order.index(e["name"]) if e["name"] in order else len(order)
        )
    manifest = {"scale": scale, "fps": FPS, "sequences": entries}
    mpath.write_text(json.dumps(manifest, indent=1) + "\n")
    return manifest


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m bench.make_set",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--out", type=Path, default=Path("bench/data"))
    p.add_argument("--scale", type=int, default=1, help="seeded variants per challenge")
    p.add_argument("--only", nargs="*", help="write only these sequences")
    a = p.parse_args(argv)
    m = write_set(a.out, a.scale, a.only)
    n = len(a.only) if a.only else len(m["sequences"])
    print(f"wrote {n} sequence(s) to {a.out} ({len(m['sequences'])} in its manifest)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
