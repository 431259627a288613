"""Keyframes spent where tracks interact, within the fixed schedule's budget, judged on PETS09
split in time.

    OMP_NUM_THREADS=1 PYTHONPATH=. .venv/bin/python -m bench.interaction_keyframes
    ... --only fixed,interaction --no-checks          # the PETS folds only
    ... --phase0                                      # one phase per case (a quick look)

Cases: the foreign detector's detections on the PETS 2009 S2.L1 dev span (``vis_eval.pets09``)
at N=5 and N=10, each run at every keyframe phase p < N and scored per fold (A = frames
0-199, B = 200-399; the tracker runs through all 400 frames). The fixed policy's phase p puts
the keyframes after the first on frames p, p + N, ...; a policy that saves calls
(``adaptive``, ``interaction``) starts its credit p / N of a call lower, which puts the
``interaction`` schedule's keyframes of quiet stretches on frames p (mod N) after its first
p keyframes, each one frame late (``pets09.run_ours``). Reported
per candidate and case: mean HOTA over the phases per fold, its range (max - min) over the
phases, and the detector calls made (mean over the phases) against the fixed schedule's.

Judgement (``bench.tracker_cv``'s rule): for each fold the candidate with the best mean HOTA
over the cases there is what tuning on it picks, reported on the other fold; a candidate
replaces the default (``fixed``) only if it beats it on both folds and loses at most 0.5
HOTA on the synthetic set and 0.02 J on DAVIS's people (at N=5; ``--no-checks`` skips
them). Runs one at a time. Writes ``bench/results/interaction_keyframes.{json,md}``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable

from bench.common import RESULTS, write_report
from bench.tracker_cv import (
    FOLDS,
    Column,
    bold_names,
    candidate_table,
    candidates_ready,
    davis_available,
    fold_scores,
    mean_hota,
    pick,
    replaces,
    run_davis,
    run_synthetic,
)
from vis_eval import pets09

COMMAND = "OMP_NUM_THREADS=1 PYTHONPATH=. .venv/bin/python -m bench.interaction_keyframes"
INTERVALS = (5, 10)
INTERACTION = ["keyframes.policy=interaction"]
#: name -> overrides; ``fixed`` is the default. Offline (the default mode) asks the held
#: frames where contacts begin / end / both; ``live`` rows run the live mode
CANDIDATES: dict[str, list[str]] = {
    "fixed": [],
    "interaction": INTERACTION,
    "interaction_ends": [*INTERACTION, "keyframes.interaction_at=ends"],
    "interaction_both": [*INTERACTION, "keyframes.interaction_at=both"],
    "interaction_margin_0": [*INTERACTION, "keyframes.interaction_margin=0"],
    "interaction_margin_0.5": [*INTERACTION, "keyframes.interaction_margin=0.5"],
    "fixed_live": ["mode=live"],
    "interaction_live": [*INTERACTION, "mode=live"],
    "interaction_live_ahead_0": [*INTERACTION, "mode=live", "keyframes.interaction_lookahead=0"],
}
#: the baseline each candidate is judged against (same mode)
BASE = {name: ("fixed_live" if "mode=live" in o else "fixed") for name, o in CANDIDATES.items()}


def run_pets(overrides: list[str], interval: int, phase: int) -> tuple[dict, dict]:
    """One run over frames 0-399 -> (fold scores, counts)."""
    work = RESULTS / "tmp"
    work.mkdir(parents=True, exist_ok=True)
    counts: dict = {}
    tracks, _ = pets09.run_ours(
        pets09.detections_path("foreign", work), interval, overrides, phase=phase, counts=counts
    )
    return fold_scores(pets09.load_gt(), tracks), counts


def summarise(runs: list[tuple[dict, dict]]) -> dict:
    """Runs of one case (one per phase) -> HOTA mean / min / max / range per fold, calls."""
    out: dict = {}
    for fold in (*FOLDS, "whole"):
        h = [r[fold]["HOTA"] for r, _ in runs]
        out[fold] = {
            "mean": round(statistics.mean(h), 2),
            "min": round(min(h), 2),
            "max": round(max(h), 2),
            "range": round(max(h) - min(h), 2),
            "by_phase": [round(x, 2) for x in h],
            "AssA": round(statistics.mean(r[fold]["AssA"] for r, _ in runs), 2),
            "IDSW": round(statistics.mean(r[fold]["IDSW"] for r, _ in runs), 2),
        }
    out["detector_calls"] = round(statistics.mean(c["detector_calls"] for _, c in runs), 2)
    reasons: dict[str, int] = {}
    for _, c in runs:
        for k, v in c["keyframe_reasons"].items():
            reasons[k] = reasons.get(k, 0) + v
    out["keyframe_reasons_total"] = reasons
    return out


def judge(rows: dict[str, dict], checks: bool) -> dict:
    """Per fold: the offline candidate tuning there would pick and its score on the other
    fold; and the candidates that beat the fixed schedule of their mode on both folds
    (``bench.tracker_cv``'s rule; the synthetic and DAVIS checks only with ``checks``)."""

    def hota(name: str, fold: str) -> float:
        return mean_hota(rows, name, fold, key="mean")

    def check(key: str, value: str) -> Callable[[str], float | None]:
        def run(name: str) -> float | None:
            r = rows[name].get(key) if checks else None
            return r[value] if r else None

        return run

    offline = [n for n in rows if BASE[n] == "fixed"]
    out: dict = {
        "picked": pick(offline, hota, "fixed") if "fixed" in rows else {},
        "beats_base_on_both": [],
    }
    for name in rows:
        base = BASE[name]
        rows[name]["mean_HOTA"] = {f: round(hota(name, f), 2) for f in FOLDS}
        if name == base or base not in rows:
            continue
        if replaces(name, base, hota, check("synthetic", "HOTA"), check("davis", "J")):
            out["beats_base_on_both"].append(name)
    return out


def markdown(payload: dict) -> str:
    rows, verdict = payload["rows"], payload["judgement"]
    cases = payload["cases"]

    def dv_cell(r: dict) -> str:
        dv = r.get("davis")
        return "-" if not dv else f"{dv['J']:.3f} ({dv['ids']})"

    extra: list[Column] = [
        (
            "calls " + " / ".join(cases),
            "---:",
            lambda r: " / ".join(f"{r['cases'][c]['detector_calls']:g}" for c in cases),
        ),
        (
            "synthetic HOTA",
            "---:",
            lambda r: "-" if not r.get("synthetic") else format(r["synthetic"]["HOTA"], ".2f"),
        ),
        ("DAVIS people J (ids)", "---:", dv_cell),
    ]
    out = [
        "# Keyframes where tracks interact, PETS09 split in time (A = 0-199, B = 200-399)\n",
        f"`{payload['command']}`; foreign detections; HOTA mean over the keyframe phases per "
        "case and fold (range over the phases in brackets); detector calls: mean over the "
        "phases; checks at N=5.\n",
        *candidate_table(
            rows, cases, lambda s: f"{s['mean']:.2f} ({s['range']:.1f})", extra, " (range)"
        ),
        "",
    ]
    for fold, p in verdict["picked"].items():
        out.append(
            f"* Tuned on {fold} (offline candidates): **{p['candidate']}** ({p['tuned_on']} "
            f"there); on {p['reported_on']}: **{p['score']}** (fixed {p['fixed_on_other']})."
        )
    out.append(
        "* Beat the fixed schedule of their mode on both folds and lose no check: "
        + bold_names(verdict["beats_base_on_both"])
        + "."
    )
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", default=None, help="comma-separated candidate names")
    ap.add_argument("--phase0", action="store_true", help="phase 0 only (a quick look)")
    ap.add_argument("--no-checks", action="store_true", help="without synthetic and DAVIS")
    ap.add_argument("--name", default="interaction_keyframes", help="report name")
    ap.add_argument(
        "--intervals", default=",".join(map(str, INTERVALS)), help="keyframe intervals N"
    )
    args = ap.parse_args(argv)
    names = candidates_ready("bench.interaction_keyframes", args.only, CANDIDATES)
    if names is None:
        return 2
    intervals = [int(v) for v in args.intervals.split(",")]
    t0 = time.perf_counter()
    rows: dict[str, dict] = {}
    for name in names:
        rows[name] = {"overrides": CANDIDATES[name], "cases": {}}
        for n in intervals:
            phases = [0] if args.phase0 else range(n)
            runs = [run_pets(CANDIDATES[name], n, p) for p in phases]
            rows[name]["cases"][f"N={n}"] = summarise(runs)
            c = rows[name]["cases"][f"N={n}"]
            print(name, n, c["A"]["mean"], c["B"]["mean"], c["detector_calls"], flush=True)
        if not args.no_checks and "mode=live" not in CANDIDATES[name]:
            from bench.common import ensure_set

            ensure_set()
            rows[name]["synthetic"] = run_synthetic(name, CANDIDATES[name], 5)[2]
            if davis_available() is None:
                rows[name]["davis"] = run_davis(name, CANDIDATES[name], 5)[2]
            print(name, rows[name].get("synthetic"), rows[name].get("davis"), flush=True)
    payload = {
        "command": " ".join([COMMAND, *(argv if argv is not None else sys.argv[1:])]),
        "working_tree": "uncommitted changes on top of the commit named",
        "cases": [f"N={n}" for n in intervals],
        "folds": FOLDS,
        "rows": rows,
        "seconds": round(time.perf_counter() - t0),
    }
    payload["judgement"] = judge(rows, not args.no_checks)
    _, md = write_report(args.name, payload, markdown(payload))
    print(md.read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
