"""Tracking metrics from TrackEval on masks: HOTA (DetA, AssA, LocA), CLEAR (MOTSA, sMOTSA,
ID switches), Identity (IDF1).

Contract: ``evaluate_tracking(gt, lengths, trackers)`` writes ground truth and every
tracker's sequences as MOTSChallenge text into a work folder, runs one
``trackeval.Evaluator.evaluate`` call with ``trackeval.datasets.MOTSChallenge`` and the
``HOTA``, ``CLEAR`` and ``Identity`` metrics, and returns, per tracker, the metrics of each
sequence and of all sequences combined (TrackEval's own combination: summed counts, not a
mean of per-sequence scores). Scores are percentages; counts are integers.

Scoring is class-agnostic (see ``vis_eval.sequences``): a track is matched to ground
truth by mask IoU whatever class it was given. With TrackEval's MOTS data, CLEAR's MOTA is
MOTSA and its sMOTA is sMOTSA; both are reported under those names.
"""

from __future__ import annotations

import contextlib
import io
import logging
import shutil
import tempfile
from pathlib import Path

import numpy as np

from streams.sinks import safe_name
from vis_eval.sequences import EvaluationError, TrackSequence, trackeval_lines

log = logging.getLogger(__name__)

#: the metrics every result carries, in table order
TRACKING_FIELDS = (
    "HOTA",
    "DetA",
    "AssA",
    "LocA",
    "DetRe",
    "DetPr",
    "AssRe",
    "AssPr",
    "MOTSA",
    "sMOTSA",
    "MOTSP",
    "IDF1",
    "IDP",
    "IDR",
    "IDSW",
    "Frag",
    "MT",
    "PT",
    "ML",
    "TP",
    "FP",
    "FN",
    "gt_dets",
    "dets",
    "gt_ids",
    "ids",
)


def _trackeval_name(name: str) -> str:
    """``safe_name(name)``, refused if TrackEval cannot use it as a file or folder name."""
    out = safe_name(name)
    if not out or out == "COMBINED_SEQ":
        raise EvaluationError(f"name {name!r} cannot be used as a TrackEval folder name")
    return out


def _summary(r: dict) -> dict[str, float | int]:
    """One TrackEval result (``res[seq][cls]``) -> our flat dict."""
    h, c, i, n = r["HOTA"], r["CLEAR"], r["Identity"], r["Count"]
    pct = lambda v: round(100.0 * float(np.mean(v)), 3)  # noqa: E731 - HOTA fields are per alpha
    return {
        "HOTA": pct(h["HOTA"]),
        "DetA": pct(h["DetA"]),
        "AssA": pct(h["AssA"]),
        "LocA": pct(h["LocA"]),
        "DetRe": pct(h["DetRe"]),
        "DetPr": pct(h["DetPr"]),
        "AssRe": pct(h["AssRe"]),
        "AssPr": pct(h["AssPr"]),
        "MOTSA": pct(c["MOTA"]),
        "sMOTSA": pct(c["sMOTA"]),
        "MOTSP": pct(c["MOTP"]),
        "IDF1": pct(i["IDF1"]),
        "IDP": pct(i["IDP"]),
        "IDR": pct(i["IDR"]),
        "IDSW": int(c["IDSW"]),
        "Frag": int(c["Frag"]),
        "MT": int(c["MT"]),
        "PT": int(c["PT"]),
        "ML": int(c["ML"]),
        "TP": int(c["CLR_TP"]),
        "FP": int(c["CLR_FP"]),
        "FN": int(c["CLR_FN"]),
        "gt_dets": int(n["GT_Dets"]),
        "dets": int(n["Dets"]),
        "gt_ids": int(n["GT_IDs"]),
        "ids": int(n["IDs"]),
    }


def write_trackeval_folder(
    root: Path,
    gt: dict[str, TrackSequence],
    lengths: dict[str, int],
    trackers: dict[str, dict[str, TrackSequence]],
) -> dict[str, str]:
    """Write ``root/gt/<seq>.txt`` and ``root/trackers/<name>/data/<seq>.txt``.

    Returns:
        tracker name -> its folder name under ``root/trackers``.
    """
    (root / "gt").mkdir(parents=True, exist_ok=True)
    for seq, g in gt.items():
        (root / "gt" / f"{_trackeval_name(seq)}.txt").write_text(
            "".join(line + "\n" for line in trackeval_lines(g, n_frames=lengths[seq]))
        )
    folders: dict[str, str] = {}
    for name, seqs in trackers.items():
        folder = _trackeval_name(name)
        if folder in folders.values():
            raise EvaluationError(f"two trackers map to the folder name {folder!r}")
        folders[name] = folder
        data = root / "trackers" / folder / "data"
        data.mkdir(parents=True, exist_ok=True)
        for seq in gt:
            if seq not in seqs:
                raise EvaluationError(f"tracker {name!r} has no result for sequence {seq!r}")
            try:
                lines = trackeval_lines(seqs[seq], n_frames=lengths[seq])
            except EvaluationError as exc:
                raise EvaluationError(f"tracker {name!r}, sequence {seq!r}: {exc}") from None
            (data / f"{_trackeval_name(seq)}.txt").write_text(
                "".join(line + "\n" for line in lines)
            )
    return folders


def evaluate_tracking(
    gt: dict[str, TrackSequence],
    lengths: dict[str, int],
    trackers: dict[str, dict[str, TrackSequence]],
    *,
    work_dir: str | Path | None = None,
) -> dict[str, dict]:
    """Score every tracker on every sequence with one TrackEval call.

    Args:
        gt: sequence name -> ground truth.
        lengths: sequence name -> number of frames (frames past the last annotation count).
        trackers: tracker name -> sequence name -> predicted tracks (every ``gt`` sequence).
        work_dir: where to write TrackEval's input (kept); default a temporary folder.

    Returns:
        tracker name -> ``{"combined": {...}, "sequences": {seq: {...}}}`` with the
        ``TRACKING_FIELDS``.
    """
    import trackeval  # noqa: PLC0415 - heavy import, only when scoring

    if not gt:
        raise EvaluationError("no ground-truth sequence to score")
    if not trackers:
        raise EvaluationError("no tracker to score")
    tmp = None
    if work_dir is None:
        tmp = tempfile.mkdtemp(prefix="vis-trackeval-")
        root = Path(tmp)
    else:
        root = Path(work_dir)
        if root.exists():
            shutil.rmtree(root)
    try:
        folders = write_trackeval_folder(root, gt, lengths, trackers)
        seq_names = {_trackeval_name(s): s for s in gt}
        dataset_cfg = {
            "GT_FOLDER": str(root / "gt"),
            "TRACKERS_FOLDER": str(root / "trackers"),
            "OUTPUT_FOLDER": str(root / "out"),
            "TRACKERS_TO_EVAL": list(folders.values()),
            "CLASSES_TO_EVAL": ["pedestrian"],
            "SKIP_SPLIT_FOL": True,
            "SEQ_INFO": {k: lengths[v] for k, v in seq_names.items()},
            "GT_LOC_FORMAT": "{gt_folder}/{seq}.txt",
            "PRINT_CONFIG": False,
        }
        eval_cfg = {
            "USE_PARALLEL": False,
            "BREAK_ON_ERROR": True,
            "RETURN_ON_ERROR": False,
            "LOG_ON_ERROR": None,
            "PRINT_RESULTS": False,
            "PRINT_CONFIG": False,
            "TIME_PROGRESS": False,
            "OUTPUT_SUMMARY": False,
            "OUTPUT_DETAILED": False,
            "PLOT_CURVES": False,
        }
        out = io.StringIO()
        with contextlib.redirect_stdout(out):  # TrackEval prints progress to stdout
            evaluator = trackeval.Evaluator(eval_cfg)
            dataset = trackeval.datasets.MOTSChallenge(dataset_cfg)
            metrics = [
                trackeval.metrics.HOTA(),
                trackeval.metrics.CLEAR(),
                trackeval.metrics.Identity(),
            ]
            res, msg = evaluator.evaluate([dataset], metrics)
        log.debug("TrackEval output:\n%s", out.getvalue())
        res, msg = res["MOTSChallenge"], msg["MOTSChallenge"]
        scores: dict[str, dict] = {}
        for name, folder in folders.items():
            if res.get(folder) is None:
                raise EvaluationError(f"TrackEval could not score {name!r}: {msg.get(folder)}")
            r = res[folder]
            scores[name] = {
                "combined": _summary(r["COMBINED_SEQ"]["pedestrian"]),
                "sequences": {
                    seq_names[k]: _summary(v["pedestrian"])
                    for k, v in r.items()
                    if k != "COMBINED_SEQ"
                },
            }
        return scores
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
