"""Identity repair (``repair:``) on PETS 2009's dev span, fold by fold, before and after.

    PYTHONPATH=. OMP_NUM_THREADS=1 .venv/bin/python -m bench.repair
    PYTHONPATH=. OMP_NUM_THREADS=1 .venv/bin/python -m bench.repair --set repair.margin=2

Each case runs our pipeline once with the repair off (``vis_eval.pets09.run_ours``, every
keyframe phase at N > 1) and keeps every final ``(FrameResult, Frame)``; the repair is then
the same pure stage the processor wraps (``vis.tracking.repair.IdentityRepair``) applied to
them in the order they were written, so "before" and "after" see the same tracking. Cases:
the foreign detector's detections at N=1, N=5 and N=10 (means over the phases) and the
ground-truth boxes at N=1 and N=5. Folds A = frames 0-199, B = 200-399 (tune on one, report the
other); HOTA per fold, the crossings of the ground truth (``vis_eval.crossings``: both
people kept their ids, switches within 5 frames) at N=1, the repair's counts, its time
per frame and the most frames it held. Writes ``bench/results/repair.{json,md}``
(``--name``).
"""

from __future__ import annotations

import argparse
import logging
import statistics
import sys
import time

from bench.common import RESULTS, setup_logging, write_report
from vis.tracking.repair import IdentityRepair
from vis_eval import pets09
from vis_pipeline.config import load_config

CASES = [("foreign", 1), ("gt", 1), ("foreign", 5), ("foreign", 10), ("gt", 5)]
COMMAND = "PYTHONPATH=. OMP_NUM_THREADS=1 .venv/bin/python -m bench.repair"


def tracks_of(results) -> dict:
    return {
        r.frame_index: [
            (int(t), r.detections.xyxy[i].copy()) for i, t in enumerate(r.detections.track_ids)
        ]
        for r in results
    }


def repaired(pairs, config, window: int | None = None) -> tuple[list, dict, float, int]:
    """``pairs`` through ``IdentityRepair`` (``window``: the live delay) -> (results, counts,
    ms per frame, most held)."""
    rep = IdentityRepair(config, window)
    out, most = [], 0
    t0 = time.perf_counter()
    for pair in pairs:
        out += rep.push([pair])
        most = max(most, len(rep.held))
    out += rep.finish()
    ms = 1000.0 * (time.perf_counter() - t0) / max(len(pairs), 1)
    if [r.frame_index for r, _ in out] != [r.frame_index for r, _ in pairs]:
        raise RuntimeError("the repair changed the order of the results")
    return [r for r, _ in out], dict(rep.counts), ms, most


def crossings(gt, tracks) -> dict:
    from vis_eval.crossings import crossing_events, outcomes

    rows = outcomes(gt, tracks, crossing_events(gt))
    return {
        "kept": sum(o["kept"] for o in rows),
        "events": len(rows),
        "switches": sum(o["switches"] for o in rows),
    }


def run_case(kind: str, interval: int, config, gt, delay: int = 0, variants=None) -> dict:
    """One case, every phase; ``delay`` > 0: ``mode: live`` with the repair holding that many
    frames (``repair.live_delay``); ``variants`` ({name: RepairConfig}): each also applied to
    the same tracked results, its HOTA per fold in ``row["variants"][name]``."""
    work = RESULTS / "tmp"
    work.mkdir(parents=True, exist_ok=True)
    dets = pets09.detections_path(kind, work)
    phases = range(interval) if interval > 1 else [0]
    video = list(pets09.frames())
    before, after, counts, ms, most = [], [], {}, [], 0
    variants = variants or {}
    others: dict[str, list] = {name: [] for name in variants}
    for p in phases:
        results: list = []
        sets = ["repair.enabled=false", *(["mode=live"] if delay else [])]
        pets09.run_ours(dets, interval, sets, phase=p, on_result=results.append)
        pairs = [(r, video[r.frame_index]) for r in results]
        fixed, c, t, m = repaired(pairs, config, delay or None)
        before.append(tracks_of(results))
        after.append(tracks_of(fixed))
        for name, cfg in variants.items():
            others[name].append(tracks_of(repaired(pairs, cfg, delay or None)[0]))
        for k, v in c.items():
            counts[k] = counts.get(k, 0) + v
        ms.append(t)
        most = max(most, m)
    row = {"phases": len(phases), "counts": counts, "ms_per_frame": round(statistics.mean(ms), 3)}
    row["most_held"] = most
    for label, runs in (("before", before), ("after", after)):
        folds = {}
        for fold, (a, b) in pets09.FOLDS.items():
            per = [pets09.score_span(gt, {"t": t}, a, b)["t"] for t in runs]
            folds[fold] = {
                k: round(statistics.mean(s[k] for s in per), 2) for k in ("HOTA", "AssA", "IDSW")
            }
        per = [pets09.score(gt, {"t": t})["t"] for t in runs]
        folds["whole"] = {
            k: round(statistics.mean(s[k] for s in per), 2)
            for k in ("HOTA", "AssA", "IDSW", "IDF1")
        }
        if interval == 1:
            folds["crossings"] = crossings(gt, runs[0])
        row[label] = folds
    if others:
        row["variants"] = {
            name: {
                fold: round(
                    statistics.mean(
                        pets09.score_span(gt, {"t": t}, a, b)["t"]["HOTA"] for t in runs
                    ),
                    2,
                )
                for fold, (a, b) in pets09.FOLDS.items()
            }
            for name, runs in others.items()
        }
    return row


def markdown(payload: dict) -> str:
    out = [
        "# Identity repair on PETS09's dev span (A = frames 0-199, B = 200-399)\n",
        f"`{payload['command']}`; settings: `{payload['settings']}`. HOTA per fold (TrackEval "
        "boxes), N > 1 the mean over every keyframe phase; the repair applied to the same "
        "tracked results (before = repair off).\n",
        "| case | HOTA A before | after | HOTA B before | after | whole before | after | IDSW "
        "(whole) before | after | crossings kept (switches) before | after | interactions | "
        "exchanges undone | swaps undone | ids changed | ms/frame | most held |",
        "|---|" + "---:|" * 8 + "---|---|" + "---:|" * 6,
    ]
    for case, r in payload["rows"].items():
        b, a, c = r["before"], r["after"], r["counts"]

        def cross(x):
            x = x.get("crossings")
            return f"{x['kept']} of {x['events']} ({x['switches']})" if x else "-"

        out.append(
            f"| {case} | {b['A']['HOTA']:.2f} | {a['A']['HOTA']:.2f} | {b['B']['HOTA']:.2f} | "
            f"{a['B']['HOTA']:.2f} | {b['whole']['HOTA']:.2f} | {a['whole']['HOTA']:.2f} | "
            f"{b['whole']['IDSW']:g} | {a['whole']['IDSW']:g} | {cross(b)} | {cross(a)} | "
            f"{c.get('interactions', 0)} | {c.get('exchanges_undone', 0)} | "
            f"{c.get('swaps_undone', 0)} | {c.get('ids_changed', 0)} | {r['ms_per_frame']:.2f} | "
            f"{r['most_held']} |"
        )
    m = payload["mean"]
    out += [
        "",
        f"Mean over the offline cases, fold A: {m['before']['A']:.2f} -> "
        f"{m['after']['A']:.2f}; fold B: {m['before']['B']:.2f} -> {m['after']['B']:.2f}.",
    ]
    names = [n for n in payload.get("variants", {})]
    if names:
        cases = [c for c, r in payload["rows"].items() if "variants" in r]
        out += [
            "",
            "## Variants (the same tracked results, repaired with other settings)",
            "",
            "| variant | settings | "
            + " | ".join(f"{c} A | {c} B" for c in cases)
            + " | mean A | mean B |",
            "|---|---|" + "---:|" * (2 * len(cases) + 2),
        ]
        rows = {"shipped": {c: payload["rows"][c]["after"] for c in cases}}
        rows |= {n: {c: payload["rows"][c]["variants"][n] for c in cases} for n in names}
        for n, per in rows.items():

            def hota(c, f, per=per):
                v = per[c][f]
                return v["HOTA"] if isinstance(v, dict) else v

            mean = {f: statistics.mean(hota(c, f) for c in cases) for f in ("A", "B")}
            sets = "(the defaults)" if n == "shipped" else f"`{payload['variants'][n]}`"
            out.append(
                f"| {n} | {sets} | "
                + " | ".join(f"{hota(c, 'A'):.2f} | {hota(c, 'B'):.2f}" for c in cases)
                + f" | {mean['A']:.2f} | {mean['B']:.2f} |"
            )
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--set", action="append", default=[], help="repair.KEY=VALUE")
    ap.add_argument("--name", default="repair", help="report name under bench/results")
    ap.add_argument("--cases", default=None, help="e.g. foreign:1,gt:1")
    ap.add_argument(
        "--live",
        default="",
        help="comma-separated delays: also mode live at N=1 and N=5 with the repair holding "
        "that many frames (repair.live_delay)",
    )
    ap.add_argument(
        "--variant",
        action="append",
        default=[],
        metavar="NAME:KEY=VALUE[,KEY=VALUE]",
        help="also replay the repair with these repair settings on the same tracked results "
        "(offline cases only); repeatable",
    )
    args = ap.parse_args(argv)
    setup_logging()
    logging.getLogger().setLevel(logging.WARNING)
    missing = pets09.available()
    if missing:
        print(f"bench.repair: {missing}", file=sys.stderr)
        return 2
    config = load_config(None, ["repair.enabled=true", *args.set]).repair
    variants, variant_sets = {}, {}
    for spec in args.variant:
        name, _, sets = spec.partition(":")
        keys = [f"repair.{kv}" for kv in sets.split(",") if kv]
        variants[name] = load_config(None, ["repair.enabled=true", *args.set, *keys]).repair
        variant_sets[name] = sets
    cases = CASES
    if args.cases:
        cases = [(k, int(n)) for k, n in (c.split(":") for c in args.cases.split(","))]
    gt = pets09.load_gt()
    t0 = time.perf_counter()
    rows = {}
    for kind, interval in cases:
        rows[f"{kind} N={interval}"] = run_case(kind, interval, config, gt, variants=variants)
        print(kind, interval, rows[f"{kind} N={interval}"], flush=True)
    for delay in [int(d) for d in args.live.split(",") if d]:
        for interval in (1, 5):
            name = f"live foreign N={interval}, delay {delay}"
            rows[name] = run_case("foreign", interval, config, gt, delay)
            print(name, rows[name], flush=True)
    offline = [r for name, r in rows.items() if not name.startswith("live")]
    mean = {
        label: {
            f: round(statistics.mean(r[label][f]["HOTA"] for r in offline), 2) for f in ("A", "B")
        }
        for label in ("before", "after")
    }
    payload = {
        "command": COMMAND
        + "".join(f" --set {s}" for s in args.set)
        + (f" --live {args.live}" if args.live else "")
        + (f" --cases {args.cases}" if args.cases else "")
        + "".join(f" --variant {v}" for v in args.variant)
        + (f" --name {args.name}" if args.name != "repair" else ""),
        "settings": dict(vars(config)),
        "working_tree": "uncommitted changes (identity repair)",
        "rows": rows,
        "mean": mean,
        "variants": variant_sets,
        "seconds": round(time.perf_counter() - t0),
    }
    _, md = write_report(args.name, payload, markdown(payload))
    print(md.read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
