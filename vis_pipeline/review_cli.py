"""``vis-pipeline review``: a static review page (HTML + CSV) of a run, worst tracks first.

    vis-pipeline review out/demo/sample.jsonl --video data/sample/sample.mp4 -o review/

Writes ``review/index.html`` (open it in a browser; no server: mark tracks accept, reject
or wrong class and save the corrections file, docs/review.md), ``review/review.csv``,
``review/thumbs/`` and ``review/<stream>.quality.jsonl`` (the records with their quality
fields, docs/quality.md). Exit codes: 0 written; 2 bad input.
"""

from __future__ import annotations

import argparse
import sys
import time

from streams.exports import ExportError
from streams.review.page import write_review
from vis_pipeline.summary import EXIT_INPUT, EXIT_OK


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(
        prog="vis-pipeline review",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("jsonl", help="a stream's vis.frame JSONL (version 2 or 1)")
    p.add_argument("--video", required=True, help="the video the run processed (thumbnails)")
    p.add_argument("--output", "-o", required=True, metavar="DIR")
    p.add_argument("--top", type=int, default=30, help="tracks listed (default 30)")
    p.add_argument("--no-progress", action="store_true")
    args = p.parse_args(argv)
    if args.top < 1:
        print(f"error: --top {args.top} must be at least 1", file=sys.stderr)
        return EXIT_INPUT
    started = time.perf_counter()
    try:
        rows = write_review(
            args.jsonl, args.video, args.output, top=args.top, show_progress=not args.no_progress
        )
    except ExportError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_INPUT
    worst = f"; worst: track {rows[0].track_id} ({rows[0].review_score:.2f})" if rows else ""
    print(
        f"review of {len(rows)} tracks -> {args.output}/index.html and review.csv "
        f"in {time.perf_counter() - started:.1f} s{worst}"
    )
    return EXIT_OK
