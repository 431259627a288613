"""Tracker settings judged by cross-validation: tune on one fold, report the other.

    PYTHONPATH=. .venv/bin/python -m bench.tracker_cv                   # every candidate
    PYTHONPATH=. .venv/bin/python -m bench.tracker_cv --only default,no_reid --jobs 2
    PYTHONPATH=. .venv/bin/python -m bench.tracker_cv --phases   # N=5 over every keyframe phase

Folds: the PETS 2009 S2.L1 dev span (``vis_eval.pets09``) split in time, **A** = frames
0-199 and **B** = frames 200-399. The tracker runs through all 400 frames (a stream does not
restart at a fold's edge); each fold is scored on its own frames with TrackEval (boxes).
Cases: the foreign detector's detections at N=1 and at N=5, the ground-truth boxes without
ids at N=1 (``bench.real_tracking``'s inputs), and the street demo itself (``bench.street``:
``configs/street.yaml``, the shipped people model on the footage's frames, N=3, live, ECC;
``--no-street`` skips it). A candidate is a list of ``--set``
overrides of the pipeline (tracker settings, mostly); ``default`` is none. Departures
that needed code and did not pay were measured and removed after (docs/history.md
section 6): BoT-SORT's min fusion of place and appearance and the flow-carried box as a second
measurement (at commit 0a23c56), and coasting on the propagated mask through missed
keyframes (``tracker.coast_s``, at commit f81fdbd). Round 5's first weak starts, whose lost
tracks were still re-identified from confident detections only
(``tracker_cv_round5_nostreet.md``), were measured in the working tree before weak
detections fed re-identification too.

Two checks that are not PETS: the synthetic benchmark set (``bench.make_set``, 8
sequences, the demo model's own detections, ``configs/demo.yaml``) at N=1 and N=5, scored on
masks (``--no-synthetic`` skips it); and DAVIS 2016's people (``lucia``, ``dance-twirl``:
``bench.davis``, the ``people_cars`` model, ``configs/street.yaml``) at N=1 and N=5, scored by
J of the one track that covers the person most and the distinct ids on them
(``--no-davis`` skips it).

Keyframe phase (``--phases``): at N=5 the keyframes fall on frames 0, 5, 10, ... only because
the footage starts at frame 0, and on PETS's fold A one crossing between two keyframes or on
one moves HOTA by up to 10 (``bench.interval_luck``, at commit 5a90620). With ``--phases``
each PETS case at N > 1 runs at every phase (keyframes on frames p, p + N, ... for p < N) and
is scored as their mean (the street demo stays at phase 0: one run of the shipped model per
candidate).

Judgement: for each fold F, the candidate with the best mean HOTA over the cases on F is the
one tuning on F would pick; what is reported for it is its score on the *other* fold. A
candidate replaces a default only if it beats the default on both folds (mean HOTA over the
cases), never on the strength of one, and does not lose more than 0.5 HOTA on the synthetic
set nor 0.02 J on DAVIS's people. Writes
``bench/results/tracker_cv.{json,md}`` (``--name`` for another report name).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import logging
import statistics
import sys
import time
from collections.abc import Callable

from bench.common import RESULTS, setup_logging, write_report
from vis_eval import pets09

FOLDS = pets09.FOLDS
CASES = [("foreign", 1), ("foreign", 5), ("gt", 1)]
COMMAND = "PYTHONPATH=. .venv/bin/python -m bench.tracker_cv"
#: what a new default may lose on the checks that are not PETS: synthetic HOTA, DAVIS J
SYNTHETIC_SLACK = 0.5
DAVIS_SLACK = 0.02
#: name -> overrides; each is one departure from the defaults (or a peer's choice)
CANDIDATES: dict[str, list[str]] = {
    "default": [],
    # appearance: none in the first pass (place only), or no re-identification of lost tracks
    "no_appearance": ["tracker.appearance_weight=0"],
    "no_reid": ["tracker.reid_max_distance=0"],
    # place: the Kalman box alone (no propagated mask), as the box trackers do
    "box_only": ["tracker.mask_weight=0", "tracker.adaptive_mask_weight=false"],
    # lifecycle: ByteTrack's two-keyframe confirmation, shorter / longer memory of lost tracks
    "confirm_2": ["tracker.confirm_hits=2", "tracker.confirm_score=1.0"],
    "lost_2s": ["tracker.max_lost_s=2"],
    "lost_8s": ["tracker.max_lost_s=8"],
    # score thresholds of ByteTrack's passes (track_thresh 0.6, new tracks at +0.1)
    "high_0.6": ["tracker.high_score=0.6", "tracker.new_track_score=0.7"],
    # ByteTrack's first-pass gate (IoU >= 0.2 at match_thresh 0.8) and a stricter cost cap
    "min_iou_0.2": ["tracker.min_iou=0.2"],
    "min_iou_0.3": ["tracker.min_iou=0.3"],
    "max_cost_0.6": ["tracker.max_cost=0.6"],
    "max_cost_0.7": ["tracker.max_cost=0.7"],
    "max_cost_0.5": ["tracker.max_cost=0.5"],
    # the keyframe mask: the detection's alone, or more of the propagated one
    "smoothing_1": ["propagation.smoothing=1.0"],
    "smoothing_0.5": ["propagation.smoothing=0.5"],
    # the two that beat the default on both folds in the first round, together
    "lost_8s+max_cost_0.6": ["tracker.max_lost_s=8", "tracker.max_cost=0.6"],
    # the motion model: stiffer or looser
    "kalman_stiff": ["tracker.position_noise=0.06", "tracker.velocity_noise=0.06"],
    "kalman_loose": ["tracker.position_noise=0.26", "tracker.velocity_noise=0.24"],
    # round 4: N=1 (the foreign detector's fold A): a person whose detections stay under
    # new_track_score never gets a track, and a passing track takes their detection
    "new_0.5": ["tracker.new_track_score=0.5"],
    "score_0.45": ["tracker.high_score=0.45", "tracker.new_track_score=0.45"],
    "score_0.45_new_0.5": ["tracker.high_score=0.45", "tracker.new_track_score=0.5"],
    # round 5: thresholds that hold for any detector: an object the detector is steadily
    # unsure of starts a track that is output only after a few matched keyframes in a row
    "weak_0.3_h3": ["tracker.weak_start_score=0.3", "tracker.weak_start_hits=3"],
    "weak_0.3_h2": ["tracker.weak_start_score=0.3", "tracker.weak_start_hits=2"],
    "weak_0.4_h3": ["tracker.weak_start_score=0.4", "tracker.weak_start_hits=3"],
    "weak_0.4_h2": ["tracker.weak_start_score=0.4", "tracker.weak_start_hits=2"],
    "weak_0.35_h3": ["tracker.weak_start_score=0.35", "tracker.weak_start_hits=3"],
    "weak_0.45_h3": ["tracker.weak_start_score=0.45", "tracker.weak_start_hits=3"],
    "weak_0.4_h4": ["tracker.weak_start_score=0.4", "tracker.weak_start_hits=4"],
    # the previous default (weak starts off)
    "weak_off": ["tracker.weak_start_score=1.0"],
    # round 6: a detector less sure than the reference (its 90th percentile score) is read
    # on the reference's scale
    "score_ref_off": ["tracker.score_reference=0"],
    "score_ref_0.75": ["tracker.score_reference=0.75"],
    "score_ref_0.8": ["tracker.score_reference=0.8"],
    "score_ref_0.85": ["tracker.score_reference=0.85"],
    "score_ref_0.9": ["tracker.score_reference=0.9"],
    "score_ref_0.95": ["tracker.score_reference=0.95"],
    # round 7: three small people crossing in a group (frames 155-167, fold A): the occluded
    # one's detection is dropped as a duplicate of the front one's, and its lost track is
    # re-identified onto the wrong person by appearance alone
    "dup_0.7": ["tracker.duplicate_iou=0.7"],
    "dup_off": ["tracker.duplicate_iou=1.0"],
    "reid_0.15": ["tracker.reid_max_distance=0.15"],
    "reach_3": ["tracker.max_speed=3"],
    # round 9: overlapping boxes dropped as duplicates, as before (the default keeps them to
    # continue tracks)
    "hold_off": ["tracker.hold_box_duplicates=false"],
    # offline boxes between keyframes: the carried mask's tight box, as before (the default
    # interpolates the two keyframes' boxes)
    "boxes_mask": ["propagation.boxes=mask"],
}
#: with --box-detector: the foreign detector's boxes without its masks (a detector of boxes)
BOX_CASES = [("foreign_boxes", 1), ("foreign_boxes", 5)]


def run_case(candidate: str, overrides: list[str], kind: str, interval: int, phase: int = 0):
    """One pipeline run over frames 0-399 -> (candidate, kind, interval, tracks), the
    keyframes after the first on frames ``phase``, ``phase + interval``, ..."""
    logging.getLogger().setLevel(logging.WARNING)
    work = RESULTS / "tmp"
    work.mkdir(parents=True, exist_ok=True)
    tracks, _ = pets09.run_ours(
        pets09.detections_path(kind, work), interval, overrides, phase=phase
    )
    return candidate, kind, interval, tracks


def mean_scores(runs: list[dict[str, dict]]) -> dict[str, dict]:
    """``fold_scores`` of several runs (one per keyframe phase) averaged per fold and key."""
    return {
        fold: {k: round(statistics.mean(r[fold][k] for r in runs), 3) for k in runs[0][fold]}
        for fold in runs[0]
    }


def run_synthetic(candidate: str, overrides: list[str], interval: int):
    """The synthetic set at keyframe interval ``interval`` -> (candidate, interval, HOTA)."""
    from bench.common import DATA, TMP, run_on_set, score

    logging.getLogger().setLevel(logging.WARNING)
    out = TMP / "tracker_cv" / f"{candidate}_N{interval}"
    run_on_set(DATA, out, ["detector.threads=1", f"keyframes.interval={interval}", *overrides])
    combined = score(DATA, {"t": out}, mask_ap=False)["trackers"]["t"]["combined"]
    return candidate, interval, {k: combined[k] for k in ("HOTA", "AssA", "IDSW")}


#: DAVIS 2016's sequences of one person (``bench.davis``, the ``people_cars`` model)
DAVIS_PEOPLE = ["lucia", "dance-twirl"]


def run_davis(candidate: str, overrides: list[str], interval: int):
    """DAVIS's people at interval ``interval`` -> (candidate, interval, {J, ids} mean/total)."""
    from bench import davis as davis_bench
    from bench.common import TMP
    from vis_eval import davis

    logging.getLogger().setLevel(logging.WARNING)
    sets = [f"detector.weights={davis_bench.MODEL}", *overrides]
    work = TMP / "tracker_cv_davis" / candidate
    rows = davis_bench.run_interval(davis.DATA, DAVIS_PEOPLE, interval, sets, work)
    return (
        candidate,
        interval,
        {
            "J": round(statistics.mean(r["J_track"] for r in rows), 4),
            "ids": sum(r["ids"] for r in rows),
        },
    )


STREET = "people N=3 (street demo)"


def davis_available() -> str | None:
    """None when DAVIS's people are at hand, else what is missing."""
    from vis_eval import davis

    return davis.available(davis.DATA, DAVIS_PEOPLE)


def run_street_case(candidate: str, overrides: list[str]):
    """The street demo with ``overrides`` -> (candidate, tracks)."""
    from bench.street import WORK, run_street
    from streams.sinks import jsonl_path

    logging.getLogger().setLevel(logging.WARNING)
    run_street("people", overrides, f"cv_{candidate}")
    return candidate, pets09.tracks_from_jsonl(jsonl_path(WORK / f"cv_{candidate}", "frames"))


def fold_scores(gt, tracks) -> dict[str, dict]:
    keys = ("HOTA", "DetA", "AssA", "IDSW", "IDF1")
    out = {}
    for fold, (a, b) in FOLDS.items():
        s = pets09.score_span(gt, {"t": tracks}, a, b)["t"]
        out[fold] = {k: s[k] for k in keys}
    s = pets09.score(gt, {"t": tracks})["t"]
    out[WHOLE] = {k: s[k] for k in keys}
    return out


#: the whole dev span scored as one sequence, reported beside the folds: an identity carried
#: across frame 200 counts there and in neither fold (not used to pick: it holds both folds)
WHOLE = "whole"


def case_name(kind: str, interval: int) -> str:
    return f"{kind} N={interval}"


def mean_hota(rows: dict[str, dict], name: str, fold: str, key: str = "HOTA") -> float:
    """Candidate ``name``'s HOTA on ``fold`` (its ``key`` in each case's fold scores), mean
    over its cases."""
    return statistics.mean(c[fold][key] for c in rows[name]["cases"].values())


def pick(names: list[str], hota: Callable[[str, str], float], base: str) -> dict:
    """Per fold F: the candidate of ``names`` tuning on F would pick (best ``hota`` there), its
    score there and on the other fold, and ``base``'s on the other fold (None when ``base`` is
    not among ``names``)."""
    out = {}
    for fold in FOLDS:
        other = next(f for f in FOLDS if f != fold)
        best = max(names, key=lambda n: hota(n, fold))
        out[fold] = {
            "candidate": best,
            "tuned_on": round(hota(best, fold), 2),
            "reported_on": other,
            "score": round(hota(best, other), 2),
            f"{base}_on_other": round(hota(base, other), 2) if base in names else None,
        }
    return out


def holds(value: float | None, base: float | None, slack: float) -> bool:
    """``value`` loses at most ``slack`` to ``base`` (a check not run holds)."""
    return value is None or base is None or value >= base - slack


def replaces(
    name: str,
    base: str,
    hota: Callable[[str, str], float],
    synthetic: Callable[[str], float | None],
    davis_j: Callable[[str], float | None],
) -> bool:
    """``name`` beats ``base`` on both folds (``hota``) and loses at most ``SYNTHETIC_SLACK``
    HOTA on the synthetic set and ``DAVIS_SLACK`` J on DAVIS's people (None: not run)."""
    return (
        all(hota(name, f) > hota(base, f) for f in FOLDS)
        and holds(synthetic(name), synthetic(base), SYNTHETIC_SLACK)
        and holds(davis_j(name), davis_j(base), DAVIS_SLACK)
    )


def judge(rows: dict[str, dict]) -> dict:
    """Per fold: the candidate tuning there would pick and its score on the other fold; and
    the candidates that beat the default on both folds."""

    def hota(name: str, fold: str) -> float:
        return mean_hota(rows, name, fold)

    def synthetic(name: str) -> float | None:
        syn = rows[name].get("synthetic")
        return statistics.mean(v["HOTA"] for v in syn.values()) if syn else None

    def davis_j(name: str) -> float | None:
        d = rows[name].get("davis")
        return statistics.mean(v["J"] for v in d.values()) if d else None

    out: dict = {"picked": pick(list(rows), hota, "default"), "beats_default_on_both": []}
    if "default" in rows:
        out["beats_default_on_both"] = [
            n for n in rows if n != "default" and replaces(n, "default", hota, synthetic, davis_j)
        ]
    for name in rows:
        rows[name]["mean_HOTA"] = {f: round(hota(name, f), 2) for f in FOLDS}
        if all(WHOLE in c for c in rows[name]["cases"].values()):
            rows[name]["mean_HOTA"][WHOLE] = round(hota(name, WHOLE), 2)
        syn = synthetic(name)
        rows[name]["synthetic_mean_HOTA"] = None if syn is None else round(syn, 2)
        dj = davis_j(name)
        rows[name]["davis_mean_J"] = None if dj is None else round(dj, 4)
    return out


#: a column of the candidates' table after the mean per fold: (header, markdown alignment,
#: the cell of a row)
Column = tuple[str, str, Callable[[dict], str]]


def candidate_table(
    rows: dict[str, dict],
    cases: list[str],
    cell: Callable[[dict], str],
    extra: list[Column],
    case_suffix: str = "",
) -> list[str]:
    """The candidates as markdown table lines: name, overrides, ``cell`` of each case's fold
    scores per case and fold, the mean HOTA per fold, then the ``extra`` columns."""
    head = [f"{c} {f}{case_suffix}" for c in cases for f in FOLDS]
    head += [f"mean {f}" for f in FOLDS]
    out = [
        "| " + " | ".join(["candidate", "overrides", *head, *(h for h, _, _ in extra)]) + " |",
        "|---|---|" + "---:|" * len(head) + "".join(f"{a}|" for _, a, _ in extra),
    ]
    for name, r in rows.items():
        cells = [
            name,
            " ".join(f"`{o}`" for o in r["overrides"]) or "-",
            *(cell(r["cases"][c][f]) for c in cases for f in FOLDS),
            *(f"{r['mean_HOTA'][f]:.2f}" for f in FOLDS),
            *(text(r) for _, _, text in extra),
        ]
        out.append("| " + " | ".join(cells) + " |")
    return out


def bold_names(names: list[str]) -> str:
    """``names`` in bold, comma-separated; ``none`` when there are none."""
    return ", ".join(f"**{n}**" for n in names) if names else "none"


def markdown(payload: dict) -> str:
    rows, verdict = payload["rows"], payload["judgement"]
    cases = payload["cases"]

    def syn_cell(r: dict) -> str:
        syn = r.get("synthetic") or {}
        return " / ".join(f"{syn[k]['HOTA']:.2f}" for k in sorted(syn)) or "-"

    def dv_cell(r: dict) -> str:
        dv = r.get("davis") or {}
        return " / ".join(f"{dv[k]['J']:.3f} ({dv[k]['ids']})" for k in sorted(dv)) or "-"

    extra: list[Column] = [
        ("whole span", "---:", lambda r: f"{r['mean_HOTA'].get(WHOLE, float('nan')):.2f}"),
        ("synthetic N=1 / N=5", "---", syn_cell),
        ("DAVIS people J (ids) N=1 / N=5", "---", dv_cell),
    ]
    out = [
        "# Tracker candidates on PETS09 split in time (A = frames 0-199, B = 200-399)\n",
        f"`{payload.get('command', COMMAND)}`; HOTA per case and fold (TrackEval boxes), "
        "mean over the cases per fold"
        + (
            "; the PETS cases at N > 1 are the mean over every keyframe phase (keyframes on "
            "frames p, p + N, ... for each p < N; the street demo at phase 0).\n"
            if payload.get("phases")
            else ".\n"
        ),
        *candidate_table(rows, cases, lambda s: f"{s['HOTA']:.2f}", extra),
        "",
    ]
    for fold, p in verdict["picked"].items():
        out.append(
            f"* Tuned on {fold}: **{p['candidate']}** (mean HOTA {p['tuned_on']} there); on "
            f"{p['reported_on']}, which it was not tuned on: **{p['score']}** (default "
            f"{p['default_on_other']})."
        )
    out.append(
        "* Whole span: the mean over the cases of HOTA on frames 0-399 scored as one sequence "
        "(identities carried across frame 200 count there); reported, not used to pick."
    )
    out.append(
        f"* Beat the default on both PETS folds without losing more than {SYNTHETIC_SLACK} "
        f"HOTA on the synthetic set or {DAVIS_SLACK} J on DAVIS's people: "
        + bold_names(verdict["beats_default_on_both"])
        + "."
    )
    return "\n".join(out) + "\n"


def candidates_ready(
    prog: str, only: str | None, candidates: dict[str, list[str]]
) -> list[str] | None:
    """Set up logging; the candidates ``only`` names (comma-separated; all of ``candidates``
    when None), or None, with a line on stderr naming the cause, when PETS09 is absent or a
    name is unknown."""
    setup_logging()
    missing = pets09.available()
    if missing:
        print(f"{prog}: {missing}", file=sys.stderr)
        return None
    names = only.split(",") if only else list(candidates)
    unknown = [n for n in names if n not in candidates]
    if unknown:
        print(f"{prog}: unknown candidate {unknown[0]!r}", file=sys.stderr)
        return None
    return names


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", default=None, help="comma-separated candidate names")
    ap.add_argument("--jobs", type=int, default=2, help="pipeline runs at once")
    ap.add_argument("--no-synthetic", action="store_true", help="PETS folds only")
    ap.add_argument("--no-street", action="store_true", help="without the street demo case")
    ap.add_argument("--no-davis", action="store_true", help="without DAVIS's people")
    ap.add_argument(
        "--box-detector",
        action="store_true",
        help="also the foreign detector's boxes without its masks, at N=1 and N=5",
    )
    ap.add_argument(
        "--phases",
        action="store_true",
        help="PETS cases at N > 1 scored as the mean over every keyframe phase (keyframes "
        "on frames p, p + N, ... for p < N) instead of phase 0 alone",
    )
    ap.add_argument("--name", default="tracker_cv", help="report name under bench/results")
    args = ap.parse_args(argv)
    names = candidates_ready("bench.tracker_cv", args.only, CANDIDATES)
    if names is None:
        return 2
    gt = pets09.load_gt()
    t0 = time.perf_counter()
    rows: dict[str, dict] = {n: {"overrides": CANDIDATES[n], "cases": {}} for n in names}
    cases = CASES + (BOX_CASES if args.box_detector else [])
    jobs = [
        (n, CANDIDATES[n], kind, interval, phase)
        for n in names
        for kind, interval in cases
        for phase in (range(interval) if args.phases else [0])
    ]
    if not args.no_synthetic:
        from bench.common import ensure_set

        ensure_set()
    with concurrent.futures.ProcessPoolExecutor(max_workers=args.jobs) as pool:
        street = []
        if not args.no_street:
            street = [pool.submit(run_street_case, n, CANDIDATES[n]) for n in names]
        synthetic = []
        if not args.no_synthetic:
            syn_jobs = [(n, CANDIDATES[n], interval) for n in names for interval in (1, 5)]
            synthetic = [pool.submit(run_synthetic, *job) for job in syn_jobs]
        davis_runs = []
        if not args.no_davis and davis_available() is None:
            davis_jobs = [(n, CANDIDATES[n], interval) for n in names for interval in (1, 5)]
            davis_runs = [pool.submit(run_davis, *job) for job in davis_jobs]
        by_phase: dict[tuple[str, str], list[dict]] = {}
        for name, kind, interval, tracks in pool.map(run_case, *zip(*jobs)):
            case = case_name(kind, interval)
            by_phase.setdefault((name, case), []).append(fold_scores(gt, tracks))
            rows[name]["cases"][case] = mean_scores(by_phase[(name, case)])
            print(name, case, len(by_phase[(name, case)]), by_phase[(name, case)][-1], flush=True)
        for future in street:
            name, tracks = future.result()
            rows[name]["cases"][STREET] = fold_scores(gt, tracks)
            print(name, STREET, rows[name]["cases"][STREET], flush=True)
        for future in synthetic:
            name, interval, result = future.result()
            rows[name].setdefault("synthetic", {})[f"N={interval}"] = result
            print(name, "synthetic", interval, result, flush=True)
        for future in davis_runs:
            name, interval, result = future.result()
            rows[name].setdefault("davis", {})[f"N={interval}"] = result
            print(name, "davis", interval, result, flush=True)
    payload = {
        "command": COMMAND + (" --phases" if args.phases else ""),
        "phases": args.phases,
        "folds": FOLDS,
        "cases": [case_name(k, n) for k, n in cases] + ([] if args.no_street else [STREET]),
        "rows": rows,
        "seconds": round(time.perf_counter() - t0),
    }
    payload["judgement"] = judge(rows)
    _, md = write_report(args.name, payload, markdown(payload))
    print(md.read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
