"""Box tracking scores from TrackEval (``MotChallenge2DBox``: HOTA, CLEAR, Identity) and a
count of merged identities, for trackers given as per-frame (track id, xyxy box) lists.

Contract: ``score_boxes(gt, {name: tracks}, frames)`` writes the ground truth and every
tracker as MOTChallenge text into a temporary folder and runs one TrackEval evaluation;
``merges(gt, tracks)`` lists the track ids that covered more than one person.
"""

from __future__ import annotations

import contextlib
import io
import tempfile
from pathlib import Path

import numpy as np
from scipy.optimize import linear_sum_assignment

from vis.ops.boxes import box_iou

Tracks = dict[int, list[tuple[int, np.ndarray]]]  # frame -> [(track_id, xyxy)]


def _mot_lines(tracks: Tracks, with_conf: bool) -> list[str]:
    rows = []
    for f in sorted(tracks):
        for tid, b in tracks[f]:
            w, h = float(b[2] - b[0]), float(b[3] - b[1])
            tail = "1,1,1" if not with_conf else "1,-1,-1,-1"
            rows.append(f"{f + 1},{tid},{b[0]:.2f},{b[1]:.2f},{w:.2f},{h:.2f},{tail}")
    return rows


def score_boxes(
    gt: Tracks, trackers: dict[str, Tracks], frames_n: int, *, fps: float, size: tuple[int, int]
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
            f"[Sequence]\nname=pets\nimDir=img1\nframeRate={fps:g}\nseqLength={frames_n}\n"
            f"imWidth={size[1]}\nimHeight={size[0]}\nimExt=.jpg\n"
        )
        (root / "gt" / "seqmaps").mkdir()
        (root / "gt" / "seqmaps" / "PETS-dev.txt").write_text("name\npets\n")
        for name, tracks in trackers.items():
            d = root / "trackers" / "PETS-dev" / name / "data"
            d.mkdir(parents=True)
            (d / "pets.txt").write_text("\n".join(_mot_lines(tracks, True)) + "\n")
        ds = trackeval.datasets.MotChallenge2DBox(
            {
                "GT_FOLDER": str(root / "gt"),
                "TRACKERS_FOLDER": str(root / "trackers"),
                "BENCHMARK": "PETS",
                "SPLIT_TO_EVAL": "dev",
                "TRACKERS_TO_EVAL": list(trackers),
                "DO_PREPROC": False,
                "PRINT_CONFIG": False,
                "SKIP_SPLIT_FOL": False,
                "SEQMAP_FILE": str(root / "gt" / "seqmaps" / "PETS-dev.txt"),
            }
        )
        ev = trackeval.Evaluator(
            {
                "PRINT_RESULTS": False,
                "PRINT_CONFIG": False,
                "OUTPUT_SUMMARY": False,
                "OUTPUT_DETAILED": False,
                "PLOT_CURVES": False,
                "DISPLAY_LESS_PROGRESS": True,
                "TIME_PROGRESS": False,
                "USE_PARALLEL": False,
                "LOG_ON_ERROR": str(root / "error.log"),
            }
        )
        metrics = [
            trackeval.metrics.HOTA(),
            trackeval.metrics.CLEAR({"PRINT_CONFIG": False}),
            trackeval.metrics.Identity({"PRINT_CONFIG": False}),
        ]
        with contextlib.redirect_stdout(io.StringIO()):
            res, _ = ev.evaluate([ds], metrics)
    out = {}
    for name in trackers:
        r = res["MotChallenge2DBox"][name]["COMBINED_SEQ"]["pedestrian"]
        h, c, i = r["HOTA"], r["CLEAR"], r["Identity"]
        out[name] = {
            "HOTA": round(100 * float(np.mean(h["HOTA"])), 2),
            "DetA": round(100 * float(np.mean(h["DetA"])), 2),
            "AssA": round(100 * float(np.mean(h["AssA"])), 2),
            "MOTA": round(100 * float(c["MOTA"]), 2),
            "IDF1": round(100 * float(i["IDF1"]), 2),
            "IDSW": int(c["IDSW"]),
            "FP": int(c["CLR_FP"]),
            "FN": int(c["CLR_FN"]),
            "ids": len({t for f in trackers[name].values() for t, _ in f}),
        }
    return out


def frame_matches(gt: Tracks, tracks: Tracks, iou: float = 0.5) -> dict[int, dict[int, int]]:
    """Per frame, which track id covers which GT person: Hungarian on box IoU, pairs at
    ``iou`` or more -> {frame: {gt id: track id}}."""
    out: dict[int, dict[int, int]] = {}
    for f, trs in tracks.items():
        g = gt.get(f, [])
        if not trs or not g:
            continue
        m = box_iou(np.stack([b for _, b in trs]), np.stack([b for _, b in g]))
        rows, cols = linear_sum_assignment(-m)
        out[f] = {g[c][0]: trs[r][0] for r, c in zip(rows, cols, strict=True) if m[r, c] >= iou}
    return out


def merges(
    gt: Tracks, tracks: Tracks, min_frames: int = 5, iou: float = 0.5
) -> dict[int, list[int]]:
    """Track ids that cover more than one GT person for ``min_frames``+ frames each (box IoU
    >= ``iou``, Hungarian per frame) -> {track id: [gt ids]}: identities that merged."""
    counts: dict[tuple[int, int], int] = {}
    for pairs in frame_matches(gt, tracks, iou).values():
        for g, t in pairs.items():
            counts[(t, g)] = counts.get((t, g), 0) + 1
    per: dict[int, list[int]] = {}
    for (t, g), n in counts.items():
        if n >= min_frames:
            per.setdefault(t, []).append(g)
    return {t: sorted(gs) for t, gs in per.items() if len(gs) > 1}
