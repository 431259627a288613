"""Score tracking results against MOTS ground truth: HOTA/DetA/AssA, MOTSA, IDF1, ID switches
(TrackEval), mask AP (pycocotools), mask IoU of propagated frames.

    python -m vis_eval.evaluate --gt bench/data --pred out/bench
    python -m vis_eval.evaluate --gt bench/data --pred runs/a runs/b --name ours peer \\
        --json cmp.json

``--gt``: a folder of ``<seq>.gt.txt`` (MOTS text, as written by ``bench.make_set`` or
``tools/make_sample.py``). ``--pred``: folders holding ``<seq>.jsonl`` (``vis.frame/1``, as
written by run_pipeline's JSONL sink) or ``<seq>.txt`` (MOTS text) for every sequence.
Prints a table (per sequence and combined) and writes every number as JSON (default
``<first --pred>/evaluation.json``). Exit codes: 0 scored, 2 bad or missing input.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from vis_eval.benchmark import (
    TABLE_COLUMNS,
    evaluate,
    load_ground_truth,
    load_predictions,
    result_rows,
)
from vis_eval.sequences import EvaluationError
from vis_eval.tables import text_table


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m vis_eval.evaluate",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--gt", required=True, type=Path, help="ground-truth folder (<seq>.gt.txt)")
    p.add_argument(
        "--pred",
        required=True,
        type=Path,
        nargs="+",
        help="prediction folder(s) (<seq>.jsonl or <seq>.txt)",
    )
    p.add_argument("--name", nargs="+", help="tracker name per --pred (default: folder names)")
    p.add_argument("--sequences", nargs="+", help="score only these sequences")
    p.add_argument(
        "--json", type=Path, help="write the results here (default <first --pred>/evaluation.json)"
    )
    p.add_argument(
        "--per-class",
        action="store_true",
        help="also score each class (disk, box, star) on its own",
    )
    p.add_argument("--no-ap", action="store_true", help="skip mask AP")
    p.add_argument("--combined-only", action="store_true", help="print only the combined rows")
    p.add_argument("--log-level", default="WARNING")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=getattr(logging, str(args.log_level).upper(), logging.WARNING),
        format="%(levelname)s %(name)s: %(message)s",
    )
    names = args.name or [p.name or str(p) for p in args.pred]
    if len(names) != len(args.pred) or len(set(names)) != len(names):
        print("error: --name needs one distinct name per --pred folder", file=sys.stderr)
        return 2
    try:
        gt = load_ground_truth(args.gt, args.sequences)
        trackers = {n: load_predictions(p, gt) for n, p in zip(names, args.pred)}
        result = evaluate(gt, trackers, mask_ap=not args.no_ap, per_class=args.per_class)
    except (EvaluationError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    result["gt"] = str(args.gt)
    result["pred"] = {n: str(p) for n, p in zip(names, args.pred)}
    print(text_table(result_rows(result, sequences=not args.combined_only), TABLE_COLUMNS))
    if args.per_class:
        rows = [
            {"tracker": n, "sequence": c, **v}
            for n, r in result["trackers"].items()
            for c, v in r.get("per_class", {}).items()
        ]
        print("\nper class (tracking metrics on that class alone):")
        print(text_table(rows, [c for c in TABLE_COLUMNS if not c[0].endswith(("AP", "matched"))]))
    out = args.json or args.pred[0] / "evaluation.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"\nwrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
