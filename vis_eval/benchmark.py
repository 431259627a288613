"""Score prediction folders against a ground-truth folder: tracking (TrackEval), mask AP
(pycocotools) and mask IoU of propagated vs keyframe frames, per sequence and combined.

Contract: ``load_ground_truth(gt_dir)`` finds the sequences (``<seq>.gt.txt``, or
``<seq>.txt``, MOTS text with 0-based frames) and their lengths (``manifest.json`` from
``bench.make_set``, else the ``<seq>.mp4`` frame count, else the last annotated frame + 1);
``load_predictions(pred_dir, gt)`` reads ``<seq>.jsonl`` (``vis.frame/1``, preferred) or
``<seq>.txt`` (MOTS text) for every sequence; ``evaluate(gt, {name: predictions})`` returns
a JSON-ready dict. A missing prediction file raises ``EvaluationError`` naming it.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from vis_eval.coco_ap import coco_mask_ap_rle
from vis_eval.mask_quality import frame_mask_iou
from vis_eval.sequences import EvaluationError, TrackSequence, read_mots, read_tracks
from vis_eval.synthetic import CLASS_NAMES  # the classes scored per class and in mask AP
from vis_eval.tables import Column
from vis_eval.trackeval_mots import evaluate_tracking

log = logging.getLogger(__name__)

#: how the numbers are obtained, copied into every result
SCORING_NOTES = {
    "tracking": "TrackEval 1.3.0, MOTSChallenge reader (masks), metrics HOTA/CLEAR/Identity, "
    "one call for all trackers; class-agnostic (all instances as one class); "
    "overlapping predicted masks made disjoint by score before scoring",
    "mask_AP": "pycocotools COCOeval segm over every frame of every sequence, per class "
    "(disk, box, star); scores are the tracks' last keyframe detection scores",
    "mask_iou": "Hungarian match on mask IoU >= 0.5 per frame; prop_* over non-keyframe "
    "(propagated) frames, key_* over keyframes; *_miou_matched = mean IoU of "
    "matched pairs, *_miou_gt = mean over GT instances (0 if unmatched)",
}

#: the default table columns
TABLE_COLUMNS: list[Column] = [
    ("tracker", "tracker", "s"),
    ("sequence", "sequence", "s"),
    ("HOTA", "HOTA", ".1f"),
    ("DetA", "DetA", ".1f"),
    ("AssA", "AssA", ".1f"),
    ("MOTSA", "MOTSA", ".1f"),
    ("IDF1", "IDF1", ".1f"),
    ("IDSW", "IDSW", "d"),
    ("mask_AP", "mask AP", ".1f"),
    ("prop_miou_matched", "prop mIoU", ".1f"),
    ("key_miou_matched", "key mIoU", ".1f"),
]


class GroundTruth:
    """The ground truth of a folder of sequences.

    Attributes:
        sequences: name -> tracks.
        lengths: name -> number of frames.
        manifest: the folder's ``manifest.json`` (empty if none).
    """

    def __init__(
        self,
        sequences: dict[str, TrackSequence],
        lengths: dict[str, int],
        manifest: dict | None = None,
    ) -> None:
        self.sequences = sequences
        self.lengths = lengths
        self.manifest = manifest or {}

    def __len__(self) -> int:
        return len(self.sequences)


def _video_frames(path: Path) -> int | None:
    import cv2  # noqa: PLC0415 - only when a video must be measured

    cap = cv2.VideoCapture(str(path))
    try:
        n = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
    finally:
        cap.release()
    return n if n > 0 else None


def load_ground_truth(gt_dir: str | Path, sequences: list[str] | None = None) -> GroundTruth:
    """Read every ``<seq>.gt.txt`` (or, if there is none, ``<seq>.txt``) of ``gt_dir``."""
    gt_dir = Path(gt_dir)
    if not gt_dir.is_dir():
        raise EvaluationError(f"ground-truth folder {gt_dir} not found")
    files = {p.name[: -len(".gt.txt")]: p for p in sorted(gt_dir.glob("*.gt.txt"))}
    if not files:
        files = {p.stem: p for p in sorted(gt_dir.glob("*.txt"))}
    if sequences:
        missing = sorted(set(sequences) - set(files))
        if missing:
            raise EvaluationError(f"no ground truth for {', '.join(missing)} in {gt_dir}")
        files = {k: v for k, v in files.items() if k in sequences}
    if not files:
        raise EvaluationError(f"no ground truth (<seq>.gt.txt or <seq>.txt) in {gt_dir}")
    manifest = {}
    if (gt_dir / "manifest.json").is_file():
        manifest = json.loads((gt_dir / "manifest.json").read_text())
    known = {s["name"]: int(s["frames"]) for s in manifest.get("sequences", [])}
    seqs, lengths = {}, {}
    for name, path in files.items():
        seqs[name] = read_mots(path)
        n = known.get(name)
        if n is None and (gt_dir / f"{name}.mp4").is_file():
            n = _video_frames(gt_dir / f"{name}.mp4")
        lengths[name] = n if n is not None else seqs[name].last_frame + 1
    return GroundTruth(seqs, lengths, manifest)


def prediction_path(pred_dir: str | Path, seq: str) -> Path:
    """``<pred_dir>/<seq>.jsonl`` if it exists, else ``<pred_dir>/<seq>.txt``."""
    pred_dir = Path(pred_dir)
    for p in (pred_dir / f"{seq}.jsonl", pred_dir / f"{seq}.txt"):
        if p.is_file():
            return p
    raise EvaluationError(
        f"no prediction for sequence {seq!r}: expected {pred_dir / seq}.jsonl "
        f"(vis.frame/1) or {pred_dir / seq}.txt (MOTS)"
    )


def load_predictions(pred_dir: str | Path, gt: GroundTruth) -> dict[str, TrackSequence]:
    """Every ground-truth sequence's prediction from ``pred_dir``."""
    return {seq: read_tracks(prediction_path(pred_dir, seq)) for seq in gt.sequences}


def _pooled_iou(parts: list[dict]) -> dict:
    matched = sum(p["matched"] for p in parts)
    n_gt = sum(p["gt_instances"] for p in parts)
    frames = sum(p["frames"] for p in parts)
    if frames == 0:
        return {"miou_matched": None, "miou_gt": None, "gt_instances": 0, "matched": 0, "frames": 0}
    total = sum(p["miou_matched"] * p["matched"] for p in parts if p["matched"])
    return {
        "miou_matched": round(total / matched, 3) if matched else 0.0,
        "miou_gt": round(total / n_gt, 3) if n_gt else 0.0,
        "gt_instances": n_gt,
        "matched": matched,
        "frames": frames,
    }


def _mask_ap(gt: GroundTruth, preds: dict[str, TrackSequence], seqs: list[str]) -> dict:
    g_all, p_all = [], []
    for s in seqs:
        for f in range(gt.lengths[s]):
            g_all.append([(i.rle, i.class_id) for i in gt.sequences[s].instances(f)])
            p_all.append([(i.rle, i.class_id, i.score) for i in preds[s].instances(f)])
    if not any(g_all):
        return {}
    return coco_mask_ap_rle(g_all, p_all, class_names=CLASS_NAMES)


def evaluate(
    gt: GroundTruth,
    trackers: dict[str, dict[str, TrackSequence]],
    *,
    mask_ap: bool = True,
    mask_iou: bool = True,
    per_class: bool = False,
    work_dir: str | Path | None = None,
) -> dict:
    """Score every tracker on every sequence of ``gt``.

    Args:
        gt: ground truth (``load_ground_truth``).
        trackers: tracker name -> sequence -> predicted tracks.
        mask_ap: add pycocotools mask AP (per sequence and over all).
        mask_iou: add the mean mask IoU of propagated and of keyframe frames (JSONL only).
        per_class: also run the tracking metrics on each class alone (ground truth and
            predictions filtered to that class).
        work_dir: keep TrackEval's input files here (default: a temporary folder).

    Returns:
        ``{"trackers": {name: {"combined": {...}, "sequences": {seq: {...}},
        ["per_class": {class: {...}}]}}, "lengths": {...}, "scoring": SCORING_NOTES}``.
    """
    lengths = dict(gt.lengths)
    for seqs in trackers.values():
        for s, p in seqs.items():
            if s in lengths and p.last_frame >= lengths[s]:
                raise EvaluationError(
                    f"prediction for {s!r} has frame {p.last_frame} but the "
                    f"sequence has {lengths[s]} frames"
                )
    scores = evaluate_tracking(gt.sequences, lengths, trackers, work_dir=work_dir)
    names = list(gt.sequences)
    for name, preds in trackers.items():
        out = scores[name]
        if mask_ap:
            for s in names:
                out["sequences"][s].update(_mask_ap(gt, preds, [s]))
            out["combined"].update(_mask_ap(gt, preds, names))
        if mask_iou and all(preds[s].keyframes is not None for s in names):
            for kind in ("prop", "key"):
                parts = []
                for s in names:
                    kf = preds[s].keyframes
                    frames = [
                        f
                        for f in range(lengths[s])
                        if f in preds[s].frames and ((f in kf) == (kind == "key"))
                    ]
                    r = frame_mask_iou(gt.sequences[s], preds[s], frames)
                    parts.append(r)
                    out["sequences"][s].update({f"{kind}_{k}": v for k, v in r.items()})
                out["combined"].update({f"{kind}_{k}": v for k, v in _pooled_iou(parts).items()})
    if per_class:
        for cid, cname in CLASS_NAMES.items():
            g = {s: q.filter_class(cid) for s, q in gt.sequences.items()}
            t = {n: {s: q.filter_class(cid) for s, q in p.items()} for n, p in trackers.items()}
            cls_scores = evaluate_tracking(g, lengths, t)
            for name in trackers:
                scores[name].setdefault("per_class", {})[cname] = cls_scores[name]["combined"]
    return {"trackers": scores, "lengths": lengths, "scoring": SCORING_NOTES}


def result_rows(result: dict, *, sequences: bool = True) -> list[dict]:
    """Flatten ``evaluate``'s result into table rows (per sequence, then COMBINED)."""
    rows = []
    for name, r in result["trackers"].items():
        if sequences:
            rows += [{"tracker": name, "sequence": s, **v} for s, v in r["sequences"].items()]
        rows.append({"tracker": name, "sequence": "COMBINED", **r["combined"]})
    return rows
