"""Do a model's embeddings still tell the camera's people apart? Re-identification of the
ground truth's people by each model's appearance embedding, and how far adaptation moved it.

    PYTHONPATH=. .venv/bin/python -m bench.reid_probe --models adapted=path/a.pt,... \
        [--frames 200-399] [--gap 5,20] [--name reid_probe]

Each model (and the shipped ``people`` model, the reference) embeds the ground truth's boxes
on PETS09's frames ``--frames`` as the street config does (``configs/street.yaml``'s
detector: the box head's representation, fused with the mask-free colour histogram of the
box, ``detector.appearance: fused``). For every person seen at frame f and again at f + gap,
re-identification is right when, of everyone in view at f + gap, that person's embedding is
the nearest (cosine) to theirs at f: rank-1 accuracy per gap, for the box-head half alone and
for the fused embedding (what the tracker uses). Also the margin (distance to the nearest
other person minus distance to the same person; larger separates better) and the drift:
the mean cosine distance between the model's box-head embedding of a box and the reference
model's.

Writes ``bench/results/<--name>.{json,md}``. Without the footage or the ground truth it says
what is missing and exits 0.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

import numpy as np

from bench.common import ROOT, setup_logging, write_report

COMMAND = "PYTHONPATH=. .venv/bin/python -m bench.reid_probe"
REFERENCE = ROOT / "models" / "people_maskrcnn.pt"


def embed_gt(weights: Path, frame_range: tuple[int, int]) -> dict[int, dict[int, tuple]]:
    """{frame: {person: (box-head embedding, histogram embedding)}} on the ground truth's
    boxes, the detector built as the street config builds it."""
    from vis_pipeline.config import load_config
    from vis.detection.detector import HistogramEmbedder
    from vis.detection.factory import build_torch_maskrcnn
    from vis.types import Detections
    from vis_eval import pets09

    cfg = load_config(ROOT / "configs" / "street.yaml", [f"detector.weights={weights}"])
    det = build_torch_maskrcnn(cfg.detector)
    hist = HistogramEmbedder()
    gt = pets09.load_gt()
    out: dict[int, dict[int, tuple]] = {}
    for frame in pets09.frames(count=frame_range[1]):
        if frame.index < frame_range[0] or not gt.get(frame.index):
            continue
        ids = [p for p, _ in gt[frame.index]]
        boxes = np.stack([b for _, b in gt[frame.index]])
        h, w = frame.image.shape[:2]
        masks = np.zeros((len(boxes), h, w), bool)
        for i, b in enumerate(np.round(boxes).astype(int)):
            masks[i, max(b[1], 0) : b[3], max(b[0], 0) : b[2]] = True
        dets = Detections(
            xyxy=boxes,
            masks=masks,
            scores=np.ones(len(boxes), np.float32),
            class_ids=np.ones(len(boxes), np.int64),
        )
        box_head = det.embed_boxes([frame.image], [boxes])[0]
        colour = hist.embed(frame.image, dets)
        out[frame.index] = {p: (box_head[i], colour[i]) for i, p in enumerate(ids)}
    return out


def fused(parts: tuple) -> np.ndarray:
    from vis.detection.detector import fuse

    return fuse(*(p[None] for p in parts))[0]


def reid(emb: dict[int, dict[int, tuple]], gap: int, which: str) -> dict[str, float]:
    """Rank-1 re-identification accuracy and mean margin at ``gap`` frames."""
    right, margins = [], []
    for f, people in emb.items():
        later = emb.get(f + gap)
        if not later or len(later) < 2:
            continue
        ids = list(later)
        vecs = np.stack([later[p][0] if which == "box_head" else fused(later[p]) for p in ids])
        for p, parts in people.items():
            if p not in later:
                continue
            q = parts[0] if which == "box_head" else fused(parts)
            d = 1.0 - vecs @ q
            same = d[ids.index(p)]
            other = min(d[i] for i in range(len(ids)) if ids[i] != p)
            right.append(same < other)
            margins.append(float(other - same))
    return {
        "rank1": round(100.0 * float(np.mean(right)), 2) if right else float("nan"),
        "margin": round(statistics.mean(margins), 4) if margins else float("nan"),
        "pairs": len(right),
    }


def drift(emb: dict, ref: dict) -> float:
    d = [
        1.0 - float(emb[f][p][0] @ ref[f][p][0])
        for f in emb
        for p in emb[f]
        if f in ref and p in ref[f]
    ]
    return round(statistics.mean(d), 4) if d else float("nan")


def main(argv: list[str] | None = None) -> int:
    from vis_eval import pets09

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", required=True, help="name=path.pt,... (the reference is added)")
    ap.add_argument("--frames", default="200-399", help="first-last frame, inclusive")
    ap.add_argument("--gap", default="5,20", help="frames between the two sightings")
    ap.add_argument("--name", default="reid_probe")
    args = ap.parse_args(argv)
    setup_logging()
    missing = pets09.available()
    if missing:
        print(f"reid_probe: {missing}; nothing measured")
        return 0
    first, last = (int(v) for v in args.frames.split("-"))
    gaps = [int(g) for g in args.gap.split(",")]
    models = {"people (shipped)": REFERENCE}
    for item in args.models.split(","):
        name, _, path = item.partition("=")
        if not Path(path).is_file():
            print(f"reid_probe: model {path} not found: give name=path.pt", file=sys.stderr)
            return 2
        models[name] = Path(path)
    embs = {name: embed_gt(path, (first, last + 1)) for name, path in models.items()}
    ref = embs["people (shipped)"]
    rows = {}
    for name, emb in embs.items():
        row = {"drift": drift(emb, ref)}
        for g in gaps:
            for which in ("box_head", "fused"):
                row[f"{which} gap {g}"] = reid(emb, g, which)
        rows[name] = row
    head = ["model", "box-head drift from the shipped model"]
    for g in gaps:
        head += [f"box head rank-1 / margin, gap {g}", f"fused rank-1 / margin, gap {g}"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, row in rows.items():
        cells = [name, f"{row['drift']:.4f}"]
        for g in gaps:
            for which in ("box_head", "fused"):
                r = row[f"{which} gap {g}"]
                cells.append(f"{r['rank1']:.1f} / {r['margin']:.4f}")
        lines.append("| " + " | ".join(cells) + " |")
    pairs = rows["people (shipped)"][f"fused gap {gaps[0]}"]["pairs"]
    md = (
        f"Re-identification of the ground truth's people on PETS09 frames {first}-{last} by "
        f"each model's embedding ({pairs} sightings at gap {gaps[0]}; rank-1 in %, margin = "
        "distance to the nearest other person minus distance to the same one).\n\n"
        + "\n".join(lines)
        + "\n"
    )
    payload = {
        "command": COMMAND,
        "frames": [first, last],
        "gaps": gaps,
        "models": {k: str(v) for k, v in models.items()},
        "rows": rows,
    }
    write_report(
        args.name, payload, "# Do the embeddings still tell the camera's people apart?\n\n" + md
    )
    print(md)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
