"""Per-frame detections of the benchmark set, as ``vis.frame/1`` JSONL (``track_id`` -1), for
feeding identical detections to our tracker (``detector.type: precomputed``) and to peers.

    python -m bench.detections --kind model     # the demo model on every frame (score >= 0.1)
    python -m bench.detections --kind gtnoise   # ground truth + seeded noise (no model)

``model``: ``MaskRCNNDetector`` (demo weights, as configs/demo.yaml) on every decoded frame,
kept down to score 0.1 so that trackers that use low-score boxes (ByteTrack) get them;
trackers apply their own thresholds (ours: ``detector.score_threshold`` 0.1,
``tracker.high_score`` 0.5 for the first pass).
``gtnoise``: ground-truth masks with, per instance and frame, a 8 % miss chance plus
dropout bursts (2 % chance to start a 3-8 frame miss of that object), a shift of
N(0, 1 px) per axis, a 1 px erosion or dilation (30 %), scores U(0.55, 0.98), a 2 % class
flip, and Poisson(0.4) false positives per frame (ellipses, radius 6-30 px, scores
U(0.3, 0.75)). Seeded per sequence: the same files every time.

Writes ``bench/results/tmp/dets/<kind>/<seq>.jsonl`` and ``timing.json`` (model: detector
milliseconds per frame).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
import zlib
from pathlib import Path

import cv2
import numpy as np
from pycocotools import mask as mask_utils

from bench.common import DATA, TMP, ensure_set, sequences, setup_logging
from vis_eval.benchmark import CLASS_NAMES, load_ground_truth
from vis_eval.sequences import Instance, TrackSequence, jsonl_records, write_jsonl

log = logging.getLogger("bench.detections")

MODEL_SCORE_THRESHOLD = 0.1


def dets_dir(kind: str) -> Path:
    return TMP / "dets" / kind


def dump_model(data_dir: Path, out: Path, only: list[str] | None = None) -> dict:
    """Run the demo detector on every frame; returns timing."""
    import torch

    from streams.sources import open_source
    from vis.detection.detector import MaskRCNNDetector
    from vis.schema import dumps_record
    from vis.types import FrameResult

    torch.set_num_threads(2)
    det = MaskRCNNDetector.from_weights(
        weights="demo", score_threshold=MODEL_SCORE_THRESHOLD, max_detections=100
    )
    out.mkdir(parents=True, exist_ok=True)
    seconds, frames = 0.0, 0
    for seq in sequences(data_dir, only):
        src = open_source(str(data_dir / f"{seq}.mp4"), stream_id=seq)
        with open(out / f"{seq}.jsonl", "w", encoding="utf-8") as fh:
            for frame in src:
                t0 = time.perf_counter()
                d = det.detect([frame.image])[0]
                seconds += time.perf_counter() - t0
                frames += 1
                res = FrameResult(
                    stream_id=seq,
                    frame_index=frame.index,
                    timestamp_ms=frame.timestamp_ms,
                    keyframe=True,
                    width=frame.width,
                    height=frame.height,
                    detections=d,
                    labels=det.labels,
                )
                fh.write(dumps_record(res) + "\n")
        log.info("%s: %d frames so far, %.0f ms/frame", seq, frames, 1000 * seconds / frames)
    return {
        "frames": frames,
        "detector_ms_per_frame": round(1000 * seconds / max(frames, 1), 2),
        "score_threshold": MODEL_SCORE_THRESHOLD,
    }


def _shift(m: np.ndarray, dx: int, dy: int) -> np.ndarray:
    out = np.zeros_like(m)
    h, w = m.shape
    ys, yd = (slice(0, h - dy), slice(dy, h)) if dy >= 0 else (slice(-dy, h), slice(0, h + dy))
    xs, xd = (slice(0, w - dx), slice(dx, w)) if dx >= 0 else (slice(-dx, w), slice(0, w + dx))
    out[yd, xd] = m[ys, xs]
    return out


def noisy(gt: TrackSequence, n_frames: int, seed: int) -> TrackSequence:
    """Ground truth -> seeded noisy detections (see module docstring); ids set to -1."""
    rng = np.random.default_rng(seed)
    h, w = gt.size
    out = TrackSequence(size=gt.size)
    burst: dict[int, int] = {}  # track id -> last frame of its miss burst
    kernel = np.ones((3, 3), np.uint8)
    for f in range(n_frames):
        insts = []
        for i in gt.instances(f):
            if burst.get(i.track_id, -1) >= f:
                continue
            if rng.random() < 0.02:
                burst[i.track_id] = f + int(rng.integers(2, 8))
                continue
            if rng.random() < 0.08:
                continue
            m = mask_utils.decode(i.rle)
            dx, dy = (int(v) for v in np.round(rng.normal(0, 1.0, 2)))
            m = _shift(m, dx, dy)
            r = rng.random()
            if r < 0.15:
                m = cv2.erode(m, kernel)
            elif r < 0.3:
                m = cv2.dilate(m, kernel)
            if m.sum() < 10:
                continue
            cls = i.class_id
            if rng.random() < 0.02:
                cls = int(rng.choice([c for c in CLASS_NAMES if c != cls]))
            insts.append(
                Instance(
                    -1, cls, float(rng.uniform(0.55, 0.98)), mask_utils.encode(np.asfortranarray(m))
                )
            )
        for _ in range(rng.poisson(0.4)):
            m = np.zeros((h, w), np.uint8)
            r = float(rng.uniform(6, 30))
            cv2.ellipse(
                m,
                (int(rng.integers(0, w)), int(rng.integers(0, h))),
                (int(r), int(r * rng.uniform(0.5, 1.0))),
                float(rng.uniform(0, 180)),
                0,
                360,
                1,
                -1,
            )
            insts.append(
                Instance(
                    -1,
                    int(rng.choice(list(CLASS_NAMES))),
                    float(rng.uniform(0.3, 0.75)),
                    mask_utils.encode(np.asfortranarray(m)),
                )
            )
        out.frames[f] = insts
    return out


def dump_gtnoise(data_dir: Path, out: Path, only: list[str] | None = None) -> dict:
    gt = load_ground_truth(data_dir, only)
    for seq, g in gt.sequences.items():
        n = gt.lengths[seq]
        det = noisy(g, n, seed=zlib.crc32(seq.encode()))
        write_jsonl(
            out / f"{seq}.jsonl", jsonl_records(det, stream_id=seq, n_frames=n, labels=CLASS_NAMES)
        )
    return {"frames": sum(gt.lengths.values())}


def ensure_detections(
    kind: str, data_dir: Path = DATA, only: list[str] | None = None, force: bool = False
) -> Path:
    """The detections folder of ``kind``, written first if missing."""
    out = dets_dir(kind)
    names = sequences(data_dir, only)
    if force or not all((out / f"{n}.jsonl").is_file() for n in names):
        out.mkdir(parents=True, exist_ok=True)
        timing = (dump_model if kind == "model" else dump_gtnoise)(data_dir, out, only)
        (out / "timing.json").write_text(json.dumps(timing, indent=1) + "\n")
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m bench.detections",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--kind", choices=["model", "gtnoise"], required=True)
    p.add_argument("--data", type=Path, default=DATA)
    p.add_argument("--scale", type=int, default=1)
    p.add_argument("--only", nargs="+")
    a = p.parse_args(argv)
    setup_logging()
    ensure_set(a.data, a.scale)
    out = ensure_detections(a.kind, a.data, a.only, force=True)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
