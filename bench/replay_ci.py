"""Is a model's person AP on the held-out photo sets really below the shipped model's, or is
the difference the draw of a few dozen images? A paired bootstrap says.

    PYTHONPATH=. .venv/bin/python -m bench.replay_ci --models a=path/a.pt,b=path/b.pt

Each model and the shipped ``people`` model are scored on the held-out images of Penn-Fudan
and COCO128 (split as the model was trained on them: ``vis_train.adapt.split_replay``), then
on ``--resamples`` bootstrap draws of those images, the same draws for every model
(``vis_train.evaluate``). Reported per set: person mask AP, its difference from the shipped
model, and the 95 % interval of that difference over the draws. An interval that lies below
0 is a loss; one that spans 0 is a difference these images cannot tell from none.

Writes ``bench/results/<--name, default replay_ci>.{json,md}``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from bench.common import ROOT, setup_logging, write_report

COMMAND = "PYTHONPATH=. .venv/bin/python -m bench.replay_ci"
BASE = ROOT / "models" / "people_maskrcnn.pt"
BASE_NAME = "people (shipped)"


def intervals(
    models: dict[str, Path], labels: list[str], held: list, resamples: int = 200
) -> dict[str, dict[str, dict]]:
    """{model name: {dataset: {mask_AP, diff, interval}}} of person mask AP against the
    shipped model on ``held`` (the replay sets' held-out images); the shipped model's own
    row has no difference, and no row has an interval when ``resamples`` is 0."""
    from bench.adapt import person_ap
    from vis_train.adapt import held_out_ap
    from vis_train.evaluate import paired_interval

    scored = held_out_ap({BASE_NAME: BASE, **models}, labels, [], held, resamples=resamples)
    base = person_ap(scored[BASE_NAME])
    out: dict[str, dict[str, dict]] = {}
    for name, by_dataset in scored.items():
        out[name] = {}
        for data, ap in person_ap(by_dataset).items():
            row: dict = {"mask_AP": ap}
            if name != BASE_NAME:
                row["diff"] = round(ap - base[data], 2)
                if resamples:
                    row["interval"] = paired_interval(
                        scored[BASE_NAME][data]["resampled"]["person"],
                        by_dataset[data]["resampled"]["person"],
                    )
            out[name][data] = row
    return out


def cell(row: dict | None) -> str:
    if not row:
        return "-"
    if "interval" not in row:
        return f"{row['mask_AP']:.2f}" + (f" ({row['diff']:+.2f})" if "diff" in row else "")
    lo, hi = row["interval"]
    return f"{row['mask_AP']:.2f} ({row['diff']:+.2f}, [{lo:+.2f}, {hi:+.2f}])"


def markdown(payload: dict) -> str:
    sets = sorted({d for rows in payload["rows"].values() for d in rows})
    out = [
        "## Held-out person mask AP against the shipped model, with paired bootstrap intervals\n",
        f"`{COMMAND}`; {payload['resamples']} draws of the held-out images "
        f"({', '.join(f'{d}: {n}' for d, n in payload['images'].items())} images). "
        "Each cell: AP (difference from the shipped model, [95 % interval of the difference]).\n",
        "| model | " + " | ".join(sets) + " |",
        "|---|" + "---:|" * len(sets),
    ]
    for name, rows in payload["rows"].items():
        out.append(f"| {name} | " + " | ".join(cell(rows.get(d)) for d in sets) + " |")
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> int:
    from bench.adapt import replay_data
    from vis_train.adapt import AdaptConfig, split_replay

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", required=True, help="name=path,... model files to score")
    ap.add_argument("--resamples", type=int, default=200)
    ap.add_argument("--name", default="replay_ci")
    args = ap.parse_args(argv)
    setup_logging()
    models = {}
    for item in args.models.split(","):
        name, _, path = item.partition("=")
        if not Path(path).is_file():
            print(f"replay_ci: {path}: no such model file (give --models name=path,...)")
            return 2
        models[name] = Path(path)
    import torch

    labels = list(torch.load(BASE, map_location="cpu", weights_only=True)["labels"])
    held = split_replay(replay_data(), labels, AdaptConfig.replay_holdout)[1]
    rows = intervals(models, labels, held, args.resamples)
    images: dict[str, int] = {}
    for s in held:
        images[s.dataset] = images.get(s.dataset, 0) + 1
    payload = {"command": COMMAND, "resamples": args.resamples, "images": images, "rows": rows}
    _, md = write_report(args.name, payload, markdown(payload))
    print(md.read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
