"""The annotation quality levers alone: Soft-NMS and test-time augmentation, priced in mask AP
and detector time, and TTA's uncertainty as a review signal.

    OMP_NUM_THREADS=1 PYTHONPATH=. .venv/bin/python -m bench.annotate_levers

Data (``../shared/data``, never copied): the 60 held-out photos of ``tools/train.py``'s split
(seed 0; 34 Penn-Fudan, 26 COCO128; the shipped ``people`` model never trained on them). Their
**crowded** subset (two people's true boxes overlapping by IoU > 0.3, where Soft-NMS should
matter) holds one photo only, so a crowded set is made from them: on each held-out Penn-Fudan
photo, a pedestrian of another held-out Penn-Fudan photo (its real pixels inside its real
mask, scaled to 85-100 % of the photo's tallest pedestrian's height) is pasted in front of
that pedestrian, shifted sideways so that the box of the visible part of the one behind
overlaps the pasted one's by IoU 0.3-0.6 (seeded); true masks: the pasted one whole, everyone
else minus it. Each setting runs the shipped ``people`` model (default engine,
f32, one thread, score cut 0.05 as ``bench.precision``) with one lever changed; the settings
take turns on every photo, so machine load falls on all alike. Mask AP of the person class
per dataset (COCOeval), with the 95 % paired-bootstrap interval of each setting's difference
to the shipped setting (200 draws of the photos). Cost: the median detector ms per photo.

Uncertainty: on the TTA settings, every predicted person scoring at least ``REVIEW_SCORE``
is *wrong* when its mask overlaps no true person by IoU 0.5; the AUC says how well a signal
ranks the wrong ones first (1 = all wrong ones before every right one, 0.5 = chance):
``uncertainty`` against today's per-instance signals, ``1 - score`` and ``1 -
mask_confidence``. Writes ``bench/results/annotate_levers.{json,md}``.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import statistics
import subprocess
import sys
import time

import cv2
import numpy as np
from pycocotools import mask as mask_utils
from tqdm import tqdm

from bench.common import ROOT, setup_logging, write_report
from bench.engines import held_out_samples, rle_predictions
from vis.detection.config import TtaConfig
from vis.detection.factory import DetectorConfig, build_detector
from vis.types import mask_confidence
from vis_eval.coco_ap import coco_mask_ap_rle
from vis_train.evaluate import evaluate_predictions, paired_interval

COMMAND = "OMP_NUM_THREADS=1 PYTHONPATH=. .venv/bin/python -m bench.annotate_levers"
LABELS = ["person", "car"]  # the people model's classes, in order
PERSON = 1
CROWD_IOU = 0.3
REVIEW_SCORE = 0.3
DRAWS = 200
SEED = 0
BASE = "hard NMS (shipped)"
SETTINGS = [
    (BASE, {}),
    ("Soft-NMS sigma 0.5", {"nms": "soft", "soft_nms_sigma": 0.5}),
    ("Soft-NMS sigma 0.25", {"nms": "soft", "soft_nms_sigma": 0.25}),
    ("TTA flip", {"tta": TtaConfig(flip=True, scales=(1.0,))}),
    ("TTA scales 1, 1.25", {"tta": TtaConfig(flip=False, scales=(1.0, 1.25))}),
    ("TTA scales 0.75, 1, 1.25", {"tta": TtaConfig(flip=False, scales=(0.75, 1.0, 1.25))}),
    ("TTA flip + scales 1, 1.25", {"tta": TtaConfig(flip=True, scales=(1.0, 1.25))}),
]


@dataclasses.dataclass
class Photo:
    """One photo to run: (H, W, 3) uint8 BGR and its true people (COCO RLEs, crowd flags)."""

    bgr: np.ndarray
    people: list[dict]
    crowd: list[int]


def of_sample(sample) -> Photo:
    people = [i for i in sample.instances if i.label == "person"]
    return Photo(
        cv2.imread(str(sample.path)), [i.rle for i in people], [int(i.iscrowd) for i in people]
    )


def crowded(sample) -> bool:
    """Whether two of the photo's true people have boxes overlapping by IoU > CROWD_IOU."""
    people = [i.rle for i in sample.instances if i.label == "person" and not i.iscrowd]
    if len(people) < 2:
        return False
    boxes = mask_utils.toBbox(people)
    iou = mask_utils.iou(list(boxes), list(boxes), [0] * len(people))
    np.fill_diagonal(iou, 0.0)
    return bool((iou > CROWD_IOU).any())


def _people(sample) -> np.ndarray:
    rles = [i.rle for i in sample.instances if i.label == "person" and not i.iscrowd]
    return mask_utils.decode(rles).transpose(2, 0, 1).astype(bool)


def _box(mask: np.ndarray) -> np.ndarray:
    ys, xs = np.nonzero(mask)
    return np.array([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], float)


def _box_iou(a: np.ndarray, b: np.ndarray) -> float:
    return float(
        mask_utils.iou(
            [list(a[:2]) + list(a[2:] - a[:2])], [list(b[:2]) + list(b[2:] - b[:2])], [0]
        )[0, 0]
    )


def occluded_set(samples, seed: int = SEED) -> list[Photo]:
    """The crowded set (see the module doc): one photo per held-out Penn-Fudan photo where a
    place for the pasted pedestrian exists."""
    rng = np.random.default_rng(seed)
    pf = [s for s in samples if s.dataset == "pennfudan"]
    out = []
    for k, sample in enumerate(pf):
        donor = pf[(k + 1) % len(pf)]
        bgr, dbgr = cv2.imread(str(sample.path)), cv2.imread(str(donor.path))
        masks, dmasks = _people(sample), _people(donor)
        target = masks[int(np.argmax([m.any(1).sum() for m in masks]))]
        dm = dmasks[int(np.argmax([m.any(1).sum() for m in dmasks]))]
        tx0, ty0, tx1, ty1 = (int(v) for v in _box(target))
        dx0, dy0, dx1, dy1 = (int(v) for v in _box(dm))
        scale = rng.uniform(0.85, 1.0) * (ty1 - ty0) / (dy1 - dy0)
        w, h = max(round((dx1 - dx0) * scale), 1), max(round((dy1 - dy0) * scale), 1)
        pixels = cv2.resize(dbgr[dy0:dy1, dx0:dx1], (w, h), interpolation=cv2.INTER_AREA)
        cut = cv2.resize(dm[dy0:dy1, dx0:dx1].astype(np.uint8), (w, h), cv2.INTER_NEAREST) > 0
        y = min(max(ty1 - h, 0), bgr.shape[0] - h)
        places = []
        for x in range(0, bgr.shape[1] - w + 1, 4):
            pasted = np.zeros(target.shape, bool)
            pasted[y : y + h, x : x + w] = cut
            visible = target & ~pasted
            if visible.sum() < 0.3 * target.sum():
                continue
            iou = _box_iou(_box(visible), _box(pasted))
            if 0.3 <= iou <= 0.6:
                places.append((x, pasted))
        if not places:
            continue
        x, pasted = places[int(rng.integers(len(places)))]
        img = bgr.copy()
        img[y : y + h, x : x + w][cut] = pixels[cut]
        truth = [pasted] + [m & ~pasted for m in masks if (m & ~pasted).sum() >= 100]
        out.append(
            Photo(
                img,
                [mask_utils.encode(np.asfortranarray(m.astype(np.uint8))) for m in truth],
                [0] * len(truth),
            )
        )
    return out


def auc(signal: list[float], wrong: list[bool]) -> float | None:
    """P(a wrong instance's signal > a right one's), ties half (None without both kinds)."""
    s, w = np.asarray(signal, float), np.asarray(wrong, bool)
    if w.all() or not w.any():
        return None
    pos, neg = s[w], s[~w]
    greater = (pos[:, None] > neg[None, :]).sum() + 0.5 * (pos[:, None] == neg[None, :]).sum()
    return round(float(greater / (len(pos) * len(neg))), 3)


def review_rows(d, photo: Photo) -> list[tuple[bool, float, float, float]]:
    """(wrong, uncertainty, 1 - score, 1 - mask_confidence) of each predicted person scoring
    at least REVIEW_SCORE."""
    rows = []
    for k, (rle, cls, score) in enumerate(rle_predictions(d)):
        if cls != PERSON or score < REVIEW_SCORE:
            continue
        best = float(mask_utils.iou([rle], photo.people, photo.crowd).max()) if photo.people else 0
        rows.append(
            (best < 0.5, float(d.uncertainty[k]), 1.0 - score, 1.0 - mask_confidence(d.masks[k]))
        )
    return rows


def run(photos: list[Photo]) -> tuple[dict, dict, dict]:
    """Per setting: predictions per photo, detector ms per photo, review rows."""
    base = DetectorConfig(weights="people", threads=1, score_threshold=0.05)
    dets = {name: build_detector(dataclasses.replace(base, **ch)) for name, ch in SETTINGS}
    for det in dets.values():
        det.detect([photos[0].bgr])  # export / compile outside the timing
    preds = {name: [] for name in dets}
    times = {name: [] for name in dets}
    review = {name: [] for name in dets}
    for photo in tqdm(photos, desc="photos", unit="img"):
        for name, det in dets.items():
            t0 = time.perf_counter()
            (d,) = det.detect([photo.bgr])
            times[name].append((time.perf_counter() - t0) * 1000)
            preds[name].append(rle_predictions(d))
            if d.uncertainty is not None:
                review[name].extend(review_rows(d, photo))
    return preds, times, review


def score(preds: dict, samples, subset: str | None = None) -> dict:
    """Person mask AP per dataset (or of ``subset``: all photos as one set) and its bootstrap
    draws, per setting."""
    if subset is not None:
        samples = [dataclasses.replace(s, dataset=subset) for s in samples]
    out = {}
    for name, per_photo in preds.items():
        replay = iter(per_photo)
        res = evaluate_predictions(
            lambda _img, r=replay: next(r), samples, LABELS, progress=False, resamples=DRAWS
        )
        out[name] = {
            ds: {
                "photos": r["images"],
                "people": r["instances"]["person"],
                "mask_AP": (r["per_class"]["person"] or {}).get("mask_AP"),
                "draws": r.get("resampled", {}).get("person", []),
            }
            for ds, r in res.items()
        }
    return out


def score_photos(preds: dict, photos: list[Photo], subset: str) -> dict:
    """Person mask AP of ``photos`` (no crowd regions) and its bootstrap draws, per setting."""
    gts = [[(rle, PERSON) for rle in p.people] for p in photos]
    rng = np.random.default_rng(len(photos))
    draws = [rng.integers(0, len(photos), len(photos)) for _ in range(DRAWS)]
    names = {PERSON: "person"}
    out = {}
    for name, per_photo in preds.items():
        people = [[p for p in ps if p[1] == PERSON] for ps in per_photo]
        out[name] = {
            subset: {
                "photos": len(photos),
                "people": sum(len(g) for g in gts),
                "mask_AP": coco_mask_ap_rle(gts, people, class_names=names)["mask_AP"],
                "draws": [
                    coco_mask_ap_rle([gts[i] for i in d], [people[i] for i in d], class_names=names)
                    for d in draws
                ],
            }
        }
    return out


def table(scores: dict, datasets: list[str], times: dict | None) -> list[dict]:
    rows = []
    for name, _ in SETTINGS:
        row = {"setting": name}
        for ds in datasets:
            got = scores[name][ds]
            row[ds] = got["mask_AP"]
            if name != BASE and got["draws"]:
                row[f"{ds} diff 95%"] = paired_interval(scores[BASE][ds]["draws"], got["draws"])
        if times is not None:
            row["ms_per_photo"] = round(statistics.median(times[name]), 1)
        rows.append(row)
    return rows


def markdown(payload: dict) -> str:
    ds = payload["datasets"]
    lines = [
        "# Annotation quality levers: Soft-NMS and test-time augmentation",
        "",
        f"`{COMMAND}`; {payload['date']}, {payload['cpu_model']}, commit {payload['commit']}"
        f" ({payload['code']}). The shipped `people` model, engine {payload['engine']} f32, one"
        f" thread, score cut 0.05; person mask AP (COCOeval) on the held-out photos; in"
        f" brackets the 95 % paired-bootstrap interval of the difference to `{BASE}`"
        f" ({DRAWS} draws). Crowded: {payload['crowded_photos']} held-out Penn-Fudan photos"
        " each with a pedestrian of another held-out photo pasted in front of its tallest one"
        " (real pixels and masks; visible-part box IoU 0.3-0.6; the held-out photos hold"
        f" {payload['naturally_crowded_held_out_photos']} naturally crowded one at IoU >"
        f" {CROWD_IOU}). Cost: median detector ms over the 60 held-out photos; the machine's"
        f" load average was {payload['load_average']} on its cores during the run, so the ms"
        " are high: compare them with each other (the settings took turns on every photo).",
        "",
        "| setting | "
        + " | ".join(f"{d} mask AP" for d in ds)
        + " | crowded mask AP | detector ms/photo |",
        "|---|" + "---|" * (len(ds) + 2),
    ]
    crowd = {r["setting"]: r for r in payload["crowded"]}
    for r in payload["held_out"]:
        cells = []
        for d in ds:
            diff = r.get(f"{d} diff 95%")
            cells.append(f"{r[d]:.1f}" + (f" [{diff[0]:+.1f}, {diff[1]:+.1f}]" if diff else ""))
        c = crowd[r["setting"]]
        diff = c.get("crowded diff 95%")
        cells.append(f"{c['crowded']:.1f}" + (f" [{diff[0]:+.1f}, {diff[1]:+.1f}]" if diff else ""))
        lines.append(f"| {r['setting']} | " + " | ".join(cells) + f" | {r['ms_per_photo']} |")
    lines += [
        "",
        f"Review ranking (TTA settings, all photos above; predicted people scoring >="
        f" {REVIEW_SCORE}, *wrong* ="
        " mask IoU < 0.5 with every true person): AUC of each signal for putting the wrong"
        " ones first.",
        "",
        "| setting | people | wrong | AUC uncertainty | AUC 1 - score | AUC 1 - mask_confidence |",
        "|---|---|---|---|---|---|",
    ]
    for r in payload["review"]:
        lines.append(
            f"| {r['setting']} | {r['instances']} | {r['wrong']} | {r['auc_uncertainty']} | "
            f"{r['auc_score']} | {r['auc_mask_confidence']} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.parse_args(argv)
    setup_logging()
    cv2.setNumThreads(1)
    _, samples = held_out_samples()
    if not samples:
        print("bench.annotate_levers: ../shared/data is absent", file=sys.stderr)
        return 2
    occluded = occluded_set(samples)
    photos = [of_sample(s) for s in samples] + occluded
    preds, times, review = run(photos)
    n = len(samples)
    held = score({k: v[:n] for k, v in preds.items()}, samples)
    crowd = score_photos({k: v[n:] for k, v in preds.items()}, occluded, "crowded")
    times = {k: v[:n] for k, v in times.items()}
    datasets = sorted({s.dataset for s in samples})
    natural = [i for i, s in enumerate(samples) if crowded(s)]
    cpu = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
    model = next((ln.split(":", 1)[1].strip() for ln in cpu.splitlines() if "Model name" in ln), "")
    dirty = subprocess.run(
        ["git", "status", "--porcelain"], cwd=ROOT, capture_output=True, text=True, check=False
    ).stdout.strip()
    head = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
    ).stdout.strip()
    payload = {
        "date": time.strftime("%Y-%m-%d"),
        "cpu_model": model,
        "commit": head,
        "code": "uncommitted changes" if dirty else "committed",
        "command": COMMAND,
        "engine": DetectorConfig().engine,
        "datasets": datasets,
        "load_average": round(os.getloadavg()[0], 1),
        "crowded_photos": len(occluded),
        "naturally_crowded_held_out_photos": len(natural),
        "held_out": table(held, datasets, times),
        "crowded": table(crowd, ["crowded"], None),
        "review": [
            {
                "setting": name,
                "instances": len(rows),
                "wrong": sum(r[0] for r in rows),
                "auc_uncertainty": auc([r[1] for r in rows], [r[0] for r in rows]),
                "auc_score": auc([r[2] for r in rows], [r[0] for r in rows]),
                "auc_mask_confidence": auc([r[3] for r in rows], [r[0] for r in rows]),
            }
            for name, rows in review.items()
            if rows
        ],
    }
    _, md = write_report("annotate_levers", payload, markdown(payload))
    print(md.read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
