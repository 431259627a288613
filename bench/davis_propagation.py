"""Propagation alone on real video: DAVIS 2016 with the ground-truth mask handed over on every
keyframe, the frames in between scored (issue #11, item 5).

    PYTHONPATH=. .venv/bin/python -m bench.davis_propagation
    PYTHONPATH=. .venv/bin/python -m bench.davis_propagation --intervals 10 --only lucia

For each sequence and keyframe interval N, keyframes are frames 0, N, 2N, ...; each keyframe
gets the annotation as its mask. The frames in between are scored by J (mask IoU with the
annotation, frames with an empty annotation left out; the frames after the last keyframe
have no later keyframe and are carried forward in every mode) for:

* ``hold``: the last keyframe's mask held still (the floor);
* ``forward`` (live): carried forward from the last keyframe by ``vis.propagation``;
* ``bidirectional`` (offline): also carried back from the next keyframe, the two fused by
  distance (``vis.bidirectional``).

Every warp/flow setting in ``SETTINGS`` is measured, so the default is chosen here, on real
pixels. ms/frame is the propagation time per scored frame (both directions for
bidirectional), one thread. Writes bench/results/davis_propagation.{json,md}.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from bench.common import setup_logging, write_report
from vis.bidirectional import carry, forward_weight, fuse
from vis.ops.masks import BoxMask
from vis.propagation import PropagationConfig, Propagator
from vis_eval import davis
from vis_eval.tables import markdown_table

log = logging.getLogger("bench.davis_propagation")

COMMAND = "PYTHONPATH=. .venv/bin/python -m bench.davis_propagation"
INTERVALS = (5, 10, 20)
#: name -> PropagationConfig keywords
SETTINGS = {
    "ecc": {"warp": "ecc", "method": "dis_ultrafast"},
    "dense": {"warp": "dense", "method": "dis_ultrafast"},
    "dense_fast": {"warp": "dense", "method": "dis_fast"},
    "dense_medium": {"warp": "dense", "method": "dis_medium"},
    "dense_fast_half": {"warp": "dense", "method": "dis_fast", "downscale": 2.0},
    # where the flow is computed (issue #15): the whole frame vs the tracks' windows, and the
    # resolution chosen from the objects' sizes
    "dense_frame": {"warp": "dense", "region": "frame", "downscale": 1.0},
    "dense_objects": {"warp": "dense", "downscale": 1.0},
    "dense_auto": {"warp": "dense", "downscale": "auto"},
    "dense_frame_auto": {"warp": "dense", "region": "frame", "downscale": "auto"},
}


def load_sequence(root: Path, seq: str) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """(grey frames, annotation masks) of one sequence, in order."""
    files = sorted(davis.frames_dir(root, seq).glob("*.jpg"))
    grays = [cv2.imread(str(f), cv2.IMREAD_GRAYSCALE) for f in files]
    gt = davis.load_gt(root, seq)
    n = min(len(grays), len(gt))
    return grays[:n], gt[:n]


def _iou(a: BoxMask | None, gt: np.ndarray) -> float:
    pred = np.zeros(gt.shape, bool) if a is None else a.to_full()
    union = np.count_nonzero(pred | gt)
    return np.count_nonzero(pred & gt) / union if union else 1.0


def _start(gt: np.ndarray) -> dict:
    m = BoxMask.from_full(gt.astype(np.float32))
    return {} if m is None else {0: m}


@dataclass
class Spans:
    """What propagating over every keyframe span of one sequence gave.

    Attributes:
        j: J per scored frame and mode (``hold``, ``forward``, ``bidirectional``), in frame
            order; each list holds one value per scored frame.
        seconds: the propagation time (both directions), one thread.
        pairs: the frame pairs propagated (both directions).
    """

    j: dict[str, list[float]]
    seconds: float
    pairs: int


def score_spans(
    grays: list[np.ndarray], gt: list[np.ndarray], interval: int, prop: Propagator
) -> Spans:
    """Propagate the annotation over every keyframe span and score the frames in between.

    Keyframes are frames 0, N, 2N, ... (N = ``interval``); each gets its annotation as its
    mask. The frames between two keyframes are carried forward from the earlier one and back
    from the later one (fused by distance); the frames after the last keyframe are carried
    forward only. Frames with an empty annotation are not scored.

    Args:
        grays: the sequence's grey frames, each (H, W) uint8.
        gt: the annotation per frame, each (H, W) bool.
        interval: the keyframe interval N.
        prop: the propagator (its flow's ``stats`` count the calls made here).

    Returns:
        J per mode and scored frame, the propagation time and the frame pairs propagated.
    """
    j: dict[str, list[float]] = {"hold": [], "forward": [], "bidirectional": []}
    seconds = 0.0
    pairs = 0
    for a in range(0, len(grays), interval):
        b = a + interval if a + interval < len(grays) else None
        end = b if b is not None else len(grays) - 1
        if end <= a:
            continue
        t0 = time.perf_counter()
        fwd = carry(_start(gt[a]), grays[a : end + 1], prop)
        bwd = carry(_start(gt[b]), grays[a : b + 1][::-1], prop)[::-1] if b is not None else None
        seconds += time.perf_counter() - t0
        pairs += (end - a) + (b - a if b is not None else 0)
        hold = _start(gt[a]).get(0)
        last = end if b is None else end - 1  # the later keyframe itself is not scored
        for f in range(a + 1, last + 1):
            if not gt[f].any():
                continue
            fm = fwd[f - a - 1].get(0)
            # bwd[i] is frame a + i (the list covers a .. b - 1 once reversed)
            bm = bwd[f - a].get(0) if bwd is not None else None
            fused = fuse(fm, bm, forward_weight(f - a, end - a)) if bwd is not None else fm
            j["hold"].append(_iou(hold, gt[f]))
            j["forward"].append(_iou(fm, gt[f]))
            j["bidirectional"].append(_iou(fused, gt[f]))
    return Spans(j, seconds, pairs)


def score_sequence(
    grays: list[np.ndarray], gt: list[np.ndarray], interval: int, setting: dict
) -> dict:
    """J per mode over the propagated frames of one sequence at one interval."""
    spans = score_spans(grays, gt, interval, Propagator(PropagationConfig(**setting)))
    out = {k: float(np.mean(v)) if v else float("nan") for k, v in spans.j.items()}
    out["frames"] = len(spans.j["forward"])
    out["ms_per_frame"] = 1000 * spans.seconds / max(out["frames"], 1)
    return out


def ready(prog: str, root: Path, names: list[str]) -> bool:
    """Set up logging and one OpenCV thread; False, with a skip line naming what is absent on
    stderr, when a sequence of ``names`` is not under ``root``."""
    setup_logging()
    cv2.setNumThreads(1)
    missing = davis.available(root, names)
    if missing:
        print(f"{prog} skipped: {missing}", file=sys.stderr)
    return missing is None


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=davis.DATA, help="the DAVIS folder")
    ap.add_argument("--intervals", type=int, nargs="+", default=list(INTERVALS))
    ap.add_argument("--only", nargs="+", default=None, help="sequence names")
    ap.add_argument("--settings", nargs="+", default=list(SETTINGS), choices=list(SETTINGS))
    args = ap.parse_args(argv)
    names = args.only or list(davis.SEQUENCES)
    if not ready("bench.davis_propagation", args.data, names):
        return 0
    rows = []
    for name in names:
        grays, gt = load_sequence(args.data, name)
        for n in args.intervals:
            for s in args.settings:
                r = {"sequence": name, "N": n, "setting": s}
                r.update(score_sequence(grays, gt, n, SETTINGS[s]))
                log.info("%s", r)
                rows.append(r)
    means = []
    for n in args.intervals:
        for s in args.settings:
            sel = [r for r in rows if r["N"] == n and r["setting"] == s]
            means.append(
                {
                    "sequence": "mean",
                    "N": n,
                    "setting": s,
                    **{
                        k: float(np.mean([r[k] for r in sel]))
                        for k in ("hold", "forward", "bidirectional", "ms_per_frame")
                    },
                    "frames": sum(r["frames"] for r in sel),
                }
            )
    cols = [
        ("sequence", "sequence", "s"),
        ("N", "N", "d"),
        ("setting", "warp / flow", "s"),
        ("frames", "scored frames", "d"),
        ("hold", "J hold still", ".3f"),
        ("forward", "J forward (live)", ".3f"),
        ("bidirectional", "J bidirectional (offline)", ".3f"),
        ("ms_per_frame", "ms/frame", ".1f"),
    ]
    md = (
        f"DAVIS 2016 480p, ground-truth mask on every keyframe, `{COMMAND}`; J over the frames "
        "between keyframes (mean of the per-sequence means), one thread.\n\n"
        + markdown_table(means, cols)
        + "\n\nPer sequence:\n\n"
        + markdown_table(rows, cols)
    )
    payload = {"command": COMMAND, "settings": SETTINGS, "means": means, "rows": rows}
    _, m = write_report("davis_propagation", payload, md)
    print(m.read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
