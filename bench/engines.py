"""Detector speed on a CPU: eager torch against ONNX Runtime and OpenVINO (fp32 and INT8), and
the speed levers (input size, RPN proposals, score cut, detections, threads) against mask AP.

    .venv/bin/python -m bench.engines                 # everything (about 40 min here)
    .venv/bin/python -m bench.engines --parts levers  # one part: engines, r50, levers, int8

Needs the shared real data beside the checkout (``../shared/data``): DAVIS ``lucia`` frames
(real video, resized to 640x360 and 1280x720) for the timings, the held-out Penn-Fudan and
COCO128 images of ``tools/train.py``'s split for mask AP. Engines being compared run
interleaved (one call each in turn) so that load from other jobs falls on all of them alike;
ms/frame is the median over the calls after a warm-up call. One thread per engine by default:
on a machine whose cores are oversubscribed by other jobs, two OpenMP threads made eager
torch 3-9x slower per frame (barrier spinning) while the ONNX engines lost far less, which
would flatter the engines (``--threads 2`` measures it anyway). Writes
``bench/results/engines.json`` and ``bench/results/engines.md``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import sys
import time
from pathlib import Path

import cv2
import numpy as np
from pycocotools import mask as mask_utils
from tqdm import tqdm

from bench.common import RESULTS, ROOT, TMP, write_report
from vis.detection.factory import DetectorConfig, build_detector
from vis.ops.boxes import box_iou

SHARED = ROOT.parent / "shared" / "data"
LUCIA = SHARED / "davis2016" / "DAVIS" / "JPEGImages" / "480p" / "lucia"
ENGINES = ("torch", "onnxruntime", "openvino")
SIZES = ((640, 360), (1280, 720))


def real_frames(size: tuple[int, int], n: int) -> list[np.ndarray]:
    files = sorted(LUCIA.glob("*.jpg"))[:n]
    return [cv2.resize(cv2.imread(str(f)), size, interpolation=cv2.INTER_AREA) for f in files]


def interleaved_ms(detectors: dict, batches: list[list[np.ndarray]]) -> dict[str, float]:
    """Median ms per frame of each detector over ``batches`` (after one warm-up call each),
    the detectors taking turns on every batch."""
    times: dict[str, list[float]] = {name: [] for name in detectors}
    for det in detectors.values():
        det.detect(batches[0])
    for batch in batches:
        for name, det in detectors.items():
            t0 = time.perf_counter()
            det.detect(batch)
            times[name].append((time.perf_counter() - t0) * 1000 / len(batch))
    return {name: round(statistics.median(v), 1) for name, v in times.items()}


def agreement(want: list, got: list) -> dict:
    """How far an engine's detections are from torch's on the same frames."""
    same_count = all(len(a) == len(b) for a, b in zip(want, got))
    box, score = 1.0, 0.0
    for a, b in zip(want, got):
        if len(a) and len(a) == len(b):
            box = min(box, float(box_iou(a.xyxy, b.xyxy).max(axis=1).min()))
            score = max(score, float(np.abs(np.sort(a.scores) - np.sort(b.scores)).max()))
    return {"same_count": same_count, "min_box_iou": round(box, 4), "max_score_diff": score}


def engines_part(cfg: DetectorConfig, sizes, batch_sizes, reps: int, label: str) -> list[dict]:
    dets = {e: build_detector(dataclasses.replace(cfg, engine=e)) for e in ENGINES}
    rows = []
    for size in sizes:
        frames = real_frames(size, reps * max(batch_sizes))
        want = dets["torch"].detect(frames[:4])
        checks = {e: agreement(want, dets[e].detect(frames[:4])) for e in ENGINES[1:]}
        for b in batch_sizes:
            batches = [frames[i * b : (i + 1) * b] for i in range(reps)]
            ms = interleaved_ms(dets, batches)
            rows.append(
                {
                    "model": label,
                    "size": f"{size[0]}x{size[1]}",
                    "batch": b,
                    "ms_per_frame": ms,
                    "speedup": {e: round(ms["torch"] / ms[e], 2) for e in ENGINES[1:]},
                    "agreement": checks,
                }
            )
            print(rows[-1], flush=True)
    return rows


def random_r50_checkpoint() -> Path:
    """torchvision's R50-FPN Mask R-CNN architecture (91 COCO classes) with its initial
    weights, saved once: the COCO weights cannot be fetched on this machine. The backbone,
    RPN and box head cost the same whatever the weights; how many boxes reach the final NMS
    and the mask head differs from a trained model's. (A score cut of 0 sends 1000
    proposals x 90 classes to the final NMS, which ONNX Runtime's NonMaxSuppression takes
    ~30 s for; the bench uses 0.05.)"""
    import torch
    from torchvision.models.detection import maskrcnn_resnet50_fpn

    path = TMP / "r50_fpn_init.pt"
    if not path.is_file():
        TMP.mkdir(parents=True, exist_ok=True)
        torch.manual_seed(0)
        model = maskrcnn_resnet50_fpn(weights=None, weights_backbone=None, num_classes=91)
        labels = [f"coco_{k}" for k in range(1, 91)]
        torch.save({"model": model.state_dict(), "arch": "resnet50_fpn", "labels": labels}, path)
    return path


def held_out_samples():
    from vis_train.data import holdout_split, read_coco, read_pennfudan, select_classes

    coco = SHARED / "coco128"
    samples = read_pennfudan(SHARED / "PennFudanPed") + read_coco(
        coco / "annotations" / "instances_train2017.json", coco / "train2017"
    )
    samples, _ = select_classes(samples, {"person": "person", "car": "car"})
    return holdout_split(samples, fraction=0.2, seed=0)


LEVERS = [
    ("defaults (480/800, RPN 500/300, score 0.05, 50 dets)", {}),
    ("min_size 320", {"min_size": 320, "max_size": 544}),
    ("min_size 400", {"min_size": 400, "max_size": 672}),
    ("min_size 560", {"min_size": 560, "max_size": 928}),
    ("RPN top-n 250/150", {"rpn_pre_nms_top_n": 250, "rpn_post_nms_top_n": 150}),
    ("RPN top-n 125/50", {"rpn_pre_nms_top_n": 125, "rpn_post_nms_top_n": 50}),
    ("score cut 0.3 before the mask head", {"score_threshold": 0.3}),
    ("score cut 0.5 before the mask head", {"score_threshold": 0.5}),
    ("detections per image 10", {"max_detections": 10}),
]


def levers_part(base: DetectorConfig, samples, levers=LEVERS) -> list[dict]:
    """Mask AP and median ms/image of each setting on ``samples``; the settings take turns
    on every image (so machine load falls on all alike)."""
    from vis_train.evaluate import evaluate_predictions

    dets = {name: build_detector(dataclasses.replace(base, **change)) for name, change in levers}
    first = cv2.imread(str(samples[0].path))
    for det in dets.values():
        det.detect([first])  # export / compile outside the timing
    preds: dict[str, list] = {name: [] for name in dets}
    times: dict[str, list[float]] = {name: [] for name in dets}
    for sample in tqdm(samples, desc="held-out images", unit="img"):
        bgr = cv2.imread(str(sample.path))
        for name, det in dets.items():
            t0 = time.perf_counter()
            (d,) = det.detect([bgr])
            times[name].append((time.perf_counter() - t0) * 1000)
            preds[name].append(rle_predictions(d))
    rows = []
    for name, change in levers:
        replay = iter(preds[name])
        res = evaluate_predictions(
            lambda _img, r=replay: next(r), samples, ["person", "car"], progress=False
        )
        ap = {ds: r["all"]["mask_AP"] for ds, r in res.items() if r["all"]}
        ms = round(statistics.median(times[name]), 1)
        rows.append({"setting": name, "change": change, "ms_per_image": ms, "mask_AP": ap})
        print(rows[-1], flush=True)
    return rows


def rle_predictions(d) -> list[tuple[dict, int, float]]:
    if not len(d):
        return []
    rles = mask_utils.encode(np.asfortranarray(d.full_masks().transpose(1, 2, 0).astype(np.uint8)))
    return list(zip(rles, d.class_ids.tolist(), d.scores.tolist()))


def calibration_folder(train) -> Path:
    """32 training-split images (never the held-out ones), linked into one folder."""
    folder = TMP / "calibration"
    folder.mkdir(parents=True, exist_ok=True)
    for s in train[:: max(len(train) // 32, 1)][:32]:
        link = folder / f"{s.dataset}_{s.path.name}"
        if not link.exists():
            link.symlink_to(s.path)
    return folder


def markdown(payload: dict) -> str:
    out = [
        f"# Detector engines ({payload['date']}, {payload['threads']} thread(s) per engine, "
        f"load average {payload.get('load_average_at_start', '?')} at the start)\n"
    ]
    rows = payload.get("engines", []) + payload.get("r50", [])
    if rows:
        out += [
            "## ms/frame (median), speed-up against eager torch\n",
            "| model | size | batch | torch | onnxruntime | openvino | same detections |",
            "|---|---|---|---|---|---|---|",
        ]
        for r in rows:
            ms, sp, ag = r["ms_per_frame"], r["speedup"], r["agreement"]
            same = ", ".join(
                f"{e}: {'yes' if a['same_count'] else 'NO'} (box IoU >= {a['min_box_iou']})"
                for e, a in ag.items()
            )
            out.append(
                f"| {r['model']} | {r['size']} | {r['batch']} | {ms['torch']} | "
                f"{ms['onnxruntime']} ({sp['onnxruntime']}x) | {ms['openvino']} "
                f"({sp['openvino']}x) | {same} |"
            )
    for key, title in (
        ("levers", f"Speed levers: people on {payload['lever_engine']}"),
        ("int8", "INT8 against fp32: people"),
    ):
        if payload.get(key):
            out += [
                f"\n## {title}, 60 held-out images (34 Penn-Fudan, 26 COCO128)\n",
                "| setting | ms/image | mask AP Penn-Fudan | mask AP COCO128 |",
                "|---|---|---|---|",
            ]
            for r in payload[key]:
                ap = r["mask_AP"]
                out.append(
                    f"| {r['setting']} | {r['ms_per_image']} | {ap.get('pennfudan', '-')} | "
                    f"{ap.get('coco128', ap.get('instances_train2017', '-'))} |"
                )
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--parts", default="engines,r50,levers,int8")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--lever-engine", default="onnxruntime")
    args = ap.parse_args(argv)
    if not LUCIA.is_dir():
        print(f"bench.engines: real data absent ({LUCIA}): put shared/data beside the checkout")
        return 2
    parts = set(args.parts.split(","))
    base = DetectorConfig(weights="people", threads=args.threads, score_threshold=0.05)
    payload = {
        "date": time.strftime("%Y-%m-%d"),
        "load_average_at_start": round(__import__("os").getloadavg()[0], 1),
        "threads": args.threads,
        "lever_engine": args.lever_engine,
    }
    previous = RESULTS / "engines.json"
    if previous.is_file():  # a run of some parts keeps the others' last results
        old = json.loads(previous.read_text())
        payload = {
            **{k: old[k] for k in ("engines", "r50", "levers", "int8") if k in old},
            **payload,
        }
    t0 = time.perf_counter()
    if "engines" in parts:
        payload["engines"] = engines_part(base, SIZES, (1, 2, 4), args.reps, "people")
    if "r50" in parts:
        r50 = DetectorConfig(
            weights=str(random_r50_checkpoint()),
            min_size=480,
            max_size=800,
            threads=args.threads,
            score_threshold=0.05,
        )
        payload["r50"] = engines_part(r50, SIZES[1:], (1,), args.reps, "R50-FPN (init weights)")
    if "levers" in parts or "int8" in parts:
        train, held = held_out_samples()
        lever_base = dataclasses.replace(base, engine=args.lever_engine)
        if "levers" in parts:
            other = 2 if args.threads == 1 else 1
            levers = [*LEVERS, (f"{other} thread(s)", {"threads": other})]
            payload["levers"] = levers_part(lever_base, held, levers)
        if "int8" in parts:
            int8 = {"precision": "int8", "calibration_images": str(calibration_folder(train))}
            payload["int8"] = levers_part(
                lever_base,
                held,
                [
                    ("torch fp32", {"engine": "torch"}),
                    ("onnxruntime fp32", {"engine": "onnxruntime"}),
                    ("onnxruntime int8", {"engine": "onnxruntime", **int8}),
                    ("openvino fp32", {"engine": "openvino"}),
                    ("openvino int8", {"engine": "openvino", **int8}),
                ],
            )
    write_report("engines", payload, markdown(payload))
    print(f"bench.engines: done in {time.perf_counter() - t0:.0f} s: bench/results/engines.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
