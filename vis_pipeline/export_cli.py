"""``vis-pipeline export``: a run's JSONL -> annotation-tool formats (docs/exports.md).

    vis-pipeline export --format coco --format cvat --input out/demo/sample.jsonl --output exp/
    vis-pipeline export --format all --input out/demo/sample.jsonl --output exp/ \\
        --video data/sample/sample.mp4      # also the frames, as the COCO/CVAT entries name them

Exit codes: 0 written; 2 bad input (the message names it and the fix); 3 a file could not be
written (disk full, no permission); 130 interrupted (SIGINT/SIGTERM; temporary files removed).
"""

from __future__ import annotations

import argparse
import signal
import sys
import time

from streams.exports import FORMATS, ExportError, export_run
from vis_pipeline.summary import EXIT_INPUT, EXIT_INTERRUPTED, EXIT_OK, EXIT_SINK


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="vis-pipeline export",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--format",
        "-f",
        dest="formats",
        action="append",
        required=True,
        metavar="F",
        help=f"one of {', '.join(FORMATS)}, or all; repeatable or comma-separated",
    )
    p.add_argument(
        "--input", "-i", action="append", required=True, metavar="JSONL",
        help="a stream's vis.frame JSONL (version 2 or 1) (repeatable)",
    )  # fmt: skip
    p.add_argument("--output", "-o", required=True, metavar="DIR", help="folder to write")
    p.add_argument(
        "--video", metavar="FILE", help="the video the run processed: also write its frames"
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    return p


def split_formats(values: list[str]) -> list[str]:
    """``["coco,cvat", "mots"]`` -> ``["coco", "cvat", "mots"]``; ``all`` -> every format."""
    names = [v.strip() for value in values for v in value.split(",") if v.strip()]
    return list(FORMATS) if "all" in names else names


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    if args.video and len(args.input) > 1:
        print("error: --video goes with one --input (the run of that video)", file=sys.stderr)
        return EXIT_INPUT
    started = time.perf_counter()
    written = []

    def on_term(signum: int, _frame: object) -> None:
        raise KeyboardInterrupt(signal.Signals(signum).name)

    previous = signal.signal(signal.SIGTERM, on_term)
    try:
        for jsonl in args.input:
            written += export_run(
                jsonl,
                split_formats(args.formats),
                args.output,
                video=args.video,
                show_progress=not args.no_progress,
            )
    except ExportError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_INPUT
    except OSError as exc:
        print(
            f"error: cannot write the export to {args.output}: {exc.strerror or exc}; check "
            "the folder is writable and the disk has room",
            file=sys.stderr,
        )
        return EXIT_SINK
    except KeyboardInterrupt as exc:
        name = exc.args[0] if exc.args else "SIGINT"
        print(f"error: interrupted by {name}: the export in {args.output} is incomplete",
              file=sys.stderr)  # fmt: skip
        return EXIT_INTERRUPTED
    finally:
        signal.signal(signal.SIGTERM, previous)
    for r in written:
        print(
            f"  {r.format:8s} {r.frames} frames, {r.instances} instances, {r.tracks} tracks "
            f"-> {r.path}"
        )
    print(
        f"exported {len(args.input)} run(s) in {len(written)} file(s) "
        f"in {time.perf_counter() - started:.1f} s"
    )
    return EXIT_OK
