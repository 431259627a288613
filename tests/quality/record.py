"""Measure the headline quality cases and pin them in ``tests/data/expected_scores.json``.

    PYTHONPATH=. .venv/bin/python -m tests.quality.record                # every case
    PYTHONPATH=. .venv/bin/python -m tests.quality.record sample_N5      # some cases
    PYTHONPATH=. .venv/bin/python -m tests.quality.record --out /tmp/x.json   # compare only

Each case's values, the command, the date and the CPU (``lscpu``'s model name, the
features ``vis.detection.precision.cpu_features`` reads, any kernel cap in force) are
written; a case's ``tolerance`` and ``tolerance_basis`` are kept as they are (they are a
decision taken from repeated runs, not a measurement). Prints each case's seconds.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import os
import sys
import time
from pathlib import Path

from tests.quality.cases import EXPECTED, MEASURE, RECORD


def cpu() -> str:
    """The CPU as ``lscpu`` names it (``/proc/cpuinfo``'s model name), the features that
    decide the kernels, and every kernel cap in force."""
    from vis.detection.precision import cpu_features

    caps = [
        f"{k}={os.environ[k]}"
        for k in ("ATEN_CPU_CAPABILITY", "OPENCV_CPU_DISABLE", "NPY_DISABLE_CPU_FEATURES")
        if os.environ.get(k)
    ]
    return cpu_features().describe() + (f"; {' '.join(caps)}" if caps else "")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("cases", nargs="*", help=f"cases (default all): {', '.join(MEASURE)}")
    ap.add_argument("--out", type=Path, default=EXPECTED, help="the file to write")
    args = ap.parse_args(argv)
    unknown = sorted(set(args.cases) - MEASURE.keys())
    if unknown:
        print(f"unknown case {unknown[0]!r}: use one of {', '.join(MEASURE)}", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.WARNING)
    src = args.out if args.out.is_file() else EXPECTED
    doc = json.loads(src.read_text()) if src.is_file() else {"cases": {}}
    where = cpu()
    for name in args.cases or list(MEASURE):
        t0 = time.perf_counter()
        values = MEASURE[name]()
        seconds = time.perf_counter() - t0
        old = doc["cases"].get(name, {})
        doc["cases"][name] = {
            "values": values,
            "command": f"{RECORD} {name}",
            "date_utc": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M"),
            "cpu": where,
            **{k: v for k, v in old.items() if k in ("reproduces", "tolerance", "tolerance_basis")},
        }
        print(f"{name}: {seconds:.1f} s {json.dumps(values)}", flush=True)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(doc, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
