"""Does our lead over the peers survive a different detector? The same footage, the same
foreign detections, changed the way another detector, camera or light would change them.

    PYTHONPATH=. .venv/bin/python -m bench.tracker_stress

The held-out frames of PETS09 reward trackers that rank differently from the dev span. Which
detections a tracker is fed is the largest thing that changes between two footages, so each
variant here changes the foreign detector's output (``detections_dev.jsonl``, every frame)
one way and feeds it, identically, to ours and to every peer (``bench.real_tracking``'s
runners and settings):

* ``as measured``: unchanged;
* ``scores x0.85``: every score times 0.85 (a less confident detector: darker footage, a
  smaller model, another calibration);
* ``scores x1.15``: every score times 1.15, capped at 1 (a more confident one);
* ``20 % missed``: each detection dropped with probability 0.2, independently (seed 0): a
  detector that misses people now and then, as in crowds and at the edges.

Each run is scored with TrackEval on both folds of the dev span (A = frames 0-199,
B = 200-399). A tracker that generalizes keeps its rank across the variants; one tuned to
this detector's scores drops. Nothing here chooses a default: it says where ours is fragile.

Writes ``bench/results/<--name, default tracker_stress>.{json,md}``; peers run in
``bench/.venv-peers`` (``bench.real_tracking`` creates it when missing).
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from collections.abc import Callable
from pathlib import Path

from bench.common import RESULTS, setup_logging, write_report

COMMAND = "PYTHONPATH=. .venv/bin/python -m bench.tracker_stress"
WORK = RESULTS / "tmp" / "tracker_stress"


def perturb(record: dict, variant: str, rng: random.Random) -> dict:
    """One ``vis.frame/1`` detections record changed as ``variant`` says (masks kept)."""
    inst = record["instances"]
    if variant.startswith("scores x"):
        factor = float(variant.split("x", 1)[1])
        inst = [{**i, "score": min(1.0, i["score"] * factor)} for i in inst]
    elif variant.endswith("% missed"):
        p = float(variant.split("%", 1)[0]) / 100.0
        inst = [i for i in inst if rng.random() >= p]
    elif variant != "as measured":
        raise ValueError(f"variant {variant!r}")
    return {**record, "instances": inst}


def write_variant(
    src: Path, variant: str, out: Path, *, seed: int = 0, change: Callable = perturb
) -> Path:
    """``src``'s records, each passed through ``change(record, variant, rng)`` (one
    ``random.Random(seed)`` for the whole file), written to ``out``."""
    rng = random.Random(seed)
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(src, encoding="utf-8") as fin, open(out, "w", encoding="utf-8") as fout:
        for line in fin:
            fout.write(json.dumps(change(json.loads(line), variant, rng)) + "\n")
    return out


VARIANTS = ("as measured", "scores x0.85", "scores x1.15", "20 % missed")


def summary(rows: dict[str, dict]) -> dict:
    """Per fold: ours, the best peer (name, HOTA) and our rank among the library peers."""
    from bench.real_tracking import IOU, OURS

    out = {}
    for fold in ("A", "B"):
        hota = {n: r["folds"][fold]["HOTA"] for n, r in rows.items() if fold in r.get("folds", {})}
        peers = {n: h for n, h in hota.items() if n not in (OURS, IOU)}
        best = max(peers, key=peers.get) if peers else None
        out[fold] = {
            "ours": hota.get(OURS),
            "best_peer": best,
            "best_peer_HOTA": peers.get(best),
            "rank": 1 + sum(h > hota.get(OURS, 0.0) for h in peers.values()),
            "trackers": 1 + len(peers),
        }
    return out


def markdown(payload: dict) -> str:
    from bench.real_tracking import LABELS

    out = [
        "## Ours and the peers on the foreign detections, changed as another detector would "
        "change them (PETS09 dev span, N=1)\n",
        f"`{COMMAND}`; HOTA per fold (A = frames 0-199, B = 200-399), every tracker fed the "
        "same changed detections; rank = ours among ours and the library peers.\n",
        "| detections | ours A | best peer A | rank A | ours B | best peer B | rank B |",
        "|---|---:|---|---:|---:|---|---:|",
    ]
    for variant, r in payload["variants"].items():
        s = r["summary"]
        cells = []
        for fold in ("A", "B"):
            f = s[fold]
            peer = (
                f"{f['best_peer_HOTA']:.2f} ({LABELS.get(f['best_peer'], f['best_peer'])})"
                if f["best_peer"]
                else "-"
            )
            cells += [f"{f['ours']:.2f}", peer, f"{f['rank']} of {f['trackers']}"]
        out.append(f"| {variant} | " + " | ".join(cells) + " |")
    out += ["", "Every tracker's HOTA, fold A / fold B:", ""]
    names = list(next(iter(payload["variants"].values()))["rows"])
    out.append("| tracker | " + " | ".join(payload["variants"]) + " |")
    out.append("|---|" + "---:|" * len(payload["variants"]))
    for name in names:
        cells = []
        for r in payload["variants"].values():
            fr = r["rows"].get(name, {}).get("folds", {})
            a, b = fr.get("A", {}).get("HOTA"), fr.get("B", {}).get("HOTA")
            cells.append("-" if a is None or b is None else f"{a:.1f} / {b:.1f}")
        out.append(f"| {LABELS.get(name, name)} | " + " | ".join(cells) + " |")
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> int:
    from bench.real_tracking import OURS, ensure_peers_venv, run_others, score_rows
    from vis_eval import pets09

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--variants", default=",".join(VARIANTS), help="comma-separated")
    ap.add_argument("--ours-only", action="store_true", help="skip the peers")
    ap.add_argument("--override", action="append", default=[], help="config override for ours")
    ap.add_argument("--name", default="tracker_stress")
    args = ap.parse_args(argv)
    setup_logging()
    missing = pets09.available()
    if missing:
        print(f"tracker_stress: {missing}")
        return 0
    if not args.ours_only:
        ensure_peers_venv()
    gt = pets09.load_gt()
    src = pets09.detections_path("foreign", WORK)
    variants = {}
    for variant in args.variants.split(","):
        tag = variant.replace(" ", "").replace("%", "pct").replace(".", "_")
        dets = write_variant(src, variant, WORK / f"{tag}.jsonl")
        tracks, info = {}, {}
        if not args.ours_only:
            tracks, info = run_others(f"stress_{tag}", 1, dets, pets09.DEV_FRAMES, pets09.SIZE)
        tracks[OURS], _ = pets09.run_ours(dets, 1, args.override)
        rows = score_rows(gt, tracks, info)
        variants[variant] = {"rows": rows, "summary": summary(rows)}
        print(variant, json.dumps(variants[variant]["summary"]))
    payload = {"command": COMMAND, "overrides": args.override, "variants": variants}
    _, md = write_report(args.name, payload, markdown(payload))
    print(md.read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
