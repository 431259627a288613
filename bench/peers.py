"""Our tracker vs peer trackers on identical per-frame detections, scored on masks.

    python -m bench.peers                       # detections: demo model and GT+noise
    python -m bench.peers --kinds gtnoise       # only the model-free detections

Detections (``bench.detections``: the demo model on every frame, and/or ground truth with
seeded noise) go, unchanged, to:

* ours: ``vis_pipeline.run`` with ``detector.type: precomputed``, ``keyframes.interval: 1``,
  configs/demo.yaml otherwise (``detector.score_threshold`` 0.1: detections from 0.1 to
  ``tracker.high_score`` 0.5 only continue tracks, in the second pass; flow + ECC propagation
  between frames for association), once with each precomputed embedder (``histogram``,
  ``box_head``);
* peers, in their own venv (``bench/.venv-peers``, see ``bench/peers_runner.py``): boxmot
  ByteTrack, OC-SORT, BoT-SORT (no ReID weights), Roboflow ByteTrack (``trackers``, where
  supervision's ByteTrack lives now), norfair (IoU distance; given the detections scoring
  >= 0.5, as it has no threshold of its own). Peers keep lost tracks 60 frames;
  ours keeps them ``tracker.max_lost_s`` 4 s (100 frames at 25 fps), its default.

Box trackers output boxes; each output box gets the mask of the input detection it came
from: the detection index the library reports (boxmot, Roboflow), else a one-to-one box
IoU match >= 0.5 against that frame's detections (norfair). Boxes with no detection of the
frame (coasting on the motion model) get no mask and are dropped; their number is
reported. Everything is scored by one TrackEval call per detection kind.
Time per frame: peers = their ``update`` calls only; ours = flow + propagate + track stages
(association, Kalman, mask propagation), with reading the file + embedding shown apart.

Writes bench/results/peers.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import logging
import subprocess
import sys
from pathlib import Path

import numpy as np
from scipy.optimize import linear_sum_assignment

from bench.common import (
    DATA,
    ROOT,
    TMP,
    ensure_set,
    run_on_set,
    sequences,
    setup_logging,
    write_report,
)
from bench.detections import ensure_detections
from vis_eval.sequences import Instance, TrackSequence, _rle
from vis_eval.tables import markdown_table
from vis.ops.boxes import box_iou
from vis.schema import iter_v1_records

log = logging.getLogger("bench.peers")

PEERS_PY = ROOT / "bench" / ".venv-peers" / "bin" / "python"
PEERS = ("boxmot_bytetrack", "boxmot_ocsort", "boxmot_botsort", "rf_bytetrack", "norfair")
#: precomputed embedder name -> config overrides (``box_head`` honours ``detector.appearance``:
#: ``fused`` = box head + mask colour histogram, the default; ``box_head_only`` = box head alone)
EMBEDDERS = {
    "histogram": ["detector.embedder=histogram"],
    "box_head": ["detector.embedder=box_head", "detector.appearance=fused"],
    "box_head_only": ["detector.embedder=box_head", "detector.appearance=box_head"],
}
LABELS = {
    "ours_histogram": "ours (histogram emb.)",
    "ours_box_head": "ours (box-head+histogram emb.)",
    "ours_box_head_only": "ours (box-head emb.)",
    "boxmot_bytetrack": "boxmot ByteTrack",
    "boxmot_ocsort": "boxmot OC-SORT",
    "boxmot_botsort": "boxmot BoT-SORT (no ReID)",
    "rf_bytetrack": "Roboflow ByteTrack",
    "norfair": "norfair (IoU)",
}


def read_detection_file(path: Path) -> dict[int, tuple[np.ndarray, list[Instance]]]:
    """frame -> ((N, 4) detector boxes, N instances) of a detections JSONL."""
    out = {}
    with open(path, encoding="utf-8") as fh:
        for _, rec in iter_v1_records(fh):
            inst = rec["instances"]
            boxes = np.array([i["bbox"] for i in inst], np.float32).reshape(-1, 4)
            out[rec["frame_index"]] = (
                boxes,
                [
                    Instance(
                        -1,
                        int(i["class_id"]),
                        float(i["score"]),
                        _rle(i["mask"]["size"], i["mask"]["counts"]),
                    )
                    for i in inst
                ],
            )
    return out


def attach_masks(
    tracks_path: Path, dets: dict[int, tuple[np.ndarray, list[Instance]]]
) -> tuple[TrackSequence, int, int]:
    """A peer's box tracks -> mask tracks (see module docstring).

    Returns:
        (tracks, output boxes, boxes dropped for want of a detection).
    """
    seq = TrackSequence()
    n_out = n_drop = 0
    with open(tracks_path, encoding="utf-8") as fh:
        for line in fh:
            rec = json.loads(line)
            f, rows = rec["frame"], rec["tracks"]
            boxes, insts = dets.get(f, (np.zeros((0, 4), np.float32), []))
            n_out += len(rows)
            used: set[int] = set()
            out: list[Instance] = []
            rest = []
            for r in rows:
                k = int(r[7])
                if 0 <= k < len(insts) and k not in used:
                    used.add(k)
                    out.append(Instance(int(r[0]), insts[k].class_id, insts[k].score, insts[k].rle))
                else:
                    rest.append(r)
            free = [k for k in range(len(insts)) if k not in used]
            if rest and free:
                iou = box_iou(np.array([r[1:5] for r in rest], np.float32), boxes[free])
                rr, cc = linear_sum_assignment(-iou)
                for a, b in zip(rr, cc):
                    if iou[a, b] >= 0.5:
                        k = free[b]
                        out.append(
                            Instance(
                                int(rest[a][0]), insts[k].class_id, insts[k].score, insts[k].rle
                            )
                        )
            n_drop += len(rows) - len(out)
            if insts:
                seq.size = tuple(insts[0].rle["size"])
            seq.frames[f] = out
    return seq, n_out, n_drop


def run_ours(
    kind: str,
    dets: Path,
    data: Path,
    only: list[str] | None,
    embedders: list[str],
    interval: int = 1,
    tag: str = "",
    overrides: list[str] | None = None,
) -> dict[str, tuple[Path, dict]]:
    """Our pipeline on precomputed detections, once per embedder: name -> (folder, timing)."""
    out = {}
    for emb in embedders:
        d = TMP / "peers" / kind / f"ours_{emb}{tag}"
        timing = run_on_set(
            data,
            d,
            [
                "detector.type=precomputed",
                f"keyframes.interval={interval}",
                *EMBEDDERS[emb],
                "detector.weights=demo",
                *(overrides or []),
            ],
            only=only,
            per_sequence_overrides=lambda s: [f"detector.path={dets / s}.jsonl"],
        )
        out[f"ours_{emb}"] = (d, timing)
    return out


def run_peers(
    kind: str, dets: Path, data: Path, only: list[str] | None, peers: list[str]
) -> tuple[dict[str, Path], dict[str, dict]]:
    raw = TMP / "peers" / kind / "raw"
    if not PEERS_PY.is_file():
        raise SystemExit(f"{PEERS_PY} not found: run bench.real_tracking once (it creates it)")
    seqs = sequences(data, only)
    subprocess.run(
        [
            str(PEERS_PY),
            str(ROOT / "bench" / "peers_runner.py"),
            "--dets",
            str(dets),
            "--videos",
            str(data),
            "--out",
            str(raw),
            "--trackers",
            *peers,
            "--sequences",
            *seqs,
        ],
        check=True,
    )
    det_files = {s: read_detection_file(dets / f"{s}.jsonl") for s in seqs}
    preds, info = {}, {}
    for p in peers:
        seqs_out, n_out, n_drop = {}, 0, 0
        for s in seqs:
            t, o, d = attach_masks(raw / p / f"{s}.tracks.jsonl", det_files[s])
            seqs_out[s] = t
            n_out += o
            n_drop += d
        preds[p] = seqs_out
        timing = json.loads((raw / p / "timing.json").read_text())
        info[p] = {
            "ms_per_frame": timing["ms_per_frame"],
            "output_boxes": n_out,
            "dropped_no_detection": n_drop,
            "versions": timing.get("versions"),
        }
    return preds, info


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m bench.peers",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--data", type=Path, default=DATA)
    p.add_argument("--scale", type=int, default=1)
    p.add_argument("--kinds", nargs="+", default=["model", "gtnoise"], choices=["model", "gtnoise"])
    p.add_argument("--peers", nargs="+", default=list(PEERS))
    p.add_argument(
        "--embedders", nargs="+", default=["histogram", "box_head"], choices=list(EMBEDDERS)
    )
    p.add_argument("--only", nargs="+")
    p.add_argument("--name", default="peers")
    p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="config override for our runs (repeatable), e.g. detector.threads=1",
    )
    a = p.parse_args(argv)
    setup_logging()
    ensure_set(a.data, a.scale)
    from vis_eval.benchmark import evaluate, load_ground_truth, load_predictions

    payload: dict = {"kinds": {}, "overrides": a.overrides}
    md: list[str] = [f"Overrides on our runs: {' '.join(a.overrides)}", ""] if a.overrides else []
    for kind in a.kinds:
        dets = ensure_detections(kind, a.data, a.only)
        ours = run_ours(kind, dets, a.data, a.only, a.embedders, overrides=a.overrides)
        peer_preds, peer_info = run_peers(kind, dets, a.data, a.only, a.peers)
        gt = load_ground_truth(a.data, a.only)
        trackers = {name: load_predictions(d, gt) for name, (d, _) in ours.items()}
        trackers.update(peer_preds)
        scores = evaluate(gt, trackers)
        rows = []
        for name, r in scores["trackers"].items():
            c = r["combined"]
            row = {
                "tracker": LABELS.get(name, name),
                "HOTA": c["HOTA"],
                "DetA": c["DetA"],
                "AssA": c["AssA"],
                "IDF1": c["IDF1"],
                "IDSW": c["IDSW"],
                "MOTSA": c["MOTSA"],
                "mask_AP": c.get("mask_AP"),
            }
            if name in ours:
                st = ours[name][1]["stage_ms_per_frame"]
                row["ms"] = sum(st.get(k, 0.0) for k in ("flow", "propagate", "track"))
                row["ms_embed"] = st.get("detect")
                row["dropped"] = 0
            else:
                row["ms"] = peer_info[name]["ms_per_frame"]
                row["dropped"] = peer_info[name]["dropped_no_detection"]
            rows.append(row)
        per_seq = []
        for s in gt.sequences:
            per_seq.append(
                {
                    "sequence": s,
                    **{
                        LABELS.get(n, n): r["sequences"][s]["HOTA"]
                        for n, r in scores["trackers"].items()
                    },
                }
            )
        cols = [
            ("tracker", "tracker", "s"),
            ("HOTA", "HOTA", ".1f"),
            ("DetA", "DetA", ".1f"),
            ("AssA", "AssA", ".1f"),
            ("IDF1", "IDF1", ".1f"),
            ("IDSW", "IDSW", "d"),
            ("MOTSA", "MOTSA", ".1f"),
            ("mask_AP", "mask AP", ".1f"),
            ("ms", "ms/frame", ".2f"),
            ("ms_embed", "read+embed ms", ".1f"),
            ("dropped", "boxes w/o mask", "d"),
        ]
        seq_cols = [("sequence", "sequence", "s")] + [
            (LABELS.get(n, n), LABELS.get(n, n), ".1f") for n in scores["trackers"]
        ]
        title = {
            "model": "Detections: demo model on every frame (score >= 0.1 in the file)",
            "gtnoise": "Detections: ground truth + seeded noise",
        }[kind]
        md += [
            f"### {title}",
            "",
            markdown_table(rows, cols),
            "",
            "HOTA per sequence:",
            "",
            markdown_table(per_seq, seq_cols),
            "",
        ]
        payload["kinds"][kind] = {
            "rows": rows,
            "peers": peer_info,
            "ours_timing": {k: v[1] for k, v in ours.items()},
            "scores": scores,
        }
    write_report(a.name, payload, "\n".join(md))
    print("\n".join(md))
    return 0


if __name__ == "__main__":
    sys.exit(main())
