"""``vis-pipeline corrections``: record review decisions about a run's tracks without the
browser, as the review page's "Save corrections" does (``vis.corrections/1``, docs/review.md).

    vis-pipeline corrections out/cam/cam1.jsonl -o cam1.corrections.json \\
        --accept 3,5 --reject 7 --reject 9:120-200 --wrong-class 4=car
    vis-pipeline corrections out/cam/cam1.jsonl -o cam1.corrections.json --merge \\
        --accept 9:0-119

TRACKS is a comma-separated list of ``TRACK`` (the whole track) or ``TRACK:START-STOP``
(frames START to STOP inclusive, within the track); ``--wrong-class`` takes
``TRACKS=LABEL`` with a label the run uses. Decisions are kept in command-line order, and a
later one overrides an earlier one for the frames it covers. ``--merge`` adds them after the
decisions already in the output file (which must belong to the same run); without it an
existing output file is refused. Exit codes: 0 written; 2 bad input (one line naming it).
"""

from __future__ import annotations

import argparse
import re
import sys
from collections import Counter
from pathlib import Path
from typing import Any

from streams.exports import ExportError
from streams.exports.records import RunRecords
from streams.review.corrections import (
    Corrections,
    CorrectionsError,
    Decision,
    check_against_run,
    load_corrections,
    now,
    parse_decision,
    run_identity,
    save_corrections,
)
from vis.schema import MAX_LABEL_CHARS
from vis_pipeline.summary import EXIT_INPUT, EXIT_OK

ITEM = re.compile(r"^\s*(\d+)(?::(\d+)-(\d+))?\s*$")


class _Step(argparse.Action):
    """Appends ``(decision, text)`` to ``namespace.steps``, keeping command-line order."""

    def __call__(self, parser: Any, namespace: Any, values: Any, option_string: Any = None):
        namespace.steps = [*(namespace.steps or []), (self.const, option_string, values)]


def parse_items(decision: str, option: str, text: str) -> list[Decision]:
    """The decisions one option gives, e.g. ``("reject", "--reject", "7,9:120-200")``;
    ``CorrectionsError`` naming the option and the syntax."""
    label = None
    if decision == "wrong_class":
        text, sep, label = text.partition("=")
        if not sep or not label.strip():
            raise CorrectionsError(
                f"{option} {text!r}: expected TRACKS=LABEL, e.g. {option} 4=car or "
                f"{option} 4:0-50=car"
            )
        label = label.strip()
        if len(label) > MAX_LABEL_CHARS:
            raise CorrectionsError(
                f"{option}: label {label[:40]!r}... ({len(label)} characters) is longer than "
                f"{MAX_LABEL_CHARS} characters; give one of the run's labels"
            )
    out = []
    for item in text.split(","):
        m = ITEM.match(item)
        if m is None:
            raise CorrectionsError(
                f"{option} {item.strip()!r}: expected TRACK or TRACK:START-STOP, e.g. 9 or "
                "9:120-200 (frames inclusive)"
            )
        tid, a, b = m.groups()
        raw = {"track_id": int(tid), "decision": decision, "label": label}
        if a is not None:
            raw["frames"] = [int(a), int(b)]
        out.append(parse_decision(raw, f"{option} {item.strip()}"))
    return out


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(
        prog="vis-pipeline corrections",
        description=__doc__.split("\n\n")[0],
        epilog=__doc__.split("\n\n", 2)[2],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("jsonl", help="the run's vis.frame JSONL (or the review's quality JSONL)")
    p.add_argument("--output", "-o", required=True, metavar="FILE", help="corrections JSON")
    for flag, kind, metavar, what in [
        ("--accept", "accept", "TRACKS", "right: learn from them"),
        ("--reject", "reject", "TRACKS", "not objects to learn (false positives, drift)"),
        ("--wrong-class", "wrong_class", "TRACKS=LABEL", "real objects of class LABEL"),
    ]:
        p.add_argument(flag, action=_Step, const=kind, dest="steps", metavar=metavar,
                       help=f"{what}; e.g. 3,5 or 9:120-200 (repeatable)")  # fmt: skip
    p.add_argument("--merge", action="store_true", help="add to the decisions in --output")
    p.add_argument("--reviewer", help="who decided (kept in the file)")
    args = p.parse_args(argv)
    try:
        corrections = _record(args)
        save_corrections(corrections, args.output)
    except (CorrectionsError, ExportError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_INPUT
    except OSError as exc:
        print(
            f"error: cannot write --output {args.output}: {exc.strerror}; give a writable file "
            "path in an existing folder",
            file=sys.stderr,
        )
        return EXIT_INPUT
    kinds = Counter(d.decision for d in corrections.decisions)
    tracks = len({d.track_id for d in corrections.decisions})
    print(
        f"{len(corrections.decisions)} decisions about {tracks} tracks of "
        f"{corrections.run.stream_id} ({', '.join(f'{k} {n}' for k, n in sorted(kinds.items()))})"
        f" -> {args.output}"
    )
    return EXIT_OK


def _record(args: argparse.Namespace) -> Corrections:
    steps = args.steps or []
    if not steps and not args.merge:
        raise CorrectionsError(
            "no decisions: give --accept, --reject or --wrong-class (e.g. --accept 3,5)"
        )
    run = RunRecords.open(args.jsonl)
    out = Path(args.output)
    if out.exists() and not args.merge:
        raise CorrectionsError(
            f"{out} exists; pass --merge to add these decisions to it, or remove it"
        )
    if out.exists():
        corrections = load_corrections(out, run)
        corrections.created = now()
    else:
        corrections = Corrections(run_identity(run), [])
    for kind, option, text in steps:
        decisions = parse_items(kind, option, text)
        check_against_run(decisions, run, f"{option} {text}")
        for d in decisions:
            span = run.tracks[d.track_id]
            corrections.add(d, (span.first, span.last))
    if args.reviewer:
        if len(args.reviewer) > MAX_LABEL_CHARS:
            raise CorrectionsError(
                f"--reviewer {args.reviewer[:40]!r}... ({len(args.reviewer)} characters) is "
                f"longer than {MAX_LABEL_CHARS} characters; give a shorter name"
            )
        corrections.reviewer = args.reviewer
    return corrections
