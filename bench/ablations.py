"""Ablations of the tracker and propagation settings on the benchmark set (demo model).

    python -m bench.ablations                   # all variants at the default N=10
    python -m bench.ablations --interval 5 --variants default place_only box_only

Every variant is configs/demo.yaml (demo model, keyframe interval ``--interval``) plus one
change (one untimed warm-up run first); all are scored by one TrackEval call. The detector
is deterministic, so every variant sees the same keyframe detections.

Variants: association cost (place only: ``tracker.appearance_weight=0``; Kalman box only:
``tracker.mask_weight=0`` with ``tracker.adaptive_mask_weight=false``, as the learned weight
would otherwise replace it; the mask weight fixed at 0.5), Kalman filter off, no motion gate
(``tracker.motion_gate=false``), tracks confirmed on their first keyframe
(``tracker.confirm_hits=1``; default 2), no second pass for low-score detections
(``tracker.low_score=0.5``), classes gated strictly (``tracker.class_penalty=-1``), no
cross-class duplicate suppression (``tracker.duplicate_iou=1``), keyframe mask smoothing off
(``propagation.smoothing=1``), per-object warp (``ecc`` default, ``affine``, ``dense``) and
flow (``dis_ultrafast`` default, ``dis_fast``, ``dis_medium``, ``farneback``).

Writes bench/results/ablations.{json,md}; outputs in bench/results/tmp/ablations/.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from bench.common import (
    DATA,
    TMP,
    ensure_set,
    run_on_set,
    score,
    setup_logging,
    warm_up,
    write_report,
)
from vis_eval.tables import markdown_table

log = logging.getLogger("bench.ablations")

#: name -> (group, what changes, overrides)
VARIANTS: dict[str, tuple[str, str, list[str]]] = {
    "default": ("-", "configs/demo.yaml as shipped", []),
    "place_only": (
        "association",
        "cost = place only (appearance_weight 0)",
        ["tracker.appearance_weight=0.0"],
    ),
    "box_only": (
        "association",
        "place = Kalman box IoU only (mask_weight 0, not learned)",
        ["tracker.adaptive_mask_weight=false", "tracker.mask_weight=0.0"],
    ),
    "fixed_mask_weight": (
        "association",
        "mask weight fixed at 0.5 (adaptive_mask_weight off)",
        ["tracker.adaptive_mask_weight=false"],
    ),
    "no_kalman": ("motion", "Kalman filter off (last box)", ["tracker.use_kalman=false"]),
    "no_motion_gate": (
        "motion",
        "no Kalman motion gate (motion_gate off)",
        ["tracker.motion_gate=false"],
    ),
    "confirm_1": (
        "lifecycle",
        "confirm a track on its first keyframe (confirm_hits 1)",
        ["tracker.confirm_hits=1"],
    ),
    "no_low_pass": (
        "association",
        "no second pass for low-score detections",
        ["tracker.low_score=0.5"],
    ),
    "strict_class": (
        "association",
        "classes must agree (class_penalty -1)",
        ["tracker.class_penalty=-1"],
    ),
    "no_dedup": (
        "detections",
        "no cross-class duplicate suppression (duplicate_iou 1)",
        ["tracker.duplicate_iou=1.0"],
    ),
    "no_smoothing": (
        "masks",
        "keyframe smoothing off (smoothing 1.0)",
        ["propagation.smoothing=1.0"],
    ),
    "warp_affine": ("warp", "per-object similarity from flow", ["propagation.warp=affine"]),
    "warp_dense": ("warp", "per-pixel remap by flow", ["propagation.warp=dense"]),
    "flow_dis_fast": ("flow", "DIS fast preset", ["propagation.method=dis_fast"]),
    "flow_dis_medium": ("flow", "DIS medium preset", ["propagation.method=dis_medium"]),
    "flow_farneback": ("flow", "Farneback flow", ["propagation.method=farneback"]),
}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m bench.ablations",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--data", type=Path, default=DATA)
    p.add_argument("--scale", type=int, default=1)
    p.add_argument("--interval", type=int, default=10, help="keyframe interval N")
    p.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    p.add_argument("--only", nargs="+", help="only these sequences")
    p.add_argument("--name", default="ablations")
    p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="config override applied to every variant (repeatable), e.g. detector.threads=1",
    )
    a = p.parse_args(argv)
    setup_logging()
    ensure_set(a.data, a.scale)
    warm_up(a.data, [f"keyframes.interval={a.interval}", *a.overrides])
    runs, preds = {}, {}
    for v in a.variants:
        out = TMP / "ablations" / f"N{a.interval}" / v
        runs[v] = run_on_set(
            a.data,
            out,
            [f"keyframes.interval={a.interval}", *a.overrides, *VARIANTS[v][2]],
            only=a.only,
        )
        preds[v] = out
        log.info("%s: %.2f fps", v, runs[v]["fps"])
    scores = score(a.data, preds, only=a.only)
    rows = []
    base = scores["trackers"].get("default", {}).get("combined", {})
    for v in a.variants:
        c = scores["trackers"][v]["combined"]
        st = runs[v]["stage_ms_per_frame"]
        rows.append(
            {
                "variant": v,
                "group": VARIANTS[v][0],
                "change": VARIANTS[v][1],
                "HOTA": c["HOTA"],
                "dHOTA": c["HOTA"] - base["HOTA"] if base else None,
                "DetA": c["DetA"],
                "AssA": c["AssA"],
                "IDF1": c["IDF1"],
                "IDSW": c["IDSW"],
                "MOTSA": c["MOTSA"],
                "prop_miou": c.get("prop_miou_matched"),
                "prop_miou_gt": c.get("prop_miou_gt"),
                "fps": runs[v]["fps"],
                "ms_flow": st.get("flow"),
                "ms_propagate": st.get("propagate"),
                "ms_track": st.get("track"),
            }
        )
    cols = [
        ("variant", "variant", "s"),
        ("change", "change", "s"),
        ("HOTA", "HOTA", ".1f"),
        ("dHOTA", "Δ HOTA", "+.1f"),
        ("DetA", "DetA", ".1f"),
        ("AssA", "AssA", ".1f"),
        ("IDF1", "IDF1", ".1f"),
        ("IDSW", "IDSW", "d"),
        ("MOTSA", "MOTSA", ".1f"),
        ("prop_miou", "prop mIoU", ".1f"),
        ("prop_miou_gt", "prop mIoU/GT", ".1f"),
        ("fps", "fps", ".2f"),
        ("ms_flow", "flow ms", ".1f"),
        ("ms_propagate", "warp ms", ".1f"),
        ("ms_track", "track ms", ".1f"),
    ]
    per_seq = [
        {"sequence": s, **{v: scores["trackers"][v]["sequences"][s]["HOTA"] for v in a.variants}}
        for s in scores["trackers"][a.variants[0]]["sequences"]
    ]
    md = [
        f"Keyframe interval N={a.interval}, demo model"
        + (f"; on every variant: {' '.join(a.overrides)}." if a.overrides else "."),
        "",
        markdown_table(rows, cols),
        "",
        "HOTA per sequence:",
        "",
        markdown_table(
            per_seq, [("sequence", "sequence", "s")] + [(v, v, ".1f") for v in a.variants]
        ),
    ]
    write_report(
        a.name,
        {
            "interval": a.interval,
            "overrides": a.overrides,
            "variants": {v: VARIANTS[v] for v in a.variants},
            "runs": runs,
            "rows": rows,
            "scores": scores,
        },
        "\n".join(md),
    )
    print("\n".join(md))
    return 0


if __name__ == "__main__":
    sys.exit(main())
