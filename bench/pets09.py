"""Real pedestrians: our tracker on PETS 2009 S2.L1 (``../shared/data/pets09-dev``), boxes
scored with TrackEval (HOTA, CLEAR, Identity) against the MOT15 ground truth of frames 0-399.

    python -m bench.pets09 --dets foreign --interval 1 --set tracker.max_age=60

The pieces here are used by ``bench.real_tracking`` (ours and every peer on identical
detections) and by the regression test in ``tests/vis/tracking/test_real_people.py``:

* ``load_gt``: MOT15 ``gt.txt`` -> per-frame (ids, xyxy boxes);
* ``gt_detections``: the ground-truth boxes as ``vis.frame/1`` detections without ids (box-shaped
  masks, score 1), the "perfect detector" input;
* ``run_ours``: frames of the footage + a detections file through ``StreamProcessor`` (the
  same per-stream code the runner drives), returning the output tracks per frame;
* ``score_boxes``: TrackEval ``MotChallenge2DBox`` on our tracks, one call.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import logging
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
from pycocotools import mask as mask_utils

from vis.detection.factory import build_detector
from vis.pipeline import StreamProcessor
from vis.types import Frame

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "pets09-dev"
VIDEO = Path.home() / ".cache" / "pets09" / "vtest.avi"
DEV_FRAMES = 400
FPS = 7.0
SIZE = (576, 768)  # H, W

log = logging.getLogger("bench.pets09")

Tracks = dict[int, list[tuple[int, np.ndarray]]]  # frame -> [(track_id, xyxy)]


def available() -> str | None:
    """None when the data and footage are here, else what is missing (a skip reason)."""
    if not (DATA / "gt.txt").is_file():
        return f"{DATA} is absent (the shared real-data folder beside the project)"
    if not VIDEO.is_file():
        return f"{VIDEO} is absent: run bash {DATA}/get_video.sh"
    return None


def load_gt(path: Path = DATA / "gt.txt", frames: int = DEV_FRAMES) -> Tracks:
    """MOT15 rows ``frame,id,x,y,w,h,...`` (1-based frames) -> {0-based frame: [(id, xyxy)]}."""
    out: Tracks = {f: [] for f in range(frames)}
    for line in path.read_text().splitlines():
        if not line.strip():
            continue
        v = line.split(",")
        f, tid = int(float(v[0])) - 1, int(float(v[1]))
        x, y, w, h = (float(s) for s in v[2:6])
        if 0 <= f < frames:
            out[f].append((tid, np.array([x, y, x + w, y + h], np.float32)))
    return out


def gt_detections(gt: Tracks, path: Path, size: tuple[int, int] = SIZE) -> Path:
    """Write the GT boxes as ``vis.frame/1`` detections (no ids; box masks; score 1)."""
    h, w = size
    with open(path, "w", encoding="utf-8") as fh:
        for f in sorted(gt):
            insts = []
            for _, b in gt[f]:
                x0, y0 = max(int(round(b[0])), 0), max(int(round(b[1])), 0)
                x1, y1 = min(int(round(b[2])), w), min(int(round(b[3])), h)
                if x1 <= x0 or y1 <= y0:
                    continue
                m = np.zeros((h, w), np.uint8, order="F")
                m[y0:y1, x0:x1] = 1
                rle = mask_utils.encode(m)
                insts.append({"class_id": 1, "label": "person", "score": 1.0,
                              "bbox": [float(x0), float(y0), float(x1), float(y1)],
                              "mask": {"size": [h, w], "counts": rle["counts"].decode()}})
            fh.write(json.dumps({"schema": "vis.frame/1", "stream_id": "pets", "frame_index": f,
                                 "timestamp_ms": f * 1000.0 / FPS, "keyframe": True,
                                 "width": w, "height": h, "instances": insts}) + "\n")
    return path


def detections_path(kind: str, work: Path) -> Path:
    """``foreign`` (the shipped foreign detector's file) or ``gt`` (written under ``work``)."""
    if kind == "foreign":
        return DATA / "detections_dev.jsonl"
    if kind == "gt":
        p = work / "pets_gt_dets.jsonl"
        return p if p.is_file() else gt_detections(load_gt(), p)
    raise ValueError(f"detections kind {kind!r}: use foreign or gt")


def frames(video: Path = VIDEO, count: int = DEV_FRAMES) -> Iterator[Frame]:
    cap = cv2.VideoCapture(str(video))
    try:
        for i in range(count):
            ok, img = cap.read()
            if not ok:
                raise RuntimeError(f"{video} ended at frame {i}: run get_video.sh again")
            yield Frame(stream_id="pets", index=i, timestamp_ms=i * 1000.0 / FPS, image=img)
    finally:
        cap.release()


def pipeline_config(dets: Path, interval: int, overrides: list[str] = ()):
    """configs/demo.yaml with precomputed detections, ``interval``, and ``--set`` overrides."""
    from run_pipeline import load_config

    sets = [f"detector.type=precomputed", f"detector.path={dets}", "detector.weights=null",
            f"keyframes.interval={interval}", *overrides]
    return load_config(ROOT / "configs" / "demo.yaml", sets)


def run_ours(dets: Path, interval: int = 1, overrides: list[str] = (),
             count: int = DEV_FRAMES) -> tuple[Tracks, dict]:
    """Our pipeline's per-stream processing on the footage -> (tracks per frame, timing)."""
    cfg = pipeline_config(dets, interval, overrides)
    detector = build_detector(cfg.detector)
    proc = StreamProcessor(stream_id="pets", labels=detector.labels, tracker=cfg.tracker,
                           propagation=cfg.propagation, keyframes=cfg.keyframes)
    out: Tracks = {}
    detect_s = 0.0
    try:
        for fr in frames(count=count):
            d = None
            if proc.is_keyframe(fr):
                t0 = time.perf_counter()
                d = detector.detect_frames([fr])[0]
                detect_s += time.perf_counter() - t0
            res = proc.process(fr, d)
            det = res.detections
            out[fr.index] = [(int(t), det.xyxy[i].copy()) for i, t in enumerate(det.track_ids)]
    finally:
        detector.close()
    n = max(proc.frames, 1)
    timing = {k: 1000.0 * v / n for k, v in proc.timer.seconds.items()}
    timing["detections_and_embedding"] = 1000.0 * detect_s / n
    return out, timing


def _mot_lines(tracks: Tracks, with_conf: bool) -> list[str]:
    rows = []
    for f in sorted(tracks):
        for tid, b in tracks[f]:
            w, h = float(b[2] - b[0]), float(b[3] - b[1])
            tail = "1,1,1" if not with_conf else "1,-1,-1,-1"
            rows.append(f"{f + 1},{tid},{b[0]:.2f},{b[1]:.2f},{w:.2f},{h:.2f},{tail}")
    return rows


def score_boxes(gt: Tracks, trackers: dict[str, Tracks], frames_n: int = DEV_FRAMES
                ) -> dict[str, dict[str, float]]:
    """TrackEval MotChallenge2DBox (HOTA, CLEAR, Identity) on boxes, one call for all trackers.

    Returns:
        {tracker name: {HOTA, DetA, AssA, MOTA, IDF1, IDSW, ...}} (percentages, counts).
    """
    import trackeval

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        seq = root / "gt" / "PETS-dev" / "pets"
        (seq / "gt").mkdir(parents=True)
        (seq / "gt" / "gt.txt").write_text("\n".join(_mot_lines(gt, False)) + "\n")
        (seq / "seqinfo.ini").write_text(
            f"[Sequence]\nname=pets\nimDir=img1\nframeRate={FPS:g}\nseqLength={frames_n}\n"
            f"imWidth={SIZE[1]}\nimHeight={SIZE[0]}\nimExt=.jpg\n")
        (root / "gt" / "seqmaps").mkdir()
        (root / "gt" / "seqmaps" / "PETS-dev.txt").write_text("name\npets\n")
        for name, tracks in trackers.items():
            d = root / "trackers" / "PETS-dev" / name / "data"
            d.mkdir(parents=True)
            (d / "pets.txt").write_text("\n".join(_mot_lines(tracks, True)) + "\n")
        ds = trackeval.datasets.MotChallenge2DBox({
            "GT_FOLDER": str(root / "gt"), "TRACKERS_FOLDER": str(root / "trackers"),
            "BENCHMARK": "PETS", "SPLIT_TO_EVAL": "dev", "TRACKERS_TO_EVAL": list(trackers),
            "DO_PREPROC": False, "PRINT_CONFIG": False, "SKIP_SPLIT_FOL": False,
            "SEQMAP_FILE": str(root / "gt" / "seqmaps" / "PETS-dev.txt")})
        ev = trackeval.Evaluator({"PRINT_RESULTS": False, "PRINT_CONFIG": False,
                                  "OUTPUT_SUMMARY": False, "OUTPUT_DETAILED": False,
                                  "PLOT_CURVES": False, "DISPLAY_LESS_PROGRESS": True,
                                  "TIME_PROGRESS": False, "USE_PARALLEL": False,
                                  "LOG_ON_ERROR": str(root / "error.log")})
        metrics = [trackeval.metrics.HOTA(), trackeval.metrics.CLEAR({"PRINT_CONFIG": False}),
                   trackeval.metrics.Identity({"PRINT_CONFIG": False})]
        with contextlib.redirect_stdout(io.StringIO()):
            res, _ = ev.evaluate([ds], metrics)
    out = {}
    for name in trackers:
        r = res["MotChallenge2DBox"][name]["COMBINED_SEQ"]["pedestrian"]
        h, c, i = r["HOTA"], r["CLEAR"], r["Identity"]
        out[name] = {"HOTA": round(100 * float(np.mean(h["HOTA"])), 2),
                     "DetA": round(100 * float(np.mean(h["DetA"])), 2),
                     "AssA": round(100 * float(np.mean(h["AssA"])), 2),
                     "MOTA": round(100 * float(c["MOTA"]), 2),
                     "IDF1": round(100 * float(i["IDF1"]), 2),
                     "IDSW": int(c["IDSW"]), "FP": int(c["CLR_FP"]), "FN": int(c["CLR_FN"]),
                     "ids": len({t for f in trackers[name].values() for t, _ in f})}
    return out


def merges(gt: Tracks, tracks: Tracks, min_frames: int = 5, iou: float = 0.5) -> dict[int, list[int]]:
    """Track ids that cover more than one GT person for ``min_frames``+ frames each (box IoU
    >= ``iou``, Hungarian per frame) -> {track id: [gt ids]}: identities that merged."""
    from scipy.optimize import linear_sum_assignment

    from vis.ops.boxes import box_iou

    counts: dict[tuple[int, int], int] = {}
    for f, trs in tracks.items():
        g = gt.get(f, [])
        if not trs or not g:
            continue
        m = box_iou(np.stack([b for _, b in trs]), np.stack([b for _, b in g]))
        rows, cols = linear_sum_assignment(-m)
        for r, c in zip(rows, cols, strict=True):
            if m[r, c] >= iou:
                key = (trs[r][0], g[c][0])
                counts[key] = counts.get(key, 0) + 1
    per: dict[int, list[int]] = {}
    for (t, g), n in counts.items():
        if n >= min_frames:
            per.setdefault(t, []).append(g)
    return {t: sorted(gs) for t, gs in per.items() if len(gs) > 1}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dets", choices=["foreign", "gt"], default="foreign")
    ap.add_argument("--interval", type=int, default=1)
    ap.add_argument("--set", action="append", default=[], dest="overrides")
    ap.add_argument("--frames", type=int, default=DEV_FRAMES)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    missing = available()
    if missing:
        raise SystemExit(f"pets09: {missing}")
    work = ROOT / "bench" / "results" / "tmp"
    work.mkdir(parents=True, exist_ok=True)
    gt = load_gt(frames=args.frames)
    tracks, timing = run_ours(detections_path(args.dets, work), args.interval, args.overrides,
                              count=args.frames)
    s = score_boxes(gt, {"ours": tracks}, args.frames)["ours"]
    print(json.dumps({**s, "merged_ids": len(merges(gt, tracks)),
                      "ms_per_frame": {k: round(v, 2) for k, v in timing.items()}}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
