"""Write a synthetic video with MOTS ground truth (the shipped sample, or any seeded scene).

python tools/make_sample.py                       # data/sample/sample.mp4 + sample.gt.txt
python tools/make_sample.py --seed 7 --frames 300 --out /tmp/scene.mp4
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from vis_eval.sequences import format_lines, write_mots  # noqa: E402
from vis_eval.synthetic import SceneConfig, render_sequence  # noqa: E402

SAMPLE = SceneConfig(
    width=640,
    height=360,
    n_frames=150,
    seed=2026,
    n_objects=6,
    spawn_rate=0.03,
    pan_speed=0.6,
    lighting_amplitude=0.1,
    noise_sigma=3.0,
    blur_prob=0.05,
)


def write_scene(cfg: SceneConfig, out: Path, fps: float = 25.0) -> Path:
    """Render ``cfg`` to ``out`` (mp4) and ``out`` with suffix ``.gt.txt`` (MOTS)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    writer = cv2.VideoWriter(
        str(out), cv2.VideoWriter_fourcc(*"mp4v"), fps, (cfg.width, cfg.height)
    )
    if not writer.isOpened():
        raise SystemExit(f"cannot write {out}")
    lines: list[str] = []
    for f in render_sequence(cfg):
        writer.write(f.image)
        lines += format_lines(f.index, f.track_ids, f.class_ids, f.masks)
    writer.release()
    gt = out.with_suffix(".gt.txt")
    write_mots(gt, lines)
    return gt


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--out", type=Path, default=Path("data/sample/sample.mp4"))
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--frames", type=int, default=None)
    a = p.parse_args()
    cfg = SAMPLE
    if a.seed is not None or a.frames is not None:
        from dataclasses import replace

        cfg = replace(
            cfg, seed=a.seed if a.seed is not None else cfg.seed, n_frames=a.frames or cfg.n_frames
        )
    gt = write_scene(cfg, a.out)
    print(f"wrote {a.out} ({a.out.stat().st_size // 1024} KiB) and {gt}")


if __name__ == "__main__":
    main()
