"""The precision levers on this CPU: f32, bf16 and INT8 per engine, priced in speed and quality.

    PYTHONPATH=. .venv/bin/python -m bench.precision                 # about 25 min here
    PYTHONPATH=. .venv/bin/python -m bench.precision --parts ap,hota # some parts only

For each setting (engine x precision) of the shipped ``people`` model:

* ``ap``: median ms per image and mask AP on the 60 held-out images of ``tools/train.py``'s
  split (34 Penn-Fudan, 26 COCO128; persons and cars), settings taking turns on every image;
* ``hota``: the street demo (``configs/street.yaml``, PETS 2009 S2.L1 frames 0-399, one
  detector thread) through the whole pipeline: HOTA, DetA, AssA, IDSW, the run's fps and
  the detector's ms per keyframe, and whether its tracks are eager torch f32's
  (``vis_eval.agreement``: same ids every frame, mask IoU >= 0.99);

and for the R50-FPN architecture (initial weights: COCO weights cannot be fetched here):

* ``r50``: ms per 1280x720 frame (min_size 480), settings taking turns;

and, where the CPU has bf16, what bf16 changes in the people model's output (``jitter``):
OpenVINO f32 and bf16 on every 3rd of the first 120 street frames (score >= 0.5), the same
person's box IoU and score difference between the two, the embeddings' cosine distance, next
to the distance between one person's f32 embeddings three frames apart.

INT8 calibrates on 32 training-split images (never the held-out ones). The table names the CPU
and its features: bf16 and INT8 gain only where the CPU has them in hardware (AMX, AVX-512
BF16, VNNI), so rerun this on your CPU before choosing. Writes
``bench/results/precision.{json,md}``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import statistics
import sys
import time

import cv2

from bench.common import RESULTS, setup_logging, write_report
from bench.engines import (
    calibration_folder,
    held_out_samples,
    levers_part,
    random_r50_checkpoint,
)
from bench.street import WORK, missing_inputs, run_street
from streams.sinks import jsonl_path
from vis.detection.factory import DetectorConfig, build_detector
from vis.detection.precision import cpu_features
from vis.schema import decode_record
from vis_eval.agreement import track_agreement

COMMAND = "PYTHONPATH=. .venv/bin/python -m bench.precision"
SETTINGS = [  # (engine, precision)
    ("torch", "f32"),
    ("torch", "bf16"),
    ("onnxruntime", "f32"),
    ("onnxruntime", "int8"),
    ("openvino", "f32"),
    ("openvino", "bf16"),
    ("openvino", "int8"),
]
REFERENCE = "torch f32"


def name_of(engine: str, precision: str) -> str:
    return f"{engine} {precision}"


def change(engine: str, precision: str, calibration: str) -> dict:
    extra = {"calibration_images": calibration} if precision == "int8" else {}
    return {"engine": engine, "precision": precision, **extra}


def ap_part(settings, calibration: str) -> list[dict]:
    _, held = held_out_samples()
    base = DetectorConfig(weights="people", threads=1, score_threshold=0.05)
    levers = [(name_of(*s), change(*s, calibration)) for s in settings]
    return levers_part(base, held, levers)


def read_results(path) -> list:
    with open(path, encoding="utf-8") as fh:
        return [decode_record(json.loads(line)) for line in fh]


def hota_part(settings, calibration: str) -> list[dict]:
    rows, reference = [], None
    for engine, precision in settings:
        name = name_of(engine, precision)
        overrides = [f"detector.engine={engine}", f"detector.precision={precision}"]
        if precision == "int8":
            overrides.append(f"detector.calibration_images={calibration}")
        tag = f"precision_{engine}_{precision}"
        result, summary = run_street("people", overrides, tag)
        tracks = read_results(jsonl_path(WORK / tag, "frames"))
        if name == REFERENCE:
            reference = tracks
        agreement = track_agreement(reference, tracks).to_json() if reference else None
        detect = summary["streams"][0]["stage_ms_p50_p99"].get("detect", [None])[0]
        rows.append(
            {
                "setting": name,
                "ran_at": summary["detector"]["precision"],
                "fps": summary["fps"],
                "detect_ms_p50": detect,
                "agreement_with_torch_f32": agreement,
                **{k: result[k] for k in ("HOTA", "DetA", "AssA", "IDSW", "IDF1")},
            }
        )
        print(rows[-1], flush=True)
    return rows


def r50_part(settings, calibration: str, reps: int) -> list[dict]:
    """ms per 1280x720 frame of the R50-FPN architecture, settings taking turns."""
    from bench.engines import real_frames

    base = DetectorConfig(
        weights=str(random_r50_checkpoint()),
        min_size=480,
        max_size=800,
        threads=1,
        score_threshold=0.05,
    )
    dets = {
        name_of(*s): build_detector(dataclasses.replace(base, **change(*s, calibration)))
        for s in settings
    }
    frames = real_frames((1280, 720), reps + 1)
    times: dict[str, list[float]] = {n: [] for n in dets}
    for det in dets.values():
        det.detect(frames[:1])  # warm-up
    for frame in frames[1:]:
        for name, det in dets.items():
            t0 = time.perf_counter()
            det.detect([frame])
            times[name].append((time.perf_counter() - t0) * 1000)
    rows = [
        {"setting": n, "ran_at": dets[n].precision, "ms_per_frame": statistics.median(t)}
        for n, t in times.items()
    ]
    for r in rows:
        print(r, flush=True)
    return rows


def jitter_part() -> dict:
    """How far OpenVINO bf16's detections are from f32's on the same street frames."""
    import numpy as np

    from bench.street import VIDEO
    from vis.ops.boxes import box_iou

    cap = cv2.VideoCapture(str(VIDEO))
    frames = []
    for i in range(120):
        ok, frame = cap.read()
        if ok and i % 3 == 0:
            frames.append(frame)
    cap.release()
    base = DetectorConfig(
        weights="people", engine="openvino", threads=1, classes=["person"], score_threshold=0.5
    )
    runs = {
        p: build_detector(dataclasses.replace(base, precision=p)).detect(frames)
        for p in ("f32", "bf16")
    }
    ious, scores, emb, temporal = [], [], [], []
    for a, b in zip(runs["f32"], runs["bf16"]):
        if len(a) and len(b):
            iou = box_iou(a.xyxy, b.xyxy)
            for i, j in enumerate(iou.argmax(axis=1)):
                if iou[i, j] >= 0.5:  # the same person in both
                    ious.append(iou[i, j])
                    scores.append(abs(a.scores[i] - b.scores[j]))
                    emb.append(1.0 - float(a.embeddings[i] @ b.embeddings[j]))
    for a, b in zip(runs["f32"][:-1], runs["f32"][1:]):
        if len(a) and len(b):
            iou = box_iou(a.xyxy, b.xyxy)
            for i, j in enumerate(iou.argmax(axis=1)):
                if iou[i, j] >= 0.6:
                    temporal.append(1.0 - float(a.embeddings[i] @ b.embeddings[j]))

    def pct(values, q):
        return [round(float(v), 4) for v in np.percentile(values, q)]

    out = {
        "frames": len(frames),
        "detections": {p: sum(len(d) for d in r) for p, r in runs.items()},
        "box_iou_p50_p10": pct(ious, [50, 10]),
        "score_diff_p50_p90": pct(scores, [50, 90]),
        "embedding_distance_p50_p90": pct(emb, [50, 90]),
        "f32_same_person_3_frames_apart_p50_p90": pct(temporal, [50, 90]),
    }
    print(out, flush=True)
    return out


def markdown(payload: dict) -> str:
    out = [
        f"# Precision levers on {payload['cpu']} ({payload['date']}, one thread per "
        f"detector, load average {payload['load_average_at_start']} at the start)\n",
        f"`{COMMAND}`. bf16 and INT8 gain only where the CPU has them in hardware.\n",
    ]
    by = {}
    for part in ("ap", "hota", "r50"):
        for r in payload.get(part, []):
            by.setdefault(r["setting"], {})[part] = r
    if payload.get("ap") or payload.get("hota"):
        ref = by.get(REFERENCE, {})
        out += [
            "## people model: speed and quality per setting\n",
            "| setting | ran at | detector ms/image (60 held-out) | street fps (N=3) | "
            "mask AP Penn-Fudan | mask AP COCO128 | HOTA | DetA | AssA | IDSW | "
            "vs torch f32: frames with other ids / instances at mask IoU < 0.99 |",
            "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|",
        ]
        for name, parts in by.items():
            ap, h = parts.get("ap", {}), parts.get("hota", {})
            if not ap and not h:
                continue
            mask = ap.get("mask_AP", {})
            agree = h.get("agreement_with_torch_f32")
            same = "-"
            if agree:
                same = (
                    f"{agree['id_mismatch_frames']} / {agree['low_iou_instances']} of "
                    f"{agree['instances']}"
                )
            speed = ""
            if ap and ref.get("ap"):
                speed = f" ({ref['ap']['ms_per_image'] / ap['ms_per_image']:.2f}x)"
            out.append(
                f"| {name} | {h.get('ran_at', '-')} | {ap.get('ms_per_image', '-')}{speed} | "
                f"{h.get('fps', '-')} | {mask.get('pennfudan', '-')} | "
                f"{mask.get('coco128', mask.get('instances_train2017', '-'))} | "
                f"{h.get('HOTA', '-')} | {h.get('DetA', '-')} | {h.get('AssA', '-')} | "
                f"{h.get('IDSW', '-')} | {same} |"
            )
    jitter = payload.get("jitter")
    if jitter:
        out += [
            "\n## What bf16 changes in the people model's detections (OpenVINO, street frames)\n",
            f"{jitter['frames']} frames (every 3rd of the first 120), score >= 0.5: "
            f"{jitter['detections']['f32']} detections at f32, {jitter['detections']['bf16']} "
            f"at bf16. The same person's box IoU f32 vs bf16: median "
            f"{jitter['box_iou_p50_p10'][0]}, 10th percentile {jitter['box_iou_p50_p10'][1]}; "
            f"score difference median / 90th percentile {jitter['score_diff_p50_p90']}; "
            f"embedding cosine distance {jitter['embedding_distance_p50_p90']}, against "
            f"{jitter['f32_same_person_3_frames_apart_p50_p90']} between one person's f32 "
            "embeddings three frames apart.",
        ]
    if payload.get("r50"):
        ref = by.get(REFERENCE, {}).get("r50")
        out += [
            "\n## R50-FPN architecture (initial weights), 1280x720, min_size 480\n",
            "| setting | ran at | ms/frame | vs torch f32 |",
            "|---|---|---:|---:|",
        ]
        for r in payload["r50"]:
            ratio = f"{ref['ms_per_frame'] / r['ms_per_frame']:.2f}x" if ref else "-"
            out.append(f"| {r['setting']} | {r['ran_at']} | {r['ms_per_frame']:.0f} | {ratio} |")
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--parts", default="ap,hota,r50,jitter")
    ap.add_argument("--reps", type=int, default=5, help="r50: timed frames per setting")
    args = ap.parse_args(argv)
    setup_logging()
    missing = missing_inputs()
    if missing:
        print(f"bench.precision: {', '.join(map(str, missing))} absent", file=sys.stderr)
        return 2
    parts = set(args.parts.split(","))
    cpu = cpu_features()
    settings = [s for s in SETTINGS if s[1] != "bf16" or cpu.bf16 or s[0] == "torch"]
    train, _ = held_out_samples()
    calibration = str(calibration_folder(train))
    cv2.setNumThreads(1)
    payload = {
        "date": time.strftime("%Y-%m-%d"),
        "cpu": cpu.describe(),
        "load_average_at_start": round(os.getloadavg()[0], 1),
    }
    previous = RESULTS / "precision.json"
    if previous.is_file():  # a run of some parts keeps the others' last results
        old = json.loads(previous.read_text())
        if old.get("cpu") == payload["cpu"]:
            kept = ("ap", "hota", "r50", "jitter")
            payload = {**{k: old[k] for k in kept if k in old}, **payload}
    if "ap" in parts:
        payload["ap"] = ap_part(settings, calibration)
    if "hota" in parts:
        payload["hota"] = hota_part(settings, calibration)
    if "r50" in parts:
        payload["r50"] = r50_part(settings, calibration, args.reps)
    if "jitter" in parts and cpu.bf16:
        payload["jitter"] = jitter_part()
    _, md = write_report("precision", payload, markdown(payload))
    print(md.read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
