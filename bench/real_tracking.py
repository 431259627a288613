"""Ours and every peer box tracker on identical detections on real pedestrians: PETS 2009
S2.L1, dev span (frames 0-399, ``vis_eval.pets09``), boxes scored with TrackEval.

    PYTHONPATH=. .venv/bin/python -m bench.real_tracking              # peers + ours
    PYTHONPATH=. .venv/bin/python -m bench.real_tracking --only ours  # ours; peer rows cached
    PYTHONPATH=. .venv/bin/python -m bench.real_tracking --only peers # peers; our rows cached

Detections: ``foreign`` (``detections_dev.jsonl``, a YOLO detector that is not ours, every
frame) and ``gt`` (the ground-truth boxes without ids), each at keyframe interval N=1 and
N=5. At N=5 the peers get the detections of frames 0, 5, 10, ... and empty lists on the
frames between (what a box tracker gets from a keyframe pipeline); ours gets the same
keyframes through ``keyframes.interval`` and propagates by optical flow between them.

* peers: ``bench/peers_runner.py`` in its own venv (``bench/.venv-peers``; settings as
  there: lost tracks kept 60 frames), one process per tracker, on boxes-only copies of the
  detections and the footage under ``bench/results/tmp/real_tracking``;
* ``iou``: ``IouTracker`` below, a frame-to-frame box IoU + Hungarian baseline;
* ours: ``vis_eval.pets09.run_ours`` (configs/demo.yaml with precomputed detections).

Everything of one (kind, N) is scored by one ``pets09.score`` call, and again on each fold of
the dev span split in time (``pets09.FOLDS``: A = frames 0-199, B = 200-399; the trackers ran
through all 400); merged identities by ``box_scoring.merges``; every crossing of two people
in the ground truth (``vis_eval.crossings``: boxes overlapping 3+ frames) by the id switches
of its two people from 5 frames before to 5 after, and whether both left with the id they
entered with. ``real_tracking_ids.png`` draws, for the foreign detector at N=1, each
person's covering track id over time for ours and the best peer, crossings shaded.
Time per frame: peers = their update calls (peers_runner's
timing.json), iou = its update calls, ours = the flow + propagate + track stages, with
reading the detections file + embedding reported apart.

Peer and iou rows do not change when our tracker changes: ``--only ours`` keeps them from
the last ``bench/results/real_tracking.json`` (and ``--only peers`` keeps ours).

The peers venv is created when missing. The four peer packages cannot be installed by one pip
command (norfair 2.3.0 pins numpy<2, boxmot 25 needs numpy>=2.2): ``VENV_STEPS`` installs
them in three steps, norfair with ``--no-deps``.
Writes bench/results/real_tracking.{json,md}.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import hashlib
import json
import logging
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from scipy.optimize import linear_sum_assignment

from bench.peers_runner import ALL as PEERS
from bench.peers_runner import MAX_LOST, NORFAIR_MIN_SCORE
from vis.ops.boxes import box_iou
from vis_eval.box_scoring import Tracks
from vis_eval.pets09 import phase_scores
from vis_eval.tables import markdown_table

log = logging.getLogger("bench.real_tracking")

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
WORK = RESULTS / "tmp" / "real_tracking"
PEERS_PY = ROOT / "bench" / ".venv-peers" / "bin" / "python"
KINDS = ("foreign", "gt")
INTERVALS = (1, 5)
SEQ = "pets"
#: the code the rows depend on (git paths): a row records its uncommitted changes
CODE = (
    "vis",
    "vis_eval",
    "vis_pipeline",
    "configs",
    "bench/peers_runner.py",
    "bench/real_tracking.py",
)
COMMAND = "PYTHONPATH=. .venv/bin/python -m bench.real_tracking"
#: shell commands, run from the repository root, that build bench/.venv-peers
VENV_STEPS = (
    "python3 -m venv bench/.venv-peers",
    "bench/.venv-peers/bin/pip install torch==2.14.1 torchvision==0.29.1",
    "printf 'torch==2.14.1\\ntorchvision==0.29.1\\n' > /tmp/peers-constraints.txt",
    "bench/.venv-peers/bin/pip install -c /tmp/peers-constraints.txt boxmot==25.0.0",
    "bench/.venv-peers/bin/pip install -c /tmp/peers-constraints.txt trackers==2.6.1 "
    "supervision==0.31.2",
    "bench/.venv-peers/bin/pip install --no-deps norfair==2.3.0",
)
OURS, IOU = "ours", "iou"
LABELS = {
    OURS: "ours",
    IOU: "box IoU + Hungarian (baseline)",
    "boxmot_bytetrack": "boxmot ByteTrack",
    "boxmot_ocsort": "boxmot OC-SORT",
    "boxmot_botsort": "boxmot BoT-SORT (no ReID)",
    "rf_bytetrack": "Roboflow ByteTrack",
    "norfair": "norfair (IoU)",
}
TITLES = {
    "foreign": "Detections: foreign detector (YOLOv8n-seg, detections_dev.jsonl)",
    "gt": "Detections: ground-truth boxes without ids",
}


class IouTracker:
    """Frame-to-frame box IoU + Hungarian: each detection takes the id of the live track whose
    last box it overlaps most (one-to-one, IoU >= ``min_iou``); the others start new ids. A
    track unmatched for more than ``max_lost`` frames ends. No motion model, no appearance.
    Call once per frame, in order, also with no detections; ids are counted per instance.
    """

    def __init__(
        self,
        *,
        min_iou: float = 0.3,
        min_score: float = NORFAIR_MIN_SCORE,
        max_lost: int = MAX_LOST,
    ) -> None:
        self.min_iou, self.min_score, self.max_lost = min_iou, min_score, max_lost
        self._next_id = 1
        self._last: dict[int, tuple[np.ndarray, int]] = {}  # id -> (last box, its frame)

    def update(
        self, boxes: np.ndarray, scores: np.ndarray, frame: int
    ) -> list[tuple[int, np.ndarray]]:
        """boxes (N, 4) xyxy, scores (N,) -> [(track id, (4,) box)] of this frame's detections
        that score >= ``min_score``."""
        boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
        boxes = boxes[np.asarray(scores).reshape(-1) >= self.min_score]
        self._last = {t: v for t, v in self._last.items() if frame - v[1] <= self.max_lost}
        ids = list(self._last)
        iou = box_iou(np.array([self._last[t][0] for t in ids]).reshape(-1, 4), boxes)
        assigned: dict[int, int] = {}
        for r, c in zip(*linear_sum_assignment(-iou)):
            if iou[r, c] >= self.min_iou:
                assigned[int(c)] = ids[r]
        out = []
        for k, b in enumerate(boxes):
            tid = assigned.get(k)
            if tid is None:
                tid, self._next_id = self._next_id, self._next_id + 1
            self._last[tid] = (b, frame)
            out.append((tid, b))
        return out


# -- detections and peers --------------------------------------------------------------
def read_boxes(path: Path) -> dict[int, np.ndarray]:
    """A ``vis.frame/1`` detections file -> {frame: (N, 6) x1 y1 x2 y2 score class}."""
    out = {}
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            rec = json.loads(line)
            out[rec["frame_index"]] = np.array(
                [[*i["bbox"], i["score"], i["class_id"]] for i in rec["instances"]], np.float32
            ).reshape(-1, 6)
    return out


def keyframe_boxes(
    boxes: dict[int, np.ndarray], interval: int, frames: int
) -> dict[int, np.ndarray]:
    """Frames 0..frames-1: the detections of every ``interval``-th frame, empty between."""
    empty = np.zeros((0, 6), np.float32)
    return {f: boxes.get(f, empty) if f % interval == 0 else empty for f in range(frames)}


def write_boxes(boxes: dict[int, np.ndarray], path: Path, size: tuple[int, int]) -> Path:
    """Boxes-only ``vis.frame/1`` records, one per frame in order (what peers_runner reads)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    h, w = size
    with open(path, "w", encoding="utf-8") as fh:
        for f in sorted(boxes):
            inst = [
                {"bbox": [float(v) for v in d[:4]], "score": float(d[4]), "class_id": int(d[5])}
                for d in boxes[f]
            ]
            fh.write(
                json.dumps(
                    {
                        "schema": "vis.frame/1",
                        "stream_id": SEQ,
                        "frame_index": f,
                        "keyframe": bool(len(inst)),
                        "width": w,
                        "height": h,
                        "instances": inst,
                    }
                )
                + "\n"
            )
    return path


def read_peer_tracks(path: Path) -> Tracks:
    """peers_runner's ``<tracker>/<seq>.tracks.jsonl`` -> {frame: [(id, xyxy)]}."""
    out: Tracks = {}
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            rec = json.loads(line)
            out[rec["frame"]] = [(int(r[0]), np.array(r[1:5], np.float32)) for r in rec["tracks"]]
    return out


def ensure_peers_venv() -> None:
    """Build bench/.venv-peers with ``VENV_STEPS`` unless its imports work; exit 2 (printing
    the commands) when that fails."""

    def ready() -> bool:
        check = [str(PEERS_PY), "-c", "import boxmot, trackers, supervision, norfair"]
        return PEERS_PY.is_file() and subprocess.run(check, capture_output=True).returncode == 0

    if ready():
        return
    WORK.mkdir(parents=True, exist_ok=True)
    logf = WORK / "venv.log"
    steps = VENV_STEPS if not PEERS_PY.is_file() else VENV_STEPS[1:]
    log.warning("creating %s (log: %s)", PEERS_PY.parents[1], logf)
    with open(logf, "a", encoding="utf-8") as fh:
        for cmd in steps:
            log.info("$ %s", cmd)
            fh.write(f"$ {cmd}\n")
            fh.flush()
            rc = subprocess.run(
                cmd, shell=True, cwd=ROOT, stdout=fh, stderr=subprocess.STDOUT
            ).returncode
            if rc:
                break
    if not ready():
        print(
            f"could not build the peers venv (see {logf}); from {ROOT} run:\n\n"
            + "\n".join(VENV_STEPS),
            file=sys.stderr,
        )
        raise SystemExit(2)


def run_peer(name: str, dets_dir: Path, videos: Path, out: Path) -> tuple[Tracks, dict]:
    """One peer tracker in the peers venv -> (tracks, {ms_per_frame, versions}); raises
    RuntimeError with the end of its stderr when it fails."""
    p = subprocess.run(
        [
            str(PEERS_PY),
            str(ROOT / "bench" / "peers_runner.py"),
            "--dets",
            str(dets_dir),
            "--videos",
            str(videos),
            "--out",
            str(out),
            "--trackers",
            name,
            "--sequences",
            SEQ,
        ],
        capture_output=True,
        text=True,
    )
    if p.returncode:
        tail = " | ".join(p.stderr.strip().splitlines()[-3:])
        raise RuntimeError(f"exit {p.returncode}: {tail}")
    timing = json.loads((out / name / "timing.json").read_text())
    return (
        read_peer_tracks(out / name / f"{SEQ}.tracks.jsonl"),
        {"ms_per_frame": timing["ms_per_frame"], "versions": timing.get("versions")},
    )


def run_iou(boxes: dict[int, np.ndarray]) -> tuple[Tracks, dict]:
    tracker, seconds, out = IouTracker(), 0.0, {}
    for f in sorted(boxes):
        t0 = time.perf_counter()
        out[f] = tracker.update(boxes[f][:, :4], boxes[f][:, 4], f)
        seconds += time.perf_counter() - t0
    return out, {"ms_per_frame": round(1000 * seconds / max(len(boxes), 1), 3)}


def plot_ids(gt: Tracks, runs: dict[str, Tracks], path: Path) -> Path:
    """Each ground-truth person's covering track id over time, one panel per tracker in
    ``runs`` ({label: tracks}); crossings (``vis_eval.crossings``) shaded on both people's
    rows. A new colour on a row is an id switch; one colour on two rows, a merge."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from vis_eval.crossings import crossing_events, id_changes, id_timeline

    people = sorted({g for f in gt.values() for g, _ in f})
    row = {g: i for i, g in enumerate(people)}
    events = crossing_events(gt)
    fig, axes = plt.subplots(len(runs), 1, figsize=(11, 1.2 + 0.42 * len(people) * len(runs)))
    axes = np.atleast_1d(axes)
    cmap = plt.get_cmap("tab20")
    for ax, (label, tracks) in zip(axes, runs.items()):
        for e in events:
            ax.axvspan(e.start, e.stop + 1, ymin=0, ymax=1, color="0.92", zorder=0)
            for g in (e.a, e.b):
                ax.plot([e.start, e.stop + 1], [row[g]] * 2, color="0.6", lw=9, zorder=1)
        timeline = id_timeline(gt, tracks)
        for g, frames in timeline.items():
            for f, t in frames.items():
                ax.plot(
                    [f, f + 1],
                    [row[g]] * 2,
                    color=cmap(t % 20),
                    lw=6,
                    zorder=2,
                    solid_capstyle="butt",
                )
        switches = sum(id_changes(list(fr.values())) for fr in timeline.values())
        ax.set_yticks(range(len(people)), [f"person {g}" for g in people], fontsize=8)
        ax.set_title(f"{label}: covering track id per frame ({switches} id changes)", fontsize=10)
        ax.set_xlim(0, max(gt) + 1)
        ax.invert_yaxis()
    axes[-1].set_xlabel("frame (grey: two people's boxes overlap)")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


# -- scoring and the report --------------------------------------------------------------
def score_rows(gt: Tracks, tracks: dict[str, Tracks], info: dict[str, dict]) -> dict[str, dict]:
    """One ``pets09.score`` call for every tracker of a (kind, N) -> {name: row}."""
    from vis_eval import pets09
    from vis_eval.box_scoring import merges
    from vis_eval.crossings import crossing_events, outcomes

    # TrackEval cannot read an empty tracker file; a tracker with no box scores zero (every
    # GT box a miss): HOTA/DetA/AssA/MOTA/IDF1 0
    boxed = {k: t for k, t in tracks.items() if any(t.values())}
    scores = pets09.score(gt, boxed) if boxed else {}
    n_gt = sum(len(v) for v in gt.values())
    for name in tracks.keys() - boxed.keys():
        scores[name] = {
            "HOTA": 0.0,
            "DetA": 0.0,
            "AssA": 0.0,
            "MOTA": 0.0,
            "IDF1": 0.0,
            "IDSW": 0,
            "FP": 0,
            "FN": n_gt,
            "ids": 0,
        }
    folds = {}
    for fold, (a, b) in pets09.FOLDS.items():
        # a tracker with no box in the fold scores zero there (TrackEval cannot read it)
        inside = {k: t for k, t in boxed.items() if any(t.get(f) for f in range(a, b))}
        folds[fold] = pets09.score_span(gt, inside, a, b) if inside else {}
        for name in tracks.keys() - inside.keys():
            folds[fold][name] = {"HOTA": 0.0, "AssA": 0.0, "IDSW": 0}
    events = crossing_events(gt)
    rows = {}
    for name, t in tracks.items():
        m = merges(gt, t)
        at_crossings = outcomes(gt, t, events)
        rows[name] = {
            **scores[name],
            "merged_ids": len(m),
            "merged": {str(k): v for k, v in m.items()},
            "folds": {
                fold: {k: fs[name][k] for k in ("HOTA", "AssA", "IDSW")}
                for fold, fs in folds.items()
                if name in fs
            },
            "crossings": {
                "events": len(events),
                "kept": sum(o["kept"] for o in at_crossings),
                "switches": sum(o["switches"] for o in at_crossings),
            },
            **info.get(name, {}),
        }
    return rows


def _kept(c: dict | None) -> str | None:
    """``kept of events (switches)`` of a row's crossing outcomes."""
    return None if not c else f"{c['kept']} of {c['events']} ({c['switches']})"


def _diff(a: float | None, b: float | None) -> str:
    return "-" if a is None or b is None else f"{a - b:+.1f}"


def best_peer(rows: dict[str, dict], key: str = "HOTA") -> str | None:
    """The library peer (not ours, not the IoU baseline) with the highest ``key``."""
    ok = [n for n in PEERS if n in rows and rows[n].get(key) is not None]
    return max(ok, key=lambda n: rows[n][key]) if ok else None


def _phase_cell(phases: dict | None) -> str | None:
    if not phases:
        return None
    w = phases["whole"]
    return f"{w['mean']:.1f} ({w['min']:.1f}-{w['max']:.1f})"


def render_kind(kind: str, runs: dict[str, dict[str, dict]]) -> str:
    """Markdown of one detections kind; ``runs`` = {"N1": {name: row}, "N5": {name: row}}."""
    n1, n5 = runs.get("N1", {}), runs.get("N5", {})
    best = best_peer(n1)
    table = []
    for name in [OURS, IOU, *PEERS]:
        if name not in n1 and name not in n5:
            continue
        a, b = n1.get(name, {}), n5.get(name, {})
        label = LABELS.get(name, name) + (" **(best peer)**" if name == best else "")
        err = a.get("error") or b.get("error")
        if err:
            label += f" (failed: {err[:80]})"
        table.append(
            {
                "tracker": label,
                "HOTA": a.get("HOTA"),
                "AssA": a.get("AssA"),
                "IDF1": a.get("IDF1"),
                "IDSW": a.get("IDSW"),
                "ids": a.get("ids"),
                "merged": a.get("merged_ids"),
                "HOTA5": b.get("HOTA"),
                "HOTA5p": _phase_cell(b.get("phases")),
                "A": a.get("folds", {}).get("A", {}).get("HOTA"),
                "B": a.get("folds", {}).get("B", {}).get("HOTA"),
                "A5": b.get("folds", {}).get("A", {}).get("HOTA"),
                "B5": b.get("folds", {}).get("B", {}).get("HOTA"),
                "kept": _kept(a.get("crossings")),
                "ms": a.get("ms_per_frame"),
            }
        )
    cols = [
        ("tracker", "tracker", "s"),
        ("HOTA", "HOTA", ".1f"),
        ("AssA", "AssA", ".1f"),
        ("IDF1", "IDF1", ".1f"),
        ("IDSW", "IDSW", "d"),
        ("ids", "ids", "d"),
        ("merged", "merged ids", "d"),
        ("HOTA5", "N=5 HOTA", ".1f"),
        ("HOTA5p", "N=5, mean of keyframe phases (range)", "s"),
        ("A", "HOTA fold A", ".1f"),
        ("B", "HOTA fold B", ".1f"),
        ("A5", "N=5 fold A", ".1f"),
        ("B5", "N=5 fold B", ".1f"),
        ("kept", "crossings kept (switches)", "s"),
        ("ms", "ms/frame", ".2f"),
    ]
    out = [f"### {TITLES.get(kind, kind)}", "", markdown_table(table, cols), ""]
    ours1, ours5 = n1.get(OURS, {}), n5.get(OURS, {})
    if best and ours1.get("HOTA") is not None:
        b1 = n1[best]
        d = {k: _diff(ours1[k], b1[k]) for k in ("HOTA", "AssA", "IDF1")}
        line = (
            f"Ours vs best peer ({LABELS[best]}), N=1: HOTA {d['HOTA']}, AssA {d['AssA']}, "
            f"IDF1 {d['IDF1']}, IDSW {ours1['IDSW'] - b1['IDSW']:+d}"
        )
        best5 = best_peer(n5)
        if best5 and ours5.get("HOTA") is not None:
            line += (
                f"; N=5: HOTA {_diff(ours5['HOTA'], n5[best5]['HOTA'])} "
                f"(best peer at N=5: {LABELS[best5]}, {n5[best5]['HOTA']:.1f})"
            )
        out += [line + ".", ""]
    if ours1.get("ms_read_embed") is not None:
        out += [
            f"Ours also spends {ours1['ms_read_embed']:.1f} ms/frame reading the detections "
            "file and embedding the masks (not in ms/frame).",
            "",
        ]
    return "\n".join(out)


NOTES = """\
Columns: N=1 (detections on every frame) unless marked N=5. N=5: the peers and the IoU
baseline get the detections of frames 0, 5, 10, ... and empty detection lists on the four
frames between, which is what a box tracker gets from a keyframe pipeline; ours gets the
same keyframes and propagates its masks by optical flow between them. The ByteTrack family
(boxmot, BoT-SORT, Roboflow) and OC-SORT report a track only on frames where a detection
matched it, and start one only after matches on consecutive frames: fed empty lists between
keyframes they report almost nothing, so their N=5 rows measure that they do not bridge
detection gaps, not how well they associate (calling them on keyframes only would be the
other way to run them; not done here). norfair reports its predicted boxes between
keyframes; the IoU baseline reports boxes on keyframes only and matches across the gap.
ms/frame (N=1): peers = their update calls only (peers_runner timing.json); IoU baseline =
its update calls; ours = flow + propagate + track stages. Folds: the same runs scored on
frames 0-199 (A) and 200-399 (B) alone. "crossings kept (switches)": of the ground truth's
crossings (two people's boxes overlapping 3+ frames), those both people left with the id
they entered with, and the id switches of the two from 5 frames before to 5 after.
"merged ids": track ids that
covered more than one person for 5+ frames each (`box_scoring.merges`). Best peer = the
library peer with the highest N=1 HOTA. Peer settings are peers_runner's (each library's
defaults, lost tracks kept 60 frames, norfair given the detections scoring >= 0.5); the IoU
baseline keeps lost tracks 60 frames, matches at IoU >= 0.3, uses detections scoring >= 0.5.
Our pipeline: configs/demo.yaml with `detector.type: precomputed`, no overrides.
Scores: TrackEval MotChallenge2DBox (HOTA, CLEAR, Identity) on boxes against the MOT15
ground truth of frames 0-399 of PETS 2009 S2.L1 (research use only; data not in the repo)."""


def render(results: dict) -> str:
    """The whole markdown report from a results dict (``real_tracking.json``)."""
    head = [
        f"# Ours vs peer trackers on real pedestrians (PETS 2009 S2.L1, frames 0-"
        f"{results.get('frames', 400) - 1})",
        "",
        f"Generated {results.get('date_utc', '?')} UTC at commit "
        f"{results.get('commit', '?')} by `{results.get('command', COMMAND)}`.",
    ]
    for group, meta in sorted(results.get("measured", {}).items()):
        line = (
            f"{group} rows measured {meta.get('date_utc', '?')} UTC at commit "
            f"{meta.get('commit', '?')}"
        )
        if meta.get("uncommitted"):
            line += " with uncommitted changes to " + ", ".join(meta["uncommitted"])
        if meta.get("changed_during_run"):
            line += " (changed during the run)"
        head.append(line + ".")
    parts = ["\n".join(head), ""]
    for kind in KINDS:
        if kind in results.get("kinds", {}):
            parts.append(render_kind(kind, results["kinds"][kind]))
    parts.append(NOTES)
    return "\n".join(parts).rstrip() + "\n"


# -- orchestration ---------------------------------------------------------------------
def _now() -> str:
    return _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M")


def _git(*args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=ROOT, text=True, capture_output=True, check=False
    ).stdout


def _stamp() -> dict:
    """Date, ``HEAD`` and the uncommitted changes to the code that the rows depend on (others
    edit the tracker in this work tree), with a digest to notice edits made during a run."""
    status = _git("status", "--porcelain", "--", *CODE).splitlines()
    digest = hashlib.sha1((_git("diff", "HEAD", "--", *CODE) + "\n".join(status)).encode())
    return {
        "date_utc": _now(),
        "commit": _git("rev-parse", "--short", "HEAD").strip(),
        "uncommitted": sorted(line[3:] for line in status),
        "digest": digest.hexdigest(),
    }


def _measured(start: dict, end: dict) -> dict:
    out = {**end, "uncommitted": sorted(set(start["uncommitted"]) | set(end["uncommitted"]))}
    out["changed_during_run"] = start["digest"] != end["digest"]
    return out


def run_others(
    kind: str, interval: int, dets: Path, frames: int, size: tuple[int, int]
) -> tuple[dict[str, Tracks], dict[str, dict]]:
    """The peers and the IoU baseline on one (kind, N) -> (tracks, info)."""
    boxes = keyframe_boxes(read_boxes(dets), interval, frames)
    tag = f"{kind}_N{interval}"
    dets_dir, videos = WORK / "dets" / tag, WORK / "videos"
    write_boxes(boxes, dets_dir / f"{SEQ}.jsonl", size)
    videos.mkdir(parents=True, exist_ok=True)
    from vis_eval.pets09 import VIDEO

    link = videos / f"{SEQ}.mp4"  # peers_runner opens <videos>/<seq>.mp4; OpenCV reads the avi
    if not link.is_symlink():
        link.symlink_to(VIDEO)
    tracks, info = {}, {}
    t, info[IOU] = run_iou(boxes)
    tracks[IOU] = t
    for name in PEERS:
        t0 = time.perf_counter()
        try:
            tracks[name], info[name] = run_peer(name, dets_dir, videos, WORK / "out" / tag)
            log.info(
                "%s %s: %.2f ms/frame (%.0f s)",
                tag,
                name,
                info[name]["ms_per_frame"],
                time.perf_counter() - t0,
            )
        except (RuntimeError, OSError, ValueError) as e:
            log.error("%s %s failed: %s", tag, name, e)
            info[name] = {"error": str(e)}
    return tracks, info


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m bench.real_tracking",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--only",
        choices=["ours", "peers"],
        help="run one side; the other side's rows come from the last report",
    )
    a = p.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(name)s %(message)s", datefmt="%H:%M:%S"
    )
    logging.getLogger("vis").setLevel(logging.WARNING)
    from vis_eval import pets09

    missing = pets09.available()
    if missing:
        raise SystemExit(f"pets09: {missing}")
    t_start, start = time.perf_counter(), _stamp()
    seconds: dict[str, float] = {}
    if a.only != "ours":
        t0 = time.perf_counter()
        ensure_peers_venv()
        seconds["peers_venv_check"] = round(time.perf_counter() - t0, 1)
    json_path = RESULTS / "real_tracking.json"
    old = json.loads(json_path.read_text()) if json_path.is_file() else {}
    run_ours_side, run_peers_side = a.only != "peers", a.only != "ours"
    WORK.mkdir(parents=True, exist_ok=True)
    gt = pets09.load_gt()
    frames = pets09.DEV_FRAMES
    kinds: dict[str, dict] = {}
    plotted: dict[str, Tracks] = {}  # foreign N=1: ours and the best peer
    measured = dict(old.get("measured", {}))
    versions = old.get("peer_versions")
    for kind in KINDS:
        dets = pets09.detections_path(kind, WORK)
        kinds[kind] = {}
        for n in INTERVALS:
            key = f"N{n}"
            tracks: dict[str, Tracks] = {}
            info: dict[str, dict] = {}
            if run_peers_side:
                t0 = time.perf_counter()
                tracks, info = run_others(kind, n, dets, frames, pets09.SIZE)
                seconds[f"peers_{kind}_{key}"] = round(time.perf_counter() - t0, 1)
                versions = next(
                    (v["versions"] for v in info.values() if v.get("versions")), versions
                )
            if run_ours_side:
                t0 = time.perf_counter()
                t, timing = pets09.run_ours(dets, n, [])
                tracks[OURS] = t
                info[OURS] = {
                    "ms_per_frame": round(
                        sum(timing.get(s, 0.0) for s in ("flow", "propagate", "track")), 3
                    ),
                    "ms_read_embed": round(timing.get("detections_and_embedding", 0.0), 3),
                    "ms_stages": {k: round(v, 3) for k, v in timing.items()},
                }
                if n > 1:
                    runs = [t] + [pets09.run_ours(dets, n, [], phase=p)[0] for p in range(1, n)]
                    info[OURS]["phases"] = phase_scores(gt, runs)
                seconds[f"ours_{kind}_{key}"] = round(time.perf_counter() - t0, 1)
            if kind == "foreign" and n == 1:
                plotted = dict(tracks)
            t0 = time.perf_counter()
            rows = score_rows(gt, tracks, info)  # failed peers have no tracks, only an error
            rows.update({x: i for x, i in info.items() if "error" in i})
            seconds[f"score_{kind}_{key}"] = round(time.perf_counter() - t0, 1)
            cached = old.get("kinds", {}).get(kind, {}).get(key, {})
            for name, row in cached.items():  # the side not run this time
                if (name == OURS) != run_ours_side and name not in rows:
                    rows[name] = row
            kinds[kind][key] = {n_: rows[n_] for n_ in [OURS, IOU, *PEERS] if n_ in rows}
            kinds[kind]["detections"] = os.path.relpath(dets, ROOT)
            log.info(
                "%s %s: %s",
                kind,
                key,
                ", ".join(f"{x} {r.get('HOTA', 'failed')}" for x, r in kinds[kind][key].items()),
            )
    stamp = _measured(start, _stamp())
    if run_ours_side:
        measured["ours"] = stamp
    if run_peers_side:
        measured["peers + IoU baseline"] = stamp
    seconds["total"] = round(time.perf_counter() - t_start, 1)
    args = f" --only {a.only}" if a.only else ""
    results = {
        "study": "real_tracking",
        "date_utc": stamp["date_utc"],
        "commit": stamp["commit"],
        "command": COMMAND + args,
        "frames": frames,
        "loadavg_1_5_15min_at_end": [round(x, 2) for x in os.getloadavg()],
        "measured": measured,
        "peer_versions": versions,
        "seconds": seconds,
        "kinds": kinds,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps(results, indent=1) + "\n")
    foreign = kinds.get("foreign", {}).get("N1", {})
    best = best_peer(foreign)
    if OURS in plotted:
        runs = {"ours": plotted[OURS]}
        peer_file = WORK / "out" / "foreign_N1" / str(best) / f"{SEQ}.tracks.jsonl"
        if best in plotted:
            runs[LABELS[best]] = plotted[best]
        elif best and peer_file.is_file():  # --only ours: the peer's last output
            runs[LABELS[best]] = read_peer_tracks(peer_file)
        plot_ids(gt, runs, RESULTS / "real_tracking_ids.png")
    md = render(results)
    (RESULTS / "real_tracking.md").write_text(md)
    print(md)
    log.info("done in %.0f s", seconds["total"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
