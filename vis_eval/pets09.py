"""PETS 2009 S2.L1 (``../shared/data/pets09-dev``): real pedestrians with identities, the dev
span (frames 0-399) that tracker defaults are chosen on.

Contract: ``available()`` says what is missing (a skip reason) or None; ``load_gt`` reads the
MOT15 ground truth; ``detections_path('foreign' | 'gt', work)`` gives the foreign detector's
file or writes the ground-truth boxes as detections without ids; ``run_ours`` runs the
footage and a detections file through ``StreamProcessor`` (the per-stream code the runner
drives) and returns our tracks per frame; ``score`` scores tracks with ``box_scoring``;
``run_phases`` runs it at every keyframe phase of an interval and ``phase_scores`` gives
HOTA per phase and fold with the mean and range; ``tracks_from_jsonl`` reads any run's
``vis.frame/1`` output on this footage (e.g. the street demo's ``out/street/vtest.jsonl``)
as tracks, and ``python -m vis_eval.pets09 FILE.jsonl`` scores it on the dev span.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import cv2
import numpy as np

from vis.detection.factory import build_detector
from vis.offline import advance, make_processor
from vis.ops.masks import BoxMask
from vis.ops.rle import encode_box_as_full
from vis.types import Frame, FrameResult
from vis_eval.box_scoring import Tracks, score_boxes
from vis_pipeline.config import load_config

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "pets09-dev"
VIDEO = Path.home() / ".cache" / "pets09" / "vtest.avi"
DEV_FRAMES = 400
FPS = 7.0
SIZE = (576, 768)  # H, W


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
                m = BoxMask.from_box(b, size)
                if not m.area:
                    continue
                insts.append(
                    {
                        "class_id": 1,
                        "label": "person",
                        "score": 1.0,
                        "bbox": [float(m.x0), float(m.y0), float(m.x1), float(m.y1)],
                        "mask": encode_box_as_full(m),
                    }
                )
            fh.write(
                json.dumps(
                    {
                        "schema": "vis.frame/1",
                        "stream_id": "pets",
                        "frame_index": f,
                        "timestamp_ms": f * 1000.0 / FPS,
                        "keyframe": True,
                        "width": w,
                        "height": h,
                        "instances": insts,
                    }
                )
                + "\n"
            )
    return path


def detections_path(kind: str, work: Path) -> Path:
    """``foreign`` (the shipped foreign detector's file), ``gt`` (written under ``work``) or
    ``foreign_boxes`` (the foreign detector's boxes without its masks, as a detector of
    boxes would give them; written under ``work``)."""
    if kind == "foreign":
        return DATA / "detections_dev.jsonl"
    if kind == "gt":
        p = work / "pets_gt_dets.jsonl"
        return p if p.is_file() else gt_detections(load_gt(), p)
    if kind == "foreign_boxes":
        p = work / "pets_foreign_boxes.jsonl"
        return p if p.is_file() else boxes_only(DATA / "detections_dev.jsonl", p)
    raise ValueError(f"detections kind {kind!r}: use foreign, gt or foreign_boxes")


def boxes_only(src: Path, path: Path) -> Path:
    """``src``'s detections with every mask replaced by its filled box (rounded to pixels)."""
    tmp = path.with_suffix(f".{os.getpid()}.part")
    with open(src, encoding="utf-8") as fin, open(tmp, "w", encoding="utf-8") as fout:
        for line in fin:
            rec = json.loads(line)
            size = (rec["height"], rec["width"])
            for inst in rec["instances"]:
                m = BoxMask.from_box(inst["bbox"], size)
                inst["bbox"] = [float(m.x0), float(m.y0), float(m.x1), float(m.y1)]
                inst["mask"] = encode_box_as_full(m)
            fout.write(json.dumps(rec) + "\n")
    tmp.replace(path)  # whole or absent: parallel runs may ask for it at once
    return path


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
    """configs/demo.yaml with precomputed detections, ``interval``, the tracker's own defaults
    (not the synthetic demo's tracker settings), and ``--set`` overrides."""
    sets = [
        "tracker={}",
        "detector.type=precomputed",
        f"detector.path={dets}",
        "detector.weights=null",
        f"keyframes.interval={interval}",
        *overrides,
    ]
    return load_config(ROOT / "configs" / "demo.yaml", sets)


def run_ours(
    dets: Path,
    interval: int = 1,
    overrides: list[str] = (),
    count: int = DEV_FRAMES,
    on_result: Callable[[FrameResult], None] | None = None,
    phase: int = 0,
    counts: dict | None = None,
) -> tuple[Tracks, dict]:
    """Our pipeline's per-stream processing on the footage -> (tracks per frame, timing);
    ``on_result`` sees every final result, in the order the runner would write them; the
    frames go through ``vis.offline.advance``, as in the runner. ``counts`` (if given)
    receives ``frames``, ``detector_calls`` and the schedule's ``keyframe_reasons``.

    ``phase`` (0 <= phase < interval): with the fixed keyframe policy, the keyframes after
    the first frame fall on frames ``phase``, ``phase + interval``, ... instead of
    ``interval``, ``2 x interval``, ...: where a camera's stream happens to start against
    the footage's events, which no user chooses. At N=5 one crossing can fall between two
    keyframes at one phase and on one at another, so a score at a single phase carries that
    luck. With a policy that saves calls (``adaptive``, ``interaction``), its credit starts
    ``phase / interval`` of a call lower: ``interaction`` then takes its first ``phase``
    keyframes of a quiet stretch one frame late (``interval + 1``, ``2 x (interval + 1)``,
    ...) and every ``interval`` frames after, on frames ``phase (mod interval)``.
    """
    cfg = pipeline_config(dets, interval, overrides)
    if not 0 <= phase < max(interval, 1):
        raise ValueError(f"phase {phase} needs 0 <= phase < interval ({interval})")
    fixed = cfg.keyframes.policy == "fixed"
    detector = build_detector(cfg.detector)
    proc = make_processor(
        offline=cfg.mode == "offline",
        stream_id="pets",
        labels=detector.labels,
        tracker=cfg.tracker,
        propagation=cfg.propagation,
        keyframes=cfg.keyframes,
        repair=cfg.repair,
    )
    if phase and not fixed:
        proc.schedule.credit -= phase / interval
    out: Tracks = {}
    detect_s = 0.0
    calls = 0

    def detect(batch: list[Frame]) -> list:
        nonlocal detect_s, calls
        t0 = time.perf_counter()
        found = detector.detect_frames(batch)
        detect_s += time.perf_counter() - t0
        calls += len(batch)
        return found

    try:
        for fr in frames(count=count):
            key = proc.is_keyframe(fr)
            if phase and fixed:
                key = fr.index == 0 or (fr.index >= phase and (fr.index - phase) % interval == 0)
            d = detect([fr])[0] if key else None
            for res, _ in advance(proc, fr, d, detect):
                _record(out, res, on_result)
        for res, _ in proc.finish():
            _record(out, res, on_result)
    finally:
        detector.close()
    if counts is not None:
        counts.update(
            frames=proc.frames,
            detector_calls=calls,
            keyframe_reasons=dict(proc.schedule.reasons),
        )
    n = max(proc.frames, 1)
    timing = {k: 1000.0 * v / n for k, v in proc.timer.seconds.items()}
    timing["detections_and_embedding"] = 1000.0 * detect_s / n
    return out, timing


def _record(out: Tracks, result, on_result: Callable[[FrameResult], None] | None) -> None:
    if on_result is not None:
        on_result(result)
    det = result.detections
    out[result.frame_index] = [(int(t), det.xyxy[i].copy()) for i, t in enumerate(det.track_ids)]


def score(
    gt: Tracks, trackers: dict[str, Tracks], frames_n: int = DEV_FRAMES
) -> dict[str, dict[str, float]]:
    """``box_scoring.score_boxes`` with this footage's frame rate and size."""
    return score_boxes(gt, trackers, frames_n, fps=FPS, size=SIZE)


#: the dev span split in time, for cross-validation: tune on one fold, report the other
FOLDS = {"A": (0, 200), "B": (200, 400)}


def span(tracks: Tracks, start: int, stop: int) -> Tracks:
    """The frames ``start <= f < stop`` of ``tracks``, renumbered from 0 (a fold in time:
    a tracker that ran through the whole video, scored on one stretch of it)."""
    return {f - start: list(tracks.get(f, [])) for f in range(start, stop)}


def score_span(
    gt: Tracks, trackers: dict[str, Tracks], start: int, stop: int
) -> dict[str, dict[str, float]]:
    """``score`` on the frames ``start <= f < stop`` only."""
    return score(
        span(gt, start, stop), {k: span(v, start, stop) for k, v in trackers.items()}, stop - start
    )


def run_phases(
    dets: Path,
    interval: int,
    overrides: list[str] = (),
    phases: Iterable[int] | None = None,
) -> list[Tracks]:
    """``run_ours`` at every keyframe phase (``phases``, default ``range(interval)``) ->
    the tracks of each run, in the order of ``phases``."""
    todo = range(interval) if phases is None else phases
    return [run_ours(dets, interval, overrides, phase=p)[0] for p in todo]


def phase_scores(gt: Tracks, runs: list[Tracks]) -> dict:
    """Runs at N > 1, one per keyframe phase (``runs[p]``: keyframes on frames p, p + N, ...
    after the first) -> HOTA of the whole span and of each fold per phase, and their mean
    and range: where the keyframes fall against the crossings moves N=5 by several HOTA,
    and a stream starts wherever it starts.

    Returns:
        ``{"by_phase": [{"whole", "A", "B"}, ...], "whole" | "A" | "B": {"mean", "min",
        "max"}}`` (HOTA, percentages rounded to 0.01; a run with no box in a span scores 0
        there).
    """

    def hota(tracks: Tracks, a: int, b: int) -> float:
        # a run with no box in the span scores zero there (TrackEval cannot read it)
        if not any(tracks.get(f) for f in range(a, b)):
            return 0.0
        return round(score_span(gt, {"o": tracks}, a, b)["o"]["HOTA"], 2)

    per = []
    for tracks in runs:
        row = {"whole": hota(tracks, 0, DEV_FRAMES)}
        for fold, (a, b) in FOLDS.items():
            row[fold] = hota(tracks, a, b)
        per.append(row)
    return {
        "by_phase": per,
        **{
            k: {
                "mean": round(statistics.mean(r[k] for r in per), 2),
                "min": min(r[k] for r in per),
                "max": max(r[k] for r in per),
            }
            for k in per[0]
        },
    }


def tracks_from_jsonl(path: Path, frames_n: int = DEV_FRAMES) -> Tracks:
    """A ``vis.frame/1`` JSONL of this footage -> {frame: [(track_id, xyxy)]} for frames < n."""
    out: Tracks = {f: [] for f in range(frames_n)}
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            if not line.strip():
                continue
            rec = json.loads(line)
            f = int(rec["frame_index"])
            if 0 <= f < frames_n:
                out[f] = [
                    (int(i["track_id"]), np.asarray(i["bbox"], np.float32))
                    for i in rec["instances"]
                    if i.get("track_id") is not None
                ]
    return out


def main(argv: list[str]) -> int:
    """``python -m vis_eval.pets09 FILE.jsonl``: HOTA, IDF1, id switches on frames 0-399."""
    if len(argv) != 1:
        print("usage: python -m vis_eval.pets09 OUTPUT.jsonl (a run on vtest.avi)", file=sys.stderr)
        return 2
    if not (DATA / "gt.txt").is_file():
        print(f"{DATA} is absent (the shared real-data folder beside the project)", file=sys.stderr)
        return 2
    result = score(load_gt(), {"ours": tracks_from_jsonl(Path(argv[0]))})["ours"]
    print(
        " ".join(f"{k} {v:.2f}" if isinstance(v, float) else f"{k} {v}" for k, v in result.items())
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
