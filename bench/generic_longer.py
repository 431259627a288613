"""Does the generic people model improve with more training? Judged on every held-out set.

    PYTHONPATH=. .venv/bin/python -m bench.generic_longer                  # +600 steps
    PYTHONPATH=. .venv/bin/python -m bench.generic_longer --steps 600 --repeat-thresh 0.3

The shipped ``people`` model was trained 1700 steps (models/people_maskrcnn.md). Training it
again from nothing for longer costs an hour or more per run on 2 cores (bf16 is no faster for
this model on this CPU: docs/benchmarks.md section 15), so this continues it instead: a
second schedule of ``--steps`` steps (warm-up then cosine, ``--lr``) from its own weights, on
the same training images (Penn-Fudan and COCO128 kept to its classes and split as
``tools/train.py`` split them: ``vis_train.adapt.split_replay``), with the recipe's
augmentation; ``--repeat-thresh`` draws images with rare classes more often (the
class-balanced recipe of ``people_cars``). The continued model and the shipped one are
scored on:

* person mask AP on the held-out Penn-Fudan and COCO128 images (never trained on by either);
* the street demo (``configs/street.yaml``, N=3, PETS09 frames 0-399), each fold of the dev
  span split in time (A = 0-199, B = 200-399).

A continued model would replace the shipped one only if it wins on all four. Writes
``bench/results/<--name, default generic_longer>.{json,md}``; the model under
``bench/results/tmp/generic_longer``.
"""

from __future__ import annotations

import argparse
import sys
import time

import torch

from bench.adapt import person_ap, replay_data
from bench.common import RESULTS, ROOT, setup_logging, write_report
from bench.street import fold_scores, missing_inputs, run_street

COMMAND = "PYTHONPATH=. .venv/bin/python -m bench.generic_longer"
TMP = RESULTS / "tmp" / "generic_longer"
BASE = ROOT / "models" / "people_maskrcnn.pt"


def scores(weights: str, name: str, held: list, labels: list[str]) -> dict:
    """Held-out person mask AP and the street demo's folds for one model file."""
    from vis_train.adapt import held_out_ap

    ap = held_out_ap({name: weights}, labels, [], held)[name]
    run_street(weights, ["keyframes.interval=3"], name)
    return {"ap": person_ap(ap), "folds": fold_scores(name)}


def markdown(payload: dict) -> str:
    out = [
        "## The generic people model trained longer, on every held-out set\n",
        f"`{COMMAND}`; +{payload['steps']} steps from the shipped weights at lr "
        f"{payload['lr']}, repeat threshold {payload['repeat_thresh']}, "
        f"{payload['seconds']} s at {payload['threads']} threads.\n",
        "| model | Penn-Fudan mask AP | COCO128 person mask AP | street HOTA A | street HOTA B |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, r in payload["rows"].items():
        out.append(
            f"| {name} | {r['ap'].get('pennfudan', '-')} | {r['ap'].get('coco128', '-')} | "
            f"{r['folds']['A']['HOTA']:.2f} | {r['folds']['B']['HOTA']:.2f} |"
        )
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> int:
    from vis_train.adapt import AdaptConfig, split_replay
    from vis_train.engine import TrainConfig, train

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--steps", type=int, default=600)
    ap.add_argument("--lr", type=float, default=2e-4)
    ap.add_argument("--repeat-thresh", type=float, default=0.0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--name", default="generic_longer")
    args = ap.parse_args(argv)
    setup_logging()
    missing = missing_inputs()
    if missing:
        print(f"bench.generic_longer skipped: missing {', '.join(map(str, missing))}")
        return 0
    base = torch.load(BASE, map_location="cpu", weights_only=True)
    labels = list(base["labels"])
    trainset, held = split_replay(replay_data(), labels, AdaptConfig.replay_holdout)
    out = TMP / f"{args.name}.pt"
    torch.set_num_threads(args.threads)
    cfg = TrainConfig(
        out=out,
        checkpoint=TMP / f"{args.name}.ckpt",
        arch=base["arch"],
        steps=args.steps,
        lr=args.lr,
        warmup=max(1, args.steps // 10),
        min_size=int(base["min_size"]),
        max_size=int(base["max_size"]),
        repeat_thresh=args.repeat_thresh,
        resume=True,
    )
    t0 = time.time()
    train(cfg, trainset, labels, init_state=base["model"])
    seconds = round(time.time() - t0)
    rows = {
        "people (shipped, 1700 steps)": scores(str(BASE), "longer_base", held, labels),
        f"people + {args.steps} steps": scores(str(out), f"longer_{args.name}", held, labels),
    }
    payload = {
        "command": COMMAND,
        "steps": args.steps,
        "lr": args.lr,
        "repeat_thresh": args.repeat_thresh,
        "threads": args.threads,
        "seconds": seconds,
        "rows": rows,
    }
    _, md = write_report(args.name, payload, markdown(payload))
    print(md.read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
