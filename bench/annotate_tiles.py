"""Tiled inference (``detector.tiles``) against the whole frame alone: mask AP and detector cost
on small people in big frames, and on ordinary photos.

    OMP_NUM_THREADS=1 .venv/bin/python -m bench.annotate_tiles

Data (``../shared/data``, never copied): the held-out Penn-Fudan photos of ``tools/train.py``'s
split (seed 0; the shipped ``people`` model never trained on them), split in two folds by
key (alternate photos): ``tune`` chooses the tile size and overlap, ``held`` scores the
choice. The small-object set: each photo is downscaled three times (seeded) so that its
median person is 20-40 px tall and pasted whole (its own background kept) at a free place of
a 1920x1080 canvas whose background is a person-free COCO128 photo stretched to the canvas;
the true masks are moved with it. Then, to check that tiles do not hurt ordinary photos:
mask AP on the held-out photos with people as they are (Penn-Fudan and COCO128; tiles run
only on the few larger than the model's input), and on the held fold's Penn-Fudan photos
upscaled x2 (larger than the input: tiles run over large people). Detector ms per frame:
median over the frames, tiles off and on taking turns on each frame. Writes
``bench/results/annotate_tiles.{json,md}``.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as _dt
import json
import os
import statistics
import subprocess
import sys
import time

import cv2
import numpy as np
from pycocotools import mask as mask_utils

from bench.common import ROOT, write_report
from vis.detection.factory import DetectorConfig, build_detector
from vis.detection.config import TilesConfig
from vis.types import Frame
from vis_eval.coco_ap import coco_mask_ap_rle

SHARED = ROOT.parent / "shared" / "data"
COCO = SHARED / "coco128"
CANVAS = (1080, 1920)  # (H, W)
HEIGHTS = (20.0, 40.0)  # median person height after downscaling, px
COPIES = 3  # placements of each photo
PER_CANVAS = 14
SIZES = (160, 240, 320, 480)
OVERLAPS = (0.25,)
PERSON = 1  # the people model's class id of person


@dataclasses.dataclass
class Image:
    """One frame to score: (H, W, 3) uint8 BGR and its true person masks (COCO RLEs)."""

    name: str
    bgr: np.ndarray
    truth: list[dict]


def held_out_photos():
    from bench.engines import held_out_samples

    return held_out_samples()[1]


def person_rles(sample) -> list[dict]:
    return [i.rle for i in sample.instances if i.label == "person" and not i.iscrowd]


def backgrounds() -> list[np.ndarray]:
    """COCO128 photos with no person at all (crowd regions included), as canvases."""
    data = json.loads((COCO / "annotations" / "instances_train2017.json").read_text())
    with_people = {a["image_id"] for a in data["annotations"] if a["category_id"] == 1}
    files = sorted(im["file_name"] for im in data["images"] if im["id"] not in with_people)
    out = []
    for f in files:
        img = cv2.imread(str(COCO / "train2017" / f))
        if img is not None:
            out.append(cv2.resize(img, CANVAS[::-1], interpolation=cv2.INTER_LINEAR))
    return out


def small_object_set(photos, seed: int) -> list[Image]:
    """Canvases of ``CANVAS`` size with each photo pasted ``COPIES`` times, downscaled so that
    its median person is ``HEIGHTS`` px tall, with the true masks moved alongside."""
    rng = np.random.default_rng(seed)
    patches = []
    for sample in photos:
        rles = person_rles(sample)
        if not rles:
            continue
        bgr = cv2.imread(str(sample.path))
        masks = mask_utils.decode(rles)  # (H, W, N)
        heights = [float(b[3]) for b in mask_utils.toBbox(rles)]
        for _ in range(COPIES):
            s = rng.uniform(*HEIGHTS) / statistics.median(heights)
            w, h = max(round(bgr.shape[1] * s), 1), max(round(bgr.shape[0] * s), 1)
            small = cv2.resize(bgr, (w, h), interpolation=cv2.INTER_AREA)
            scaled = [
                cv2.resize(masks[:, :, k].astype(np.float32), (w, h), interpolation=cv2.INTER_AREA)
                >= 0.5
                for k in range(masks.shape[2])
            ]
            patches.append((small, [m for m in scaled if m.any()]))
    order = rng.permutation(len(patches))
    canvases = backgrounds()
    out: list[Image] = []
    for c, start in enumerate(range(0, len(order), PER_CANVAS)):
        canvas = canvases[c % len(canvases)].copy()
        taken = np.zeros(CANVAS, bool)
        truth = []
        for k in order[start : start + PER_CANVAS]:
            small, masks = patches[k]
            h, w = small.shape[:2]
            for _ in range(500):
                y = int(rng.integers(0, CANVAS[0] - h))
                x = int(rng.integers(0, CANVAS[1] - w))
                if not taken[max(y - 8, 0) : y + h + 8, max(x - 8, 0) : x + w + 8].any():
                    break
            else:
                raise RuntimeError("no free place on the canvas: fewer patches per canvas")
            taken[y : y + h, x : x + w] = True
            canvas[y : y + h, x : x + w] = small
            for m in masks:
                full = np.zeros(CANVAS, np.uint8)
                full[y : y + h, x : x + w] = m
                truth.append(mask_utils.encode(np.asfortranarray(full)))
        out.append(Image(f"canvas{c}", canvas, truth))
    return out


def ordinary(photos, scale: int = 1) -> list[Image]:
    out = []
    for sample in photos:
        rles = person_rles(sample)
        if not rles:
            continue
        bgr = cv2.imread(str(sample.path))
        if scale != 1:
            h, w = bgr.shape[:2]
            bgr = cv2.resize(bgr, (w * scale, h * scale), interpolation=cv2.INTER_CUBIC)
            masks = mask_utils.decode(rles)
            rles = [
                mask_utils.encode(
                    np.asfortranarray(
                        cv2.resize(
                            masks[:, :, k], (w * scale, h * scale), interpolation=cv2.INTER_NEAREST
                        )
                    )
                )
                for k in range(masks.shape[2])
            ]
        out.append(Image(f"{sample.dataset}/{sample.key}", bgr, rles))
    return out


def score(detectors: dict, images: list[Image]) -> dict:
    """Mask AP (person) and median detector ms per frame of each detector on ``images``,
    the detectors taking turns on each image."""
    preds: dict[str, list] = {n: [] for n in detectors}
    times: dict[str, list[float]] = {n: [] for n in detectors}
    for i, im in enumerate(images):
        frame = Frame("bench", i, 0.0, im.bgr)
        for name, det in detectors.items():
            t0 = time.perf_counter()
            (d,) = det.detect_frames([frame])
            times[name].append((time.perf_counter() - t0) * 1000)
            d = d[d.class_ids == PERSON]
            rles = (
                mask_utils.encode(np.asfortranarray(d.full_masks().transpose(1, 2, 0), np.uint8))
                if len(d)
                else []
            )
            preds[name].append([(r, PERSON, float(s)) for r, s in zip(rles, d.scores)])
    truth = [[(r, PERSON) for r in im.truth] for im in images]
    out = {}
    for name, det in detectors.items():
        ap = coco_mask_ap_rle(truth, preds[name], class_names={PERSON: "person"})
        out[name] = {
            "mask_AP": ap["mask_AP"],
            "mask_AP50": ap["mask_AP50"],
            "ms_per_frame": round(statistics.median(times[name]), 1),
            "tiles_per_frame": round(getattr(det, "tiles_run", 0) / len(images), 1),
        }
        if hasattr(det, "tiles_run"):
            det.tiles_run = 0
        print(name, out[name], flush=True)
    return out


def setting(size: int, overlap: float) -> str:
    return f"tiles {size}/{overlap}"


def commit() -> str:
    head = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
    ).stdout.strip()
    dirty = subprocess.run(
        ["git", "status", "--porcelain"], cwd=ROOT, capture_output=True, text=True
    ).stdout.strip()
    return f"{head} + uncommitted changes" if dirty else head


def cpu_model() -> str:
    for line in subprocess.run(["lscpu"], capture_output=True, text=True).stdout.splitlines():
        if line.startswith("Model name:"):
            return line.split(":", 1)[1].strip()
    return "unknown"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--engine", default="openvino", choices=["torch", "onnxruntime", "openvino"])
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--sizes", type=int, nargs="+", default=list(SIZES))
    p.add_argument("--overlaps", type=float, nargs="+", default=list(OVERLAPS))
    args = p.parse_args(argv)

    base = DetectorConfig(weights="people", engine=args.engine, threads=args.threads)
    photos = [s for s in held_out_photos() if person_rles(s)]
    pennfudan = sorted((s for s in photos if s.dataset == "pennfudan"), key=lambda s: s.key)
    folds = {"tune": pennfudan[0::2], "held": pennfudan[1::2]}
    sets = {f: small_object_set(ph, seed=i) for i, (f, ph) in enumerate(folds.items())}
    off = build_detector(base)
    payload = {
        "date": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": cpu_model(),
        "commit": commit(),
        "engine": args.engine,
        "threads": args.threads,
        "model": "people",
        "load_average_at_start": round(os.getloadavg()[0], 1),
        "command": "OMP_NUM_THREADS=1 .venv/bin/python -m bench.annotate_tiles "
        + " ".join(argv if argv is not None else sys.argv[1:]),
        "small_object_set": {
            "canvas": f"{CANVAS[1]}x{CANVAS[0]}",
            "median_person_height_px": list(HEIGHTS),
            "copies_per_photo": COPIES,
            "photos": {f: len(ph) for f, ph in folds.items()},
            "canvases": {f: len(s) for f, s in sets.items()},
            "people": {f: sum(len(i.truth) for i in s) for f, s in sets.items()},
        },
        "ordinary_photos": {"images": len(photos)},
    }

    def tiled(size: int, overlap: float):
        return build_detector(
            dataclasses.replace(base, tiles=TilesConfig(size=size, overlap=overlap))
        )

    grid = {setting(s, o): tiled(s, o) for s in args.sizes for o in args.overlaps}
    payload["tune"] = score({"off": off, **grid}, sets["tune"])
    write_report("annotate_tiles", payload, markdown(payload))  # each part as it is done
    best = max(
        grid, key=lambda n: (payload["tune"][n]["mask_AP"], -payload["tune"][n]["ms_per_frame"])
    )
    chosen = grid[best]
    payload["chosen"] = best
    payload["held"] = score({"off": off, best: chosen}, sets["held"])
    write_report("annotate_tiles", payload, markdown(payload))
    ordinary_photos = payload["ordinary_photos"]
    ordinary_photos["as_they_are"] = score({"off": off, best: chosen}, ordinary(photos))
    write_report("annotate_tiles", payload, markdown(payload))
    # the held fold's Penn-Fudan photos twice their size (large people cut by many tiles)
    bigger = folds["held"]
    ordinary_photos["upscaled_images"] = len(bigger)
    ordinary_photos["upscaled_x2"] = score({"off": off, best: chosen}, ordinary(bigger, scale=2))
    write_report("annotate_tiles", payload, markdown(payload))
    return 0


def markdown(p: dict) -> str:
    s = p["small_object_set"]
    out = [
        f"# Tiled inference: small people in big frames ({p['date']})\n",
        f"`{p['command']}`; model `{p['model']}`, engine {p['engine']} at f32, "
        f"{p['threads']} thread; CPU {p['cpu']}; commit {p['commit']}; load average "
        f"{p.get('load_average_at_start', '?')} at the start on this shared 2-core machine "
        "(ms are comparable within a set, each setting taking turns on every frame).\n",
        f"Small-object set: held-out Penn-Fudan photos (`tools/train.py` split, seed 0) "
        f"downscaled so their median person is {s['median_person_height_px'][0]:.0f}-"
        f"{s['median_person_height_px'][1]:.0f} px tall, each pasted {s['copies_per_photo']} "
        f"times into {s['canvas']} canvases (person-free COCO128 backgrounds), true masks "
        f"moved alongside. Folds by photo: tune {s['photos']['tune']} photos "
        f"({s['canvases']['tune']} canvases, {s['people']['tune']} people), held out "
        f"{s['photos']['held']} photos ({s['canvases']['held']} canvases, "
        f"{s['people']['held']} people). Tile size / overlap chosen on tune by mask AP: "
        f"**{p.get('chosen', 'not yet')}**.\n",
        "| set | setting | mask AP | mask AP50 | tiles / frame | detector ms / frame |",
        "|---|---|---|---|---|---|",
    ]
    rows = [("small, tune", n, r) for n, r in p.get("tune", {}).items()]
    rows += [("**small, held out**", n, r) for n, r in p.get("held", {}).items()]
    o = p["ordinary_photos"]
    rows += [
        (f"{o['images']} held-out photos as they are", n, r)
        for n, r in o.get("as_they_are", {}).items()
    ]
    rows += [
        (f"{o.get('upscaled_images')} held-out photos x2", n, r)
        for n, r in o.get("upscaled_x2", {}).items()
    ]
    for where, name, r in rows:
        out.append(
            f"| {where} | {name} | {r['mask_AP']} | {r['mask_AP50']} | {r['tiles_per_frame']} | "
            f"{r['ms_per_frame']} |"
        )
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
