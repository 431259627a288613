"""A shipped model (default ``people_cars``, persons and cars) through the whole pipeline on
real video with ground truth: DAVIS 2016 (``vis_eval.davis``), one annotated object per
sequence, at N = 1, 5 and 10.

    PYTHONPATH=. .venv/bin/python -m bench.davis                    # all sequences, N = 1 5 10
    PYTHONPATH=. .venv/bin/python -m bench.davis --intervals 5 --only lucia

Each N is one ``vis_pipeline.run`` over the sequences' JPEG folders (one after the other,
``configs/street.yaml`` with both of the model's classes, ``fps: 24``, JSONL only, outputs
under ``bench/results/tmp/davis``); the JSONL is read back and scored by
``vis_eval.davis.score_object``: J of the one track that covers the object most, J of the
best mask per frame, distinct ids and missed frames. fps is the stream's frames over its
wall time (decode to written record, model loading excluded). The model's held-out AP per
class comes from its ``.ap.json`` beside it (``--model``, default the shipped
``models/people_cars_maskrcnn.pt``). Without the shared data the study prints what is
missing and exits 0. Writes bench/results/<--name, default davis>.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from bench.common import RESULTS, ROOT, setup_logging, write_report
from vis_eval import davis
from vis_eval.tables import markdown_table

log = logging.getLogger("bench.davis")

CONFIG = davis.CONFIG
MODEL = ROOT / "models" / "people_cars_maskrcnn.pt"
WORK = RESULTS / "tmp" / "davis"
INTERVALS = (1, 5, 10)
COMMAND = "PYTHONPATH=. .venv/bin/python -m bench.davis"
BASE = davis.RUN_SETTINGS
COLUMNS = [
    ("sequence", "sequence", "s"),
    ("object", "object", "s"),
    ("N", "N", "d"),
    ("annotated", "frames", "d"),
    ("J_track", "J (one track)", ".3f"),
    ("J_best", "J (best mask)", ".3f"),
    ("ids", "ids", "d"),
    ("missed", "missed", "d"),
    ("fps", "fps", ".1f"),
]


def run_interval(
    root: Path, names: list[str], interval: int, overrides: list[str], work: Path = WORK
) -> list[dict]:
    """``vis_eval.davis.run_sequences`` over ``names`` at keyframe interval ``interval`` ->
    scored rows (outputs under ``work/N<interval>``)."""
    rows = davis.run_sequences(root, names, interval, overrides, work / f"N{interval}")
    for row in rows:
        log.info("%s N=%d: %s", row["sequence"], interval, row)
    return rows


def model_ap(model: Path) -> list[dict]:
    """Held-out AP per dataset and class of ``model`` (rows for the report)."""
    held = json.loads(model.with_name(model.name.removesuffix(".pt") + ".ap.json").read_text())
    rows = []
    for data, r in held["held_out"].items():
        for cls, ap in r["per_class"].items():
            if ap:
                n = r["instances"][cls]
                rows.append({"data": data, "images": r["images"], "class": cls, "n": n, **ap})
    return rows


def markdown(rows: list[dict], ap: list[dict], overrides: list[str], model: Path) -> str:
    ap_table = markdown_table(
        ap,
        [
            ("data", "held-out images", "s"),
            ("images", "images", "d"),
            ("class", "class", "s"),
            ("n", "instances", "d"),
            ("mask_AP", "mask AP", ".2f"),
            ("mask_AP50", "mask AP50", ".2f"),
            ("box_AP", "box AP", ".2f"),
        ],
    )
    extra = f" `{' '.join('--set ' + o for o in overrides)}`" if overrides else ""
    return (
        f"DAVIS 2016 480p, `{COMMAND}`{extra}; model `{_shown(model)}`, "
        "configs/street.yaml "
        "with both classes, 1 detector thread.\n\n"
        + markdown_table(rows, COLUMNS)
        + "\n\nJ (one track): mask IoU of the single track id that covers the object most, "
        "averaged over the annotated frames (0 where that track has no mask). J (best mask): "
        "the best IoU of any output mask per frame (identity ignored). ids: distinct track ids "
        "that were a frame's best match at IoU >= 0.5. missed: frames where no mask reaches "
        "IoU 0.5.\n\nThe model's held-out AP (its `.ap.json`):"
        "\n\n" + ap_table
    )


def _shown(path: Path) -> str:
    """``path`` relative to the repository when it is inside it (a model elsewhere: as is)."""
    path = Path(path).resolve()
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=davis.DATA, help="the DAVIS folder")
    ap.add_argument("--intervals", type=int, nargs="+", default=list(INTERVALS))
    ap.add_argument("--only", nargs="+", default=None, help="sequence names")
    ap.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    ap.add_argument("--model", type=Path, default=MODEL, help="the model file (.pt)")
    ap.add_argument("--name", default="davis", help="report name under bench/results")
    args = ap.parse_args(argv)
    args.model = args.model.resolve()
    overrides = [f"detector.weights={args.model}", *args.overrides]
    setup_logging()
    names = args.only or list(davis.SEQUENCES)
    missing = davis.available(args.data, names)
    if missing:
        print(f"bench.davis skipped: {missing}", file=sys.stderr)
        return 0
    rows = []
    for n in args.intervals:
        rows += run_interval(args.data, names, n, overrides)
    ap_rows = model_ap(args.model)
    payload = {
        "command": COMMAND,
        "config": _shown(CONFIG),
        "model": _shown(args.model),
        "overrides": [*BASE, *overrides],
        "rows": rows,
        "model_held_out_ap": ap_rows,
    }
    j, m = write_report(args.name, payload, markdown(rows, ap_rows, args.overrides, args.model))
    print(m.read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
