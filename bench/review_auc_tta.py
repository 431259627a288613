"""Does test-time augmentation's ``uncertainty`` rank the wrong instances first better than
today's quality signal? ROC AUC on held-out photos and on the street footage.

    OMP_NUM_THREADS=1 PYTHONPATH=. .venv/bin/python -m bench.review_auc_tta
    OMP_NUM_THREADS=1 PYTHONPATH=. .venv/bin/python -m bench.review_auc_tta --skip-photos

Photos (``../shared/data``, never copied): the 60 held-out photos of ``tools/train.py``'s
split (seed 0; 34 Penn-Fudan, 26 COCO128; the shipped ``people`` model never trained on
them), run through the ``people`` model (default engine, f32, one thread, score cut 0.05)
with each TTA setting (``TTA``) and without. Every predicted person scoring at least
``REVIEW_SCORE`` is **wrong** when its mask overlaps no true person by IoU 0.5. Each photo is
a one-frame track, so its ``review_score`` is what ``vis.quality`` gives such an instance
(score, mask confidence, and the track terms of a one-frame track).

Street: the JSONL of ``bench.annotate_preset``'s runs (PETS 2009 S2.L1, ``people`` model,
offline, N=5; the preset's levers and the defaults), every output instance **wrong** when
its box overlaps no ground-truth box of its frame by IoU 0.5. Keyframe instances of the TTA
run carry their own ``uncertainty``; a propagated instance the one of its track's last
keyframe (``carried``).

The signals compared on the same instances: today's ``review_score`` (without the
uncertainty), ``uncertainty`` alone, and ``review_score`` with the uncertainty as one more
weighted doubt term (weight ``w`` beside the others, which sum to 1), per instance and per
track (``track_review_score``: the mean of its instances'; ``+max``: the track's largest
keyframe uncertainty blended in). AUC = P(a wrong instance's signal > a right one's), ties
half; 0.5 = chance. Writes ``bench/results/review_auc_tta.{json,md}``.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as _dt
import json
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np
from pycocotools import mask as mask_utils
from tqdm import tqdm

from bench.annotate_levers import of_sample
from bench.annotate_preset import WORK as PRESET_WORK
from bench.common import RESULTS, commit_label, cpu_model, setup_logging, write_report
from bench.engines import held_out_samples, rle_predictions
from bench.review_auc import roc_auc
from streams.exports.records import RunRecords
from streams.review.scoring import score_run, scored_frames
from vis.detection.config import TtaConfig
from vis.detection.factory import DetectorConfig, build_detector
from vis.quality import WEIGHTS, Signals, TrackQuality, doubts, review_score
from vis.types import mask_confidence
from vis_eval import pets09

COMMAND = "OMP_NUM_THREADS=1 PYTHONPATH=. .venv/bin/python -m bench.review_auc_tta"
PERSON = 1  # the people model's person class
REVIEW_SCORE = 0.3
TTA = {
    "flip": TtaConfig(flip=True, scales=(1.0,)),
    "flip + scales 1, 1.25": TtaConfig(flip=True, scales=(1.0, 1.25)),
}
#: weights of the uncertainty term tried beside the others (which sum to 1)
TERM_WEIGHTS = (0.1, 0.25, 0.5, 1.0, 2.0)
#: weights of a track's largest keyframe uncertainty blended into its mean review score
TRACK_BLENDS = (0.25, 0.5)


def with_term(terms: dict[str, float], u: float | None, w: float) -> float:
    """The weighted mean of ``terms`` (``WEIGHTS``) with ``u`` as one more term of weight
    ``w`` (``u`` None: today's review score)."""
    num = sum(WEIGHTS[k] * v for k, v in terms.items() if k in WEIGHTS)
    den = sum(WEIGHTS[k] for k in terms if k in WEIGHTS)
    if u is not None:
        num, den = num + w * u, den + w
    return num / den


def _today(terms: dict[str, float]) -> dict[str, float]:
    return {k: v for k, v in terms.items() if k != "uncertainty"}


def photo_rows(det, photo) -> list[dict]:
    """One row per predicted person scoring at least REVIEW_SCORE: wrong?, its terms and
    uncertainty (None without TTA)."""
    (d,) = det.detect([photo.bgr])
    rows = []
    one = TrackQuality(frames=1, class_id=PERSON, class_margin=1.0, switch_frames=())
    for k, (rle, cls, score) in enumerate(rle_predictions(d)):
        if cls != PERSON or score < REVIEW_SCORE:
            continue
        best = float(mask_utils.iou([rle], photo.people, photo.crowd).max()) if photo.people else 0
        s = Signals(score, None, None, None, 0, mask_confidence(d.masks[k]))
        u = None if d.uncertainty is None else float(d.uncertainty[k])
        rows.append(
            {
                "wrong": best < 0.5,
                "terms": _today(doubts(s, one, False)),
                "review_score": review_score(s, one, False),
                "u": u,
            }
        )
    return rows


def photos_part() -> dict:
    _, held = held_out_samples()
    photos = [of_sample(s) for s in held]
    base = DetectorConfig(weights="people", threads=1, score_threshold=0.05)
    dets = {"no TTA": build_detector(base)} | {
        name: build_detector(dataclasses.replace(base, tta=t)) for name, t in TTA.items()
    }
    rows: dict[str, list[dict]] = {name: [] for name in dets}
    for photo in tqdm(photos, desc="photos", unit="img"):
        for name, det in dets.items():
            rows[name] += photo_rows(det, photo)
    out = {}
    for name, r in rows.items():
        wrong = np.array([x["wrong"] for x in r])
        auc = {"review_score (today)": roc_auc(np.array([x["review_score"] for x in r]), wrong)}
        if name != "no TTA":
            auc["uncertainty alone"] = roc_auc(np.array([x["u"] for x in r]), wrong)
            for w in TERM_WEIGHTS:
                auc[f"review_score + uncertainty term w={w}"] = roc_auc(
                    np.array([with_term(x["terms"], x["u"], w) for x in r]), wrong
                )
        out[name] = {
            "instances": len(r),
            "wrong": int(wrong.sum()),
            "auc": {k: round(v, 3) for k, v in auc.items()},
        }
    return out


def _box_iou(a: np.ndarray, boxes: list[np.ndarray]) -> float:
    if not boxes:
        return 0.0
    b = np.stack(boxes)
    x1, y1 = np.maximum(a[0], b[:, 0]), np.maximum(a[1], b[:, 1])
    x2, y2 = np.minimum(a[2], b[:, 2]), np.minimum(a[3], b[:, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1]) - inter
    return float((inter / np.maximum(union, 1e-9)).max())


def street_rows(jsonl: Path, start: int = 0) -> list[dict]:
    """One row per output instance of a street run (see the module doc) whose frame 0 is
    footage frame ``start``."""
    gt = pets09.load_gt()
    run = RunRecords.open(jsonl)
    quality = score_run(run)
    last_u: dict[int, float] = {}
    rows = []
    for rec, _, qs in scored_frames(run, quality):
        boxes = [b for _, b in gt.get(rec["frame_index"] + start, [])]
        for inst, q in zip(rec["instances"], qs):
            t = quality.tracks[q.track_id]
            s = Signals(
                q.score, q.mask_iou_prev, q.shape_iou_prev, q.keyframe_iou_next,
                q.propagation_age, q.mask_confidence, q.agreement,
            )  # fmt: skip
            own = inst.get("uncertainty")
            if own is not None:
                last_u[q.track_id] = own
            terms = _today(doubts(s, t, q.id_switch_suspect))
            rows.append(
                {
                    "wrong": _box_iou(np.array(inst["bbox"], float), boxes) < 0.5,
                    "track": q.track_id,
                    "terms": terms,
                    "review_score": with_term(terms, None, 0.0),
                    "shipped": q.review_score,
                    "shipped_track": t.review_score,
                    "u": own,
                    "u_carried": last_u.get(q.track_id),
                }
            )
    return rows


def street_auc(rows: list[dict]) -> dict:
    wrong = np.array([x["wrong"] for x in rows])
    by_track: dict[int, list[dict]] = defaultdict(list)
    for x in rows:
        by_track[x["track"]].append(x)

    def track_mean(key) -> dict[int, float]:
        return {t: float(np.mean([key(x) for x in xs])) for t, xs in by_track.items()}

    max_u = {
        t: max((x["u"] for x in xs if x["u"] is not None), default=None)
        for t, xs in by_track.items()
    }
    auc = {
        "review_score (today)": roc_auc(np.array([x["review_score"] for x in rows]), wrong),
        "shipped review_score": roc_auc(np.array([x["shipped"] for x in rows]), wrong),
    }
    if any(x["u"] is not None for x in rows):
        has = np.array([x["u"] is not None for x in rows])
        auc["keyframes only: review_score (today)"] = roc_auc(
            np.array([x["review_score"] for x in rows])[has], wrong[has]
        )
        auc["keyframes only: uncertainty alone"] = roc_auc(
            np.array([x["u"] for x in rows if x["u"] is not None]), wrong[has]
        )
        for w in TERM_WEIGHTS:
            auc[f"keyframes only: + uncertainty term w={w}"] = roc_auc(
                np.array([with_term(x["terms"], x["u"], w) for x in rows])[has], wrong[has]
            )
        carried = np.array([-1.0 if x["u_carried"] is None else x["u_carried"] for x in rows])
        auc["uncertainty alone (carried; -1 where never measured)"] = roc_auc(carried, wrong)
        for w in TERM_WEIGHTS:
            auc[f"+ uncertainty term w={w} (keyframes)"] = roc_auc(
                np.array([with_term(x["terms"], x["u"], w) for x in rows]), wrong
            )
            auc[f"+ uncertainty term w={w} (carried)"] = roc_auc(
                np.array([with_term(x["terms"], x["u_carried"], w) for x in rows]), wrong
            )
    today_track = track_mean(lambda x: x["review_score"])
    auc["track_review_score (today)"] = roc_auc(
        np.array([today_track[x["track"]] for x in rows]), wrong
    )
    auc["shipped track_review_score"] = roc_auc(np.array([x["shipped_track"] for x in rows]), wrong)
    if any(x["u"] is not None for x in rows):
        for w in TERM_WEIGHTS:
            for mode, key in (("keyframes", "u"), ("carried", "u_carried")):
                tm = track_mean(lambda x, key=key, w=w: with_term(x["terms"], x[key], w))
                auc[f"track: mean of + term w={w} ({mode})"] = roc_auc(
                    np.array([tm[x["track"]] for x in rows]), wrong
                )
        for a in TRACK_BLENDS:
            blended = {
                t: today_track[t] if max_u[t] is None else (1 - a) * today_track[t] + a * max_u[t]
                for t in by_track
            }
            auc[f"track: today + max uncertainty blend {a}"] = roc_auc(
                np.array([blended[x["track"]] for x in rows]), wrong
            )
    return {
        "instances": len(rows),
        "wrong": int(wrong.sum()),
        "keyframe_instances_with_uncertainty": sum(x["u"] is not None for x in rows),
        "auc": {k: round(v, 3) for k, v in auc.items()},
    }


def _table(title: str, part: dict) -> list[str]:
    names = list(part)
    keys = list(dict.fromkeys(k for n in names for k in part[n]["auc"]))
    head = " | ".join(
        f"{n} ({part[n]['instances']} inst., {part[n]['wrong']} wrong)" for n in names
    )
    out = [title, "", f"| signal | {head} |", "|---" * (len(names) + 1) + "|"]
    for k in keys:
        out.append(f"| {k} | " + " | ".join(str(part[n]["auc"].get(k, "")) for n in names) + " |")
    return [*out, ""]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--skip-photos", action="store_true")
    ap.add_argument(
        "--reuse-photos",
        action="store_true",
        help="take the photos' AUC from the last bench/results/review_auc_tta.json",
    )
    ap.add_argument(
        "--street", type=Path, default=PRESET_WORK, help="bench.annotate_preset's output folder"
    )
    args = ap.parse_args(argv)
    setup_logging()
    payload: dict = {
        "command": COMMAND,
        "date": _dt.date.today().isoformat(),
        "cpu": cpu_model(),
        "commit": commit_label(),
        "review_min_score_photos": REVIEW_SCORE,
    }
    md = [
        f"ROC AUC of review signals for wrong instances (1 = every wrong one first, 0.5 = "
        f"chance); `{COMMAND}`; {payload['cpu']}, {payload['date']}, {payload['commit']}.",
        "",
    ]
    if args.reuse_photos:
        payload["photos"] = json.loads((RESULTS / "review_auc_tta.json").read_text())["photos"]
    elif not args.skip_photos:
        payload["photos"] = photos_part()
    if "photos" in payload:
        md += _table(
            "Held-out photos (60: 34 Penn-Fudan, 26 COCO128), `people` model, persons scoring "
            f">= {REVIEW_SCORE}; wrong = mask IoU < 0.5 with every true person:",
            payload["photos"],
        )
    street = {}
    for folder in sorted(args.street.glob("street_*_*-*")):
        name, span = folder.name.split("_", 2)[1:]
        files = sorted(folder.glob("*.jsonl"))
        files = [f for f in files if not f.name.endswith((".events.jsonl", ".quality.jsonl"))]
        if files:
            start = int(span.split("-")[0])
            street[f"{name}, frames {span}"] = street_auc(street_rows(files[0], start))
    if street:
        payload["street"] = street
        md += _table(
            "Street (PETS 2009 S2.L1, `bench.annotate_preset`'s runs: `people` model, offline, "
            "N=5); wrong = box IoU < 0.5 with every true box of the frame:",
            street,
        )
    _, m = write_report("review_auc_tta", payload, "\n".join(md) + "\n")
    print(m.read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
