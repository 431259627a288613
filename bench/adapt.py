"""Adapting the people model to the street camera, measured on frames adaptation never saw.

    PYTHONPATH=. .venv/bin/python -m bench.adapt                  # both reviewers, 300 steps
    PYTHONPATH=. .venv/bin/python -m bench.adapt --steps 100 --only gt --name adapt_quick
    PYTHONPATH=. .venv/bin/python -m bench.adapt --swap --name adapt_swap  # the other fold

1. The generic model (``people``) runs ``configs/street.yaml`` at N=5 on PETS09 frames
   0-399 (``bench.street``'s frames and settings).
2. A reviewer's decisions about the tracks of frames 0-199 (decisions cover those frames
   only), two ways:
   * ``gt``: the ground truth stands in for the reviewer: a track is accepted if a ground-truth
     person covers it (box IoU >= 0.5, Hungarian per frame) on most of its frames in 0-199,
     and rejected otherwise;
   * ``self``: no ground truth: tracks whose keyframe scores average at least 0.8 over at
     least 10 frames are accepted, nothing is rejected, the rest stays undecided (blanked).
3. ``vis_train.adapt`` fine-tunes ``people`` on keyframes of frames 0-199 (the last 20 % held
   out for the card), replaying Penn-Fudan and COCO128 as the model was trained on them (their
   held-out images stay held out), at ``--precision``.
4. Each adapted model runs the same config on frames 0-399; **frames 200-399 are scored**
   (TrackEval boxes: HOTA, DetA, AssA, false-positive boxes, and those of static tracks: the
   sign, the cone, the tripod; a track is static if its box centre stays within 15 px of its
   median over the fold). The cards' held-out AP on Penn-Fudan and COCO128 persons says
   whether the model forgot what it knew. ``--swap`` exchanges the folds (adapted on
   200-399, scored on 0-199): a setting chosen on one fold is confirmed on the other.
5. ``--blends`` (default 1 and ``AdaptConfig.blend``): the same fine-tuning kept at each share
   (``vis_train.adapt.blend_model``: ``base + blend * (tuned - base)``), each scored as in 4;
   the row without a blend is the fine-tuning itself (blend 1).
6. Each adapted model's person AP on the held-out photos, against the generic model's, with
   the 95 % interval of the difference over ``--resamples`` paired bootstrap draws of those
   images (``intervals``: ``vis_train.evaluate.paired_interval``).

Frame ``scored[0] + 100`` (never trained on) of the generic run and of the ``gt``-adapted run
at the default blend, side by side as the overlay draws them, goes to
``docs/adapt_before_after.png`` (``--figure FRAME`` redraws it from the last runs).

Writes ``bench/results/<--name, default adapt>.{json,md}``; models and runs under
``bench/results/tmp/adapt``. Without the footage or the ground truth it says what is missing
and exits 0.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

from bench.common import RESULTS, ROOT, setup_logging, write_report
from bench.street import VIDEO, WORK, frames, missing_inputs, run_street
from streams.exports.records import RunRecords
from streams.review.corrections import Corrections, Decision, run_identity, save_corrections
from streams.sinks import jsonl_path
from vis_eval import pets09
from vis_eval.box_scoring import Tracks, frame_matches
from vis_train.adapt import AdaptConfig, adapt, blend_model, split_replay
from vis_train.data import read_coco, read_pennfudan

COMMAND = "PYTHONPATH=. .venv/bin/python -m bench.adapt"
TMP = RESULTS / "tmp" / "adapt"
SHARED = ROOT.parent / "shared" / "data"
#: adapted on frames 0-199, scored on 200-399; ``--swap``: the other way round
FOLDS = {False: ((0, 199), (200, 400)), True: ((200, 399), (0, 200))}
INTERVAL = ["keyframes.interval=5"]
STATIC_PX = 15.0


def gt_reviewer(
    run: RunRecords, tracks: Tracks, gt: Tracks, adapt_range: tuple[int, int]
) -> list[Decision]:
    """Accept a track covered by a ground-truth person on most of its frames in the adapt
    range, reject it otherwise (decisions over that range only)."""
    lo, hi = adapt_range
    covered: dict[int, int] = {}
    for f, pairs in frame_matches(gt, tracks).items():
        if lo <= f <= hi:
            for t in pairs.values():
                covered[t] = covered.get(t, 0) + 1
    out = []
    for tid, span in sorted(run.tracks.items()):
        a, b = max(span.first, lo), min(span.last, hi)
        if a > b:
            continue
        seen = sum(1 for f in range(a, b + 1) if any(t == tid for t, _ in tracks.get(f, [])))
        ok = covered.get(tid, 0) > 0.5 * max(seen, 1)
        out.append(Decision(tid, "accept" if ok else "reject", frames=(a, b)))
    return out


def self_reviewer(
    run: RunRecords, adapt_range: tuple[int, int], min_score: float = 0.8, min_frames: int = 10
) -> list[Decision]:
    """Accept confident tracks only (mean keyframe score, frames in the adapt range)."""
    lo, hi = adapt_range
    scores: dict[int, list[float]] = {}
    frames_in: dict[int, int] = {}
    for rec in run.records():
        f = int(rec["frame_index"])
        if not lo <= f <= hi:
            continue
        for inst in rec["instances"]:
            tid = inst.get("track_id")
            if tid is None:
                continue
            frames_in[tid] = frames_in.get(tid, 0) + 1
            if rec.get("keyframe"):
                scores.setdefault(tid, []).append(float(inst["score"]))
    out = []
    for tid, s in sorted(scores.items()):
        if frames_in[tid] >= min_frames and statistics.mean(s) >= min_score:
            span = run.tracks[tid]
            out.append(Decision(tid, "accept", frames=(max(span.first, lo), min(span.last, hi))))
    return out


def fold_row(tracks: Tracks, gt: Tracks, scored: tuple[int, int]) -> dict:
    """HOTA, DetA, AssA and false-positive boxes (all, static tracks') on the scored fold."""
    a, b = scored
    s = pets09.score_span(gt, {"t": tracks}, a, b)["t"]
    matches = frame_matches(gt, tracks)
    centres: dict[int, list[np.ndarray]] = {}
    for f in range(a, b):
        for tid, box in tracks.get(f, []):
            centres.setdefault(tid, []).append((box[:2] + box[2:]) / 2)
    static = {
        t
        for t, c in centres.items()
        if len(c) >= 10
        and float(np.max(np.linalg.norm(np.stack(c) - np.median(c, axis=0), axis=1))) < STATIC_PX
    }
    fp = fp_static = 0
    for f in range(a, b):
        hit = set(matches.get(f, {}).values())
        for tid, _ in tracks.get(f, []):
            if tid not in hit:
                fp += 1
                fp_static += tid in static
    return {
        **{k: round(float(s[k]), 2) for k in ("HOTA", "DetA", "AssA")},
        "FP_boxes": fp,
        "FP_static_boxes": fp_static,
        "static_tracks": len(static),
    }


def replay_data():
    """Penn-Fudan and COCO128, whole: ``adapt`` keeps the model's classes and splits them as
    the model was trained on them."""
    return read_pennfudan(SHARED / "PennFudanPed") + read_coco(
        SHARED / "coco128" / "annotations" / "instances_train2017.json",
        SHARED / "coco128" / "train2017",
    )


def markdown(payload: dict) -> str:
    rows = payload["rows"]
    (a0, a1), (s0, s1) = payload["adapt_range"], payload["scored"]
    out = [
        f"## The people model adapted to the street camera (PETS09, adapted on frames {a0}-{a1}, "
        f"scored on {s0}-{s1 - 1})\n",
        f"`{COMMAND}`; configs/street.yaml at N=5; {payload['steps']} steps at "
        f"{payload['precision']}, lr {payload['lr']}, replay share {payload['replay_share']}.\n",
        "| model | decisions (accept / reject) | HOTA | DetA | AssA | FP boxes | static FP boxes "
        "| Penn-Fudan mask AP | COCO128 person mask AP | adapt time |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, r in rows.items():
        f = r["scored"]
        ap = r.get("ap") or {}
        out.append(
            f"| {name} | {r.get('decisions', '-')} | {f['HOTA']:.2f} | {f['DetA']:.2f} | "
            f"{f['AssA']:.2f} | {f['FP_boxes']} | {f['FP_static_boxes']} | "
            f"{ap.get('pennfudan', '-')} | {ap.get('coco128', '-')} | "
            f"{r.get('adapt_seconds', '-')} |"
        )
    with_ci = {n: r["ap_interval"] for n, r in rows.items() if r.get("ap_interval")}
    if with_ci:
        sets = sorted({d for by in with_ci.values() for d in by})
        out += [
            "",
            f"Person mask AP on the held-out photos against the generic model: AP (difference, "
            f"[95 % interval of the difference over {payload['resamples']} paired bootstrap "
            "draws of the images]; `vis_train.evaluate.paired_interval`). An interval spanning "
            "0 is a difference these images cannot tell from none.\n",
            "| model | " + " | ".join(sets) + " |",
            "|---|" + "---:|" * len(sets),
        ]
        for name, by in with_ci.items():
            out.append(f"| {name} | " + " | ".join(ci_cell(by.get(d)) for d in sets) + " |")
    return "\n".join(out) + "\n"


def run_scored(model: Path, name: str, gt: Tracks, scored: tuple[int, int]) -> dict:
    """The street config with ``model`` (run ``WORK/<name>``), scored on the fold."""
    run_street(str(model), INTERVAL, name)
    tracks = pets09.tracks_from_jsonl(jsonl_path(WORK / name, frames(VIDEO).name))
    return fold_row(tracks, gt, scored)


def blended_row(
    who: str, blend: float, base: Path, out: Path, scored: tuple[int, int], gt: Tracks
) -> tuple[dict, Path]:
    """The same fine-tuning kept at ``blend`` (``vis_train.adapt.blend_model``): its scored
    fold, and the model file (its person AP comes with the intervals, in one scoring pass)."""
    tuned = out.with_name(out.stem + ".adapt") / "tuned.pt"
    path = TMP / f"people_{who}_blend{blend}.pt"
    blend_model(base, tuned, blend, path)
    return {"scored": run_scored(path, f"adapt_{who}_blend{blend}", gt, scored)}, path


def person_ap(by_dataset: dict) -> dict:
    """{dataset: person mask AP} of one model's ``held_out_ap`` entry (camera frames left out:
    their truth is the base model's own masks)."""
    out = {}
    for data, r in by_dataset.items():
        m = r["per_class"].get("person")
        if m and data != "camera":
            out[data] = m["mask_AP"]
    return out


BASE = ROOT / "models" / "people_maskrcnn.pt"
BASE_NAME = "people (shipped)"


def intervals(
    models: dict[str, Path], labels: list[str], held: list, resamples: int = 200
) -> dict[str, dict[str, dict]]:
    """{model name: {dataset: {mask_AP, diff, interval}}} of person mask AP against the
    shipped model on ``held`` (the replay sets' held-out images); the shipped model's own
    row has no difference, and no row has an interval when ``resamples`` is 0. An interval
    below 0 is a loss; one spanning 0 is a difference these images cannot tell from none."""
    from vis_train.adapt import held_out_ap
    from vis_train.evaluate import paired_interval

    scored = held_out_ap({BASE_NAME: BASE, **models}, labels, [], held, resamples=resamples)
    base = person_ap(scored[BASE_NAME])
    out: dict[str, dict[str, dict]] = {}
    for name, by_dataset in scored.items():
        out[name] = {}
        for data, ap in person_ap(by_dataset).items():
            row: dict = {"mask_AP": ap}
            if name != BASE_NAME:
                row["diff"] = round(ap - base[data], 2)
                if resamples:
                    row["interval"] = paired_interval(
                        scored[BASE_NAME][data]["resampled"]["person"],
                        by_dataset[data]["resampled"]["person"],
                    )
            out[name][data] = row
    return out


def ci_cell(row: dict | None) -> str:
    """One model's AP on one photo set: AP (difference, [95 % interval])."""
    if not row:
        return "-"
    if "interval" not in row:
        return f"{row['mask_AP']:.2f}" + (f" ({row['diff']:+.2f})" if "diff" in row else "")
    lo, hi = row["interval"]
    return f"{row['mask_AP']:.2f} ({row['diff']:+.2f}, [{lo:+.2f}, {hi:+.2f}])"


FIGURE = ROOT / "docs" / "adapt_before_after.png"


def figure(frame: int = 300, run: str = f"adapt_gt_blend{AdaptConfig.blend}") -> Path:
    """Frame ``frame`` (of the scored fold) of the generic run beside the adapted one's
    (``run``: the default blend's, from the ``gt`` reviewer), as the overlay draws them:
    ``docs/adapt_before_after.png``."""
    import cv2

    from streams.sinks.overlay import render_overlay
    from vis.schema import decode_record

    src = frames(VIDEO)
    image = cv2.imread(str(sorted(src.glob("*.png"))[frame]))
    panels = []
    for name, title in (("adapt_generic", "people (generic)"), (run, "adapted")):
        with open(jsonl_path(WORK / name, src.name), encoding="utf-8") as fh:
            rec = next(r for r in fh if f'"frame_index":{frame},' in r.replace(" ", ""))
        panel = render_overlay(image, decode_record(rec))
        cv2.rectangle(panel, (0, panel.shape[0] - 26), (panel.shape[1], panel.shape[0]), 0, -1)
        cv2.putText(panel, title, (8, panel.shape[0] - 8), cv2.FONT_HERSHEY_SIMPLEX, 0.6,
                    (255, 255, 255), 1, cv2.LINE_AA)  # fmt: skip
        panels.append(panel)
    cv2.imwrite(str(FIGURE), np.hstack(panels), [cv2.IMWRITE_PNG_COMPRESSION, 9])
    return FIGURE


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--frames", type=int, default=120)
    ap.add_argument("--precision", choices=("f32", "bf16"), default="f32")
    ap.add_argument("--lr", type=float, default=AdaptConfig.lr)
    ap.add_argument("--threads", type=int, default=2, help="torch threads while training")
    ap.add_argument("--freeze-blocks", type=int, default=AdaptConfig.freeze_blocks)
    ap.add_argument(
        "--swap", action="store_true", help="adapt on frames 200-399, score 0-199 (other fold)"
    )
    ap.add_argument("--replay-share", type=float, default=AdaptConfig.replay_share)
    ap.add_argument(
        "--blends",
        default=f"1,{AdaptConfig.blend}",
        help="comma-separated shares of the fine-tuning kept (AdaptConfig.blend); each is scored "
        "from the same fine-tuning",
    )
    ap.add_argument("--only", default="gt,self", help="reviewers: gt, self")
    ap.add_argument("--name", default="adapt")
    ap.add_argument(
        "--resamples",
        type=int,
        default=200,
        help="paired bootstrap draws for the photo sets' AP intervals (0: none)",
    )
    ap.add_argument(
        "--figure",
        type=int,
        default=None,
        metavar="FRAME",
        help="only redraw docs/adapt_before_after.png at FRAME (of the last run's scored fold)",
    )
    ap.add_argument(
        "--no-figure", action="store_true", help="leave docs/adapt_before_after.png as it is"
    )
    args = ap.parse_args(argv)
    if args.figure is not None:
        print(figure(args.figure))
        return 0
    setup_logging()
    missing = missing_inputs()
    if missing:
        print(f"bench.adapt skipped: missing {', '.join(map(str, missing))}", file=sys.stderr)
        return 0
    TMP.mkdir(parents=True, exist_ok=True)
    gt = pets09.load_gt()
    src = frames(VIDEO)
    run_street("people", INTERVAL, "adapt_generic")
    generic_jsonl = jsonl_path(WORK / "adapt_generic", src.name)
    generic = pets09.tracks_from_jsonl(generic_jsonl)
    run = RunRecords.open(generic_jsonl)
    base = BASE
    replay = replay_data()
    blends = [float(b) for b in args.blends.split(",")]
    adapt_range, scored = FOLDS[args.swap]
    rows: dict[str, dict] = {"people (generic)": {"scored": fold_row(generic, gt, scored)}}
    models: dict[str, Path] = {}  # row -> model file, for the AP intervals
    for who in args.only.split(","):
        decisions = (
            gt_reviewer(run, generic, gt, adapt_range)
            if who == "gt"
            else self_reviewer(run, adapt_range)
        )
        corr = Corrections(run_identity(run), decisions, reviewer=f"bench.adapt ({who})")
        save_corrections(corr, TMP / f"{who}.corrections.json")
        out = TMP / f"people_{who}.pt"
        cfg = AdaptConfig(
            out=out,
            model=base,
            steps=args.steps,
            frames=args.frames,
            frame_range=adapt_range,
            precision=args.precision,
            lr=args.lr,
            replay_share=args.replay_share,
            freeze_blocks=args.freeze_blocks,
            blend=1.0,  # the fine-tuning itself; each of --blends is made from it after
        )
        torch.set_num_threads(args.threads)  # the pipeline runs set one detector thread
        t0 = time.time()
        card = adapt(cfg, run, src, corr, replay=replay)
        seconds = round(time.time() - t0)
        n_acc = sum(d.decision == "accept" for d in decisions)
        ap = card.get("held_out_ap") or {}
        rows[f"adapted ({who} reviewer)"] = {
            "decisions": f"{n_acc} / {len(decisions) - n_acc}",
            "scored": run_scored(out, f"adapt_{who}", gt, scored),
            "ap": person_ap(ap.get("adapted", {})),
            "adapt_seconds": seconds,
            "card": card,
        }
        models[f"adapted ({who} reviewer)"] = out
        rows["people (generic)"]["ap"] = person_ap(ap.get("base", {}))
        held = split_replay(replay, card["labels"], AdaptConfig.replay_holdout)[1]
        for blend in blends:
            if blend == 1.0:
                continue
            name = f"adapted ({who} reviewer), blend {blend}"
            rows[name], models[name] = blended_row(who, blend, base, out, scored, gt)
    if models:
        # the blends' person AP, and whether a loss on the photo sets is a loss or the draw
        # of their few dozen held-out images (with --resamples)
        for name, by_dataset in intervals(models, card["labels"], held, args.resamples).items():
            if name not in rows:
                continue
            rows[name].setdefault("ap", {d: r["mask_AP"] for d, r in by_dataset.items()})
            if args.resamples:
                rows[name]["ap_interval"] = by_dataset
    payload = {
        "command": COMMAND,
        "steps": args.steps,
        "precision": args.precision,
        "lr": args.lr,
        "replay_share": args.replay_share,
        "freeze_blocks": args.freeze_blocks,
        "blends": blends,
        "resamples": args.resamples,
        "adapt_range": adapt_range,
        "scored": scored,
        "rows": rows,
    }
    _, md = write_report(args.name, payload, markdown(payload))
    if "gt" in args.only.split(",") and AdaptConfig.blend in blends and not args.no_figure:
        figure(frame=scored[0] + 100)
    print(md.read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
