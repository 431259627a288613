"""A longer fuzz run of the readers of untrusted input: each gets ``--examples`` generated
inputs (Hypothesis strategies of ``devtools.hostile``) under an address-space limit, and the
run reports how many broke the reader's contract (crashes; the goal is 0 for every reader).

    python -m bench.fuzz --examples 10000

Writes ``bench/results/fuzz.json`` and ``fuzz.md`` (with the CPU). Needs the ``test`` extra.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import subprocess
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from devtools import hostile

RESULTS = Path(__file__).resolve().parent / "results"


def readers() -> dict[str, tuple[st.SearchStrategy, Callable[[Any], None]]]:
    """Reader name -> (strategy of one input, the contract check of one input)."""
    out: dict[str, tuple[st.SearchStrategy, Callable[[Any], None]]] = {
        "image header (streams.image_header)": (
            hostile.image_files(),
            lambda f: hostile.check_image_header(*f),
        ),
        "image folder (streams.sources.ImageFolderSource)": (
            st.lists(hostile.image_files(), min_size=1, max_size=4),
            hostile.check_image_folder,
        ),
        "precomputed vis.frame JSONL": (
            st.tuples(hostile.jsonl_files(), st.booleans()),
            lambda a: hostile.check_precomputed(a[0], mot=False, model_labels=a[1]),
        ),
        "precomputed MOTChallenge det.txt": (
            hostile.det_txt_files(),
            lambda rows: hostile.check_precomputed(rows, mot=True, model_labels=False),
        ),
        "configuration mapping (vis.config.from_mapping)": (
            hostile.config_mappings(),
            hostile.check_config,
        ),
        "--set override (vis_pipeline.config.load_config)": (
            hostile.set_overrides,
            hostile.check_override,
        ),
    }
    out.update(hostile.extra_readers())  # the record readers of the other formats
    return out


def fuzz(strategy: st.SearchStrategy, check: Callable[[Any], None], examples: int) -> dict:
    """Run ``check`` on ``examples`` generated inputs; count contract breaks, never stop."""
    stats: dict[str, Any] = {"examples": 0, "crashes": 0, "first_crashes": []}

    @settings(
        max_examples=examples,
        database=None,
        deadline=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(strategy)
    def run(value: Any) -> None:
        stats["examples"] += 1
        try:
            with hostile.address_space_limit():
                check(value)
        except Exception as exc:  # noqa: BLE001 - every break is counted and reported
            stats["crashes"] += 1
            if len(stats["first_crashes"]) < 3:
                stats["first_crashes"].append(
                    {
                        "error": f"{type(exc).__name__}: {str(exc)[:300]}",
                        "input": repr(value)[:500],
                        "where": traceback.format_exc().splitlines()[-3][:200],
                    }
                )

    t0 = time.perf_counter()
    run()
    stats["seconds"] = round(time.perf_counter() - t0, 1)
    return stats


def cpu_model() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        return next(
            line.split(":", 1)[1].strip() for line in out.splitlines() if "Model name" in line
        )
    except (OSError, subprocess.CalledProcessError, StopIteration):
        return platform.processor() or "unknown"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--examples", type=int, default=10000, help="generated inputs per reader")
    ap.add_argument("--only", action="append", help="run the readers whose name contains this")
    ap.add_argument(
        "--merge", action="store_true", help="keep the other readers' rows of an earlier run"
    )
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args(argv)
    logging.disable(logging.WARNING)  # a skipped record logs a warning: thousands here
    results = {}
    earlier = args.out / "fuzz.json"
    if args.merge and earlier.is_file():
        results = json.loads(earlier.read_text())["readers"]
    for name, (strategy, check) in readers().items():
        if args.only and not any(o in name for o in args.only):
            continue
        results[name] = fuzz(strategy, check, args.examples)
        r = results[name]
        print(f"{name}: {r['examples']} inputs, {r['crashes']} crashes, {r['seconds']} s")
    report = {
        "examples_per_reader": min(r["examples"] for r in results.values()),
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "readers": results,
        "total_crashes": sum(r["crashes"] for r in results.values()),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "fuzz.json").write_text(json.dumps(report, indent=2) + "\n")
    lines = [
        "# Fuzz run of the readers of untrusted input",
        "",
        f"`python -m bench.fuzz --examples {report['examples_per_reader']}` on {report['cpu']} "
        f"({report['cores']} cores), each input under an address-space limit of the process "
        "size + 1.5 GB. A crash is any break of the reader's contract (an exception other "
        "than its documented one, a message of more than one line, a result outside its "
        "limits, a MemoryError).",
        "",
        *(
            ["Rows of readers not named by `--only` are kept from an earlier run (`--merge`).", ""]
            if args.merge
            else []
        ),
        "| reader | inputs | crashes | seconds |",
        "|---|---|---|---|",
        *(
            f"| {n} | {r['examples']} | {r['crashes']} | {r['seconds']} |"
            for n, r in results.items()
        ),
        "",
    ]
    for n, r in results.items():
        for c in r["first_crashes"]:
            lines.append(f"- {n}: `{c['error']}` on `{c['input'][:200]}`")
    (args.out / "fuzz.md").write_text("\n".join(lines) + "\n")
    return 1 if report["total_crashes"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
