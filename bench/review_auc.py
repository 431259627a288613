"""Does ``review_score`` rank the wrong instances first? ROC AUC on the benchmark set.

    python -m bench.review_auc                    # the demo config (N=10) on bench/data
    python -m bench.review_auc --set keyframes.interval=5

Runs the pipeline on every sequence of the synthetic benchmark set, scores every output
instance with ``streams.review.scoring``, and labels it an error when its mask IoU with the
best-matching ground-truth mask of that frame is below 0.5. Reports the ROC AUC of
``review_score`` (error = positive) and of each doubt term alone, to
``bench/results/review_auc.json`` and ``.md``.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import numpy as np
from pycocotools import mask as mask_utils

from bench.common import DATA, TMP, ensure_set, run_on_set, sequences, write_report
from streams.exports.records import RunRecords
from streams.review.scoring import score_run, scored_frames
from streams.sinks import jsonl_path
from vis.quality import WEIGHTS, Signals, doubts
from vis_eval.benchmark import load_ground_truth


def roc_auc(scores: np.ndarray, positive: np.ndarray) -> float:
    """Probability that a random positive outscores a random negative (ties count half)."""
    pos, neg = scores[positive], scores[~positive]
    if len(pos) == 0 or len(neg) == 0:
        return float("nan")
    order = np.argsort(np.concatenate([pos, neg]), kind="mergesort")
    ranks = np.empty(len(order))
    values = np.concatenate([pos, neg])[order]
    i = 0
    while i < len(values):  # average ranks of ties
        j = i
        while j + 1 < len(values) and values[j + 1] == values[i]:
            j += 1
        ranks[order[i : j + 1]] = (i + j) / 2 + 1
        i = j + 1
    return float((ranks[: len(pos)].sum() - len(pos) * (len(pos) + 1) / 2) / (len(pos) * len(neg)))


def instance_rows(pred: Path, gt_frames: dict) -> list[dict]:
    """One row per output instance: its signals, review score and best IoU with the truth."""
    run = RunRecords.open(pred)
    quality = score_run(run)
    rows = []
    for rec, _, qs in scored_frames(run, quality):
        truth = [i.rle for i in gt_frames.get(rec["frame_index"], [])]
        for inst, q in zip(rec["instances"], qs):
            rle = {"size": inst["mask"]["size"], "counts": inst["mask"]["counts"].encode()}
            best = float(np.max(mask_utils.iou([rle], truth, [0] * len(truth)))) if truth else 0.0
            t = quality.tracks[q.track_id]
            own = Signals(
                q.score, q.mask_iou_prev, q.shape_iou_prev, q.keyframe_iou_next,
                q.propagation_age, q.mask_confidence, q.agreement,
            )  # fmt: skip
            rows.append(
                {
                    "iou": best,
                    "review_score": q.review_score,
                    "track_review_score": t.review_score,
                    **doubts(own, t, q.id_switch_suspect),
                }
            )
    return rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", type=Path, default=DATA)
    p.add_argument("--set", dest="overrides", action="append", default=[])
    p.add_argument(
        "--reuse", action="store_true", help="score the JSONL files of the last run again"
    )
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    ensure_set(args.data)
    out = TMP / ("review_auc" + "".join("_" + o.replace("=", "") for o in args.overrides))
    timing = {"frames": None} if args.reuse else run_on_set(args.data, out, args.overrides)
    gt = load_ground_truth(args.data)
    rows = []
    per_seq = {}
    for seq in sequences(args.data):
        r = instance_rows(jsonl_path(out, seq), gt.sequences[seq].frames)
        err = np.array([x["iou"] < 0.5 for x in r])
        per_seq[seq] = {
            "instances": len(r),
            "errors": int(err.sum()),
            "auc": round(roc_auc(np.array([x["review_score"] for x in r]), err), 3),
        }
        rows += r
    err = np.array([x["iou"] < 0.5 for x in rows])
    terms = ["review_score", "track_review_score", *WEIGHTS]
    auc = {k: round(roc_auc(np.array([x.get(k, 0.0) for x in rows]), err), 3) for k in terms}
    payload = {
        "overrides": args.overrides,
        "instances": len(rows),
        "errors": int(err.sum()),
        "auc": auc,
        "weights": WEIGHTS,
        "sequences": per_seq,
        "frames": timing["frames"],
    }
    md = [
        f"ROC AUC of the doubt signals for instances with mask IoU < 0.5 (errors) on the "
        f"benchmark set ({len(rows)} instances, {int(err.sum())} errors; settings: "
        f"{' '.join(args.overrides) or 'configs/demo.yaml'})",
        "",
        "| signal | weight | AUC |",
        "|---|---|---|",
        *[f"| {k} | {WEIGHTS.get(k, '')} | {v} |" for k, v in auc.items()],
        "",
        "| sequence | instances | errors | AUC of review_score |",
        "|---|---|---|---|",
        *[f"| {s} | {v['instances']} | {v['errors']} | {v['auc']} |" for s, v in per_seq.items()],
    ]
    name = "review_auc" + "".join("_" + o.replace("=", "").split(".")[-1] for o in args.overrides)
    write_report(name, payload, "\n".join(md) + "\n")
    print("\n".join(md))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
