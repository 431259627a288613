"""DAVIS 2016 (``../shared/data/davis2016/DAVIS``): real video, one annotated object per frame.

Contract: ``available(root)`` says what is missing (a skip reason) or None; ``load_gt(root,
seq)`` reads the sequence's annotation masks; ``masks_by_track(seq)`` decodes a prediction
``TrackSequence``; ``score_object(gt, pred)`` scores the tracks against the one object;
``run_sequences(root, names, interval, overrides, out)`` runs the pipeline over sequences'
frames (``configs/street.yaml`` by default) and scores each; ``PEOPLE`` are the sequences
of one person.

Scoring (DAVIS J is the region similarity, the mask IoU with the annotation):

* ``track_id``: the one predicted track that covers the object most, i.e. the id with the
  highest IoU with the annotation summed over the frames;
* ``J_track``: that track's IoU, averaged over the frames where the object is annotated
  (0 where the track has no mask): what a user following one id gets;
* ``J_best``: per frame the best IoU of any predicted mask, averaged: the same without
  identities (an upper bound of ``J_track``);
* ``ids``: distinct track ids that are a frame's best match at IoU >= ``hit_iou`` (1 = the
  object kept one identity; more = it was handed from id to id);
* ``missed``: annotated frames where no predicted mask reaches ``hit_iou``.

Frames whose annotation is empty (the object fully hidden) are left out of every average.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
from pycocotools import mask as mask_utils

from streams.sinks import jsonl_path
from vis_eval.sequences import TrackSequence, read_jsonl
from vis_pipeline import load_config, run

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "davis2016" / "DAVIS"
#: the configuration the sequences run through, and what every run sets on top of it
CONFIG = ROOT / "configs" / "street.yaml"
RUN_SETTINGS = [
    "detector.classes=null",  # every class of the model: a miss is the model's, not a filter's
    "detector.threads=1",
    "fps=24",
    "sinks.overlay=false",
    "sinks.jsonl=true",
    "sinks.kafka=null",
    "resume=false",
]
#: the sequences at hand and what the annotated object is
SEQUENCES = {
    "lucia": "person",
    "dance-twirl": "person",
    "stroller": "person + stroller",
    "bmx-trees": "rider + bike",
    "car-shadow": "car",
    "car-roundabout": "car",
}
#: the sequences whose annotated object is one person
PEOPLE = ["lucia", "dance-twirl"]
HIT_IOU = 0.5

#: (frame -> [(track_id, (H, W) bool mask)])
PredMasks = dict[int, list[tuple[int, np.ndarray]]]


def frames_dir(root: Path, seq: str) -> Path:
    return root / "JPEGImages" / "480p" / seq


def available(root: Path = DATA, sequences: list[str] | None = None) -> str | None:
    """None when every sequence's frames and annotations are here, else what is missing."""
    if not root.is_dir():
        return f"{root} is absent (the shared real-data folder beside the project)"
    for seq in sequences or list(SEQUENCES):
        for sub in (frames_dir(root, seq), root / "Annotations" / "480p" / seq):
            if not sub.is_dir():
                return f"{sub} is absent"
    return None


def load_gt(root: Path, seq: str) -> list[np.ndarray]:
    """The annotation of every frame, in order: (H, W) bool masks (pixel > 127)."""
    files = sorted((root / "Annotations" / "480p" / seq).glob("*.png"))
    out = []
    for f in files:
        m = cv2.imread(str(f), cv2.IMREAD_GRAYSCALE)
        if m is None:
            raise ValueError(f"{f}: not a readable annotation image")
        out.append(m > 127)
    return out


def masks_by_track(seq: TrackSequence) -> PredMasks:
    """Decode a prediction sequence: frame -> [(track_id, (H, W) bool mask)]."""
    return {
        f: [(i.track_id, mask_utils.decode(i.rle).astype(bool)) for i in insts]
        for f, insts in seq.frames.items()
    }


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    union = np.logical_or(a, b).sum()
    return float(np.logical_and(a, b).sum() / union) if union else 0.0


def score_object(gt: list[np.ndarray], pred: PredMasks, *, hit_iou: float = HIT_IOU) -> dict:
    """Score predicted tracks against the one annotated object of a sequence.

    Args:
        gt: per frame (index = frame) the object's (H, W) bool mask.
        pred: frame -> [(track_id, (H, W) bool mask)] (frames without output may be absent).
        hit_iou: IoU at which a mask counts as covering the object.

    Returns:
        ``{"frames", "annotated", "track_id", "J_track", "J_best", "ids", "missed"}`` (see the
        module docstring); ``track_id`` is None when no mask ever overlaps the object.
    """
    annotated = [f for f, g in enumerate(gt) if g.any()]
    per_track: dict[int, dict[int, float]] = {}  # track -> frame -> IoU
    best: dict[int, tuple[int | None, float]] = {}  # frame -> (best track, IoU)
    for f in annotated:
        top: tuple[int | None, float] = (None, 0.0)
        for tid, m in pred.get(f, []):
            if m.shape != gt[f].shape:
                raise ValueError(f"frame {f}: mask shape {m.shape} != annotation {gt[f].shape}")
            v = _iou(m, gt[f])
            track = per_track.setdefault(tid, {})
            track[f] = max(track.get(f, 0.0), v)
            if v > top[1]:
                top = (tid, v)
        best[f] = top
    n = max(len(annotated), 1)
    totals = {t: sum(v.values()) for t, v in per_track.items()}
    track_id = max(totals, key=lambda t: (totals[t], -t)) if any(totals.values()) else None
    j_track = totals[track_id] / n if track_id is not None else 0.0
    hits = {f: t for f, (t, v) in best.items() if v >= hit_iou}
    return {
        "frames": len(gt),
        "annotated": len(annotated),
        "track_id": track_id,
        "J_track": round(j_track, 4),
        "J_best": round(sum(v for _, v in best.values()) / n, 4),
        "ids": len(set(hits.values())),
        "missed": len(annotated) - len(hits),
    }


def run_sequences(
    root: Path,
    names: list[str],
    interval: int,
    overrides: list[str],
    out: Path,
    config: Path = CONFIG,
) -> list[dict]:
    """One pipeline run (``vis_pipeline.run``) over the frames of ``names``, one sequence
    after the other, at keyframe interval ``interval``; each sequence's JSONL (under ``out``)
    read back and scored by ``score_object``.

    Args:
        root: the DAVIS folder.
        names: sequence names.
        interval: keyframe interval N.
        overrides: ``--set`` overrides after ``RUN_SETTINGS`` (e.g. ``detector.weights=...``).
        out: output folder (created).
        config: the YAML configuration.

    Returns:
        One row per sequence: ``{"sequence", "object", "N", **score_object, "fps"}`` (fps =
        the stream's frames over its wall time, model loading excluded).
    """
    out.mkdir(parents=True, exist_ok=True)
    cfg = load_config(
        config,
        [*RUN_SETTINGS, f"keyframes.interval={interval}", *overrides],
        sources=[str(frames_dir(root, n)) for n in names],
        output=str(out),
    )
    summary = run(cfg, progress=False).to_json()
    if summary.get("exit_code"):
        raise RuntimeError(f"pipeline failed: {summary.get('error')}")
    streams = {s["stream_id"]: s for s in summary.get("streams", [])}
    rows = []
    for name in names:
        pred = masks_by_track(read_jsonl(jsonl_path(out, name)))
        row = {
            "sequence": name,
            "object": SEQUENCES.get(name, "?"),
            "N": interval,
            **score_object(load_gt(root, name), pred),
        }
        st = streams.get(name, {})
        row["fps"] = round(st["frames"] / st["seconds"], 2) if st.get("seconds") else None
        rows.append(row)
    return rows
