"""Which embedder should ``detector.type: precomputed`` use by default? (issue #2 item 10)

    python -m bench.embedders                   # detections: GT+noise and demo model; N 5, 10
    python -m bench.embedders --kinds gtnoise --intervals 5

Runs our pipeline on precomputed detections (``bench.detections``) with
``detector.embedder: histogram`` (hue-saturation-value histogram inside each mask, no
network), ``box_head`` (demo weights: the Mask R-CNN backbone + box head run on the given
boxes, fused with the histogram as ``detector.appearance: fused``, the default) and
``box_head_only`` (``appearance: box_head``: the box head alone), at keyframe intervals 5 and
10, configs/demo.yaml otherwise. Scored by IDF1,
HOTA/AssA and ID switches (one TrackEval call per detection kind); the embedding cost is the
pipeline's ``detect`` stage (reading the record + embedding) per keyframe.

Writes bench/results/embedders.{json,md}.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from bench.common import DATA, ensure_set, setup_logging, write_report
from bench.detections import ensure_detections
from bench.peers import EMBEDDERS, run_ours
from vis_eval.benchmark import evaluate, load_ground_truth, load_predictions
from vis_eval.tables import markdown_table

log = logging.getLogger("bench.embedders")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m bench.embedders",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--data", type=Path, default=DATA)
    p.add_argument("--scale", type=int, default=1)
    p.add_argument("--kinds", nargs="+", default=["gtnoise", "model"], choices=["model", "gtnoise"])
    p.add_argument("--intervals", type=int, nargs="+", default=[5, 10])
    p.add_argument(
        "--embedders",
        nargs="+",
        default=["histogram", "box_head", "box_head_only"],
        choices=list(EMBEDDERS),
    )
    p.add_argument("--only", nargs="+")
    p.add_argument("--name", default="embedders")
    a = p.parse_args(argv)
    setup_logging()
    ensure_set(a.data, a.scale)
    gt = load_ground_truth(a.data, a.only)
    rows, payload = [], {"kinds": {}}
    for kind in a.kinds:
        dets = ensure_detections(kind, a.data, a.only)
        trackers, timing = {}, {}
        for n in a.intervals:
            for name, (d, t) in run_ours(
                kind, dets, a.data, a.only, a.embedders, interval=n, tag=f"_N{n}"
            ).items():
                key = f"{name.removeprefix('ours_')} N={n}"
                trackers[key] = load_predictions(d, gt)
                timing[key] = t
        scores = evaluate(gt, trackers, mask_ap=False)
        for key, r in scores["trackers"].items():
            c, t = r["combined"], timing[key]
            emb, n = key.split(" N=")
            rows.append(
                {
                    "detections": kind,
                    "N": int(n),
                    "embedder": emb,
                    "HOTA": c["HOTA"],
                    "AssA": c["AssA"],
                    "IDF1": c["IDF1"],
                    "IDSW": c["IDSW"],
                    "MOTSA": c["MOTSA"],
                    "ms_per_keyframe": t["stage_ms_per_frame"].get("detect", 0.0)
                    * t["frames"]
                    / max(t["keyframes"], 1),
                    "fps": t["fps"],
                }
            )
        payload["kinds"][kind] = {"scores": scores, "timing": timing}
    rows.sort(key=lambda r: (r["detections"], r["N"], r["embedder"]))
    cols = [
        ("detections", "detections", "s"),
        ("N", "N", "d"),
        ("embedder", "embedder", "s"),
        ("HOTA", "HOTA", ".1f"),
        ("AssA", "AssA", ".1f"),
        ("IDF1", "IDF1", ".1f"),
        ("IDSW", "IDSW", "d"),
        ("MOTSA", "MOTSA", ".1f"),
        ("ms_per_keyframe", "read+embed ms/keyframe", ".1f"),
        ("fps", "fps", ".1f"),
    ]
    md = markdown_table(rows, cols)
    write_report(a.name, {"rows": rows, **payload}, md)
    print(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
