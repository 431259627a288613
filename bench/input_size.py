"""Does the shipped people model do better at a larger input size? Judged on every held-out set.

    PYTHONPATH=. .venv/bin/python -m bench.input_size                 # 480 (shipped), 576, 672
    PYTHONPATH=. .venv/bin/python -m bench.input_size --sizes 480,640
    PYTHONPATH=. .venv/bin/python -m bench.input_size --model adapted.pt --interval 5 \
        --sizes 480,672 --name input_size_adapted     # an adapted model, as bench.adapt runs it

For each shorter-side size S (the longer side capped at S x 5/3, as the shipped 480/800):

* the street demo (``bench.street``: ``configs/street.yaml``, N=3, PETS09 frames 0-399) with
  ``detector.min_size=S``, scored on each fold of the dev span split in time (A = frames
  0-199, B = 200-399; TrackEval boxes);
* person mask AP on the held-out images of Penn-Fudan and COCO128 the model was never trained
  on (``vis_train.adapt.split_replay``: the split ``tools/train.py`` made), the model's
  resize set to S;
* detector milliseconds per keyframe in the street run (``detect`` stage, mean), one thread.

A size replaces the shipped one only if it wins on both folds and on both AP sets. Writes
``bench/results/<--name, default input_size>.{json,md}``.
"""

from __future__ import annotations

import argparse
import sys

from bench.adapt import person_ap, replay_data
from bench.common import setup_logging, write_report
from bench.street import fold_scores, missing_inputs, run_street

COMMAND = "PYTHONPATH=. .venv/bin/python -m bench.input_size"


def held_out_person_ap(model, size: int, max_size: int, held: list, labels: list[str]) -> dict:
    """Person mask AP of ``model`` resized to ``size`` / ``max_size`` on ``held``."""
    from vis_train.evaluate import evaluate

    model.transform.min_size = (size,)
    model.transform.max_size = max_size
    return person_ap(evaluate(model, held, labels, progress=False))


def detect_ms(summary: dict) -> float | None:
    """Mean detector milliseconds per keyframe of the run (machine busy or not: a ratio
    between the rows of one run is what it says)."""
    seconds = (summary.get("stage_seconds") or {}).get("detect")
    keyframes = summary.get("keyframes") or 0
    return round(1000 * seconds / keyframes, 1) if seconds and keyframes else None


def markdown(payload: dict) -> str:
    out = [
        "## The people model's input size, on every held-out set\n",
        f"`{COMMAND}`; model `{payload.get('model', 'people')}`, street config at "
        f"N={payload.get('interval', 3)} on PETS09 (fold A = frames 0-199, B = 200-399), "
        "person mask AP on the held-out images of the model's training sets.\n",
        "| shorter / longer side | street HOTA A | street HOTA B | DetA A / B | Penn-Fudan mask AP "
        "| COCO128 person mask AP | detector ms per keyframe |",
        "|---|---:|---:|---|---:|---:|---:|",
    ]
    for r in payload["rows"]:
        a, b = r["folds"]["A"], r["folds"]["B"]
        out.append(
            f"| {r['min_size']} / {r['max_size']} | {a['HOTA']:.2f} | {b['HOTA']:.2f} | "
            f"{a['DetA']:.2f} / {b['DetA']:.2f} | {r['ap'].get('pennfudan', '-')} | "
            f"{r['ap'].get('coco128', '-')} | {r['detect_ms'] or '-'} |"
        )
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="480,576,672", help="comma-separated shorter sides")
    ap.add_argument("--model", default="people", help="weights: a shipped name or a .pt file")
    ap.add_argument("--interval", type=int, default=3, help="keyframe interval of the runs")
    ap.add_argument("--name", default="input_size")
    args = ap.parse_args(argv)
    setup_logging()
    missing = missing_inputs()
    if missing:
        print(f"bench.input_size skipped: missing {', '.join(map(str, missing))}", file=sys.stderr)
        return 0
    from vis.detection.models import load_model
    from vis_train.adapt import AdaptConfig, split_replay

    model, labels = load_model(weights=args.model)
    labels = labels[1:]  # without the background
    _, held = split_replay(replay_data(), labels, AdaptConfig.replay_holdout)
    rows = []
    for size in (int(s) for s in args.sizes.split(",")):
        max_size = round(size * 5 / 3)
        name = f"{args.name}_{size}"
        sets = [
            f"keyframes.interval={args.interval}",
            f"detector.min_size={size}",
            f"detector.max_size={max_size}",
        ]
        _, summary = run_street(args.model, sets, name)
        rows.append(
            {
                "min_size": size,
                "max_size": max_size,
                "folds": fold_scores(name),
                "ap": held_out_person_ap(model, size, max_size, held, labels),
                "detect_ms": detect_ms(summary),
            }
        )
    payload = {"command": COMMAND, "model": args.model, "interval": args.interval, "rows": rows}
    _, md = write_report(args.name, payload, markdown(payload))
    print(md.read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
