"""``vis-pipeline adapt``: fine-tune a model on a run's own frames, as a reviewer decided
them (``vis_train.adapt``; docs/review.md, "Adapt").

    vis-pipeline adapt out/cam/cam1.jsonl --video cam1.mp4 \\
        --corrections cam1.corrections.json --model people -o models/cam1_people.pt

Accepted tracks become training instances (their keyframe masks as pseudo-masks), rejected
ones hard negatives, undecided ones are blanked out. Writes the model (load it with
``detector.weights: models/cam1_people.pt``), its card (``<out>.card.json`` / ``.md``: data,
steps, time, AP before and after on held-out frames) and a work folder
(``<out>.adapt/``: the training frames and the resume checkpoint; ``--resume`` continues an
interrupted run). ``--replay-pennfudan`` / ``--replay-coco`` mix the base model's own kind
of data back in so that it does not forget it. Exit codes: 0 written; 2 bad input (one
line naming it and the fix).
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import torch

from streams.exports import ExportError
from streams.exports.records import RunRecords
from streams.review.corrections import CorrectionsError, load_corrections
from vis_pipeline.summary import EXIT_INPUT, EXIT_OK


def parse_range(text: str | None) -> tuple[int, int] | None:
    """``"0-199"`` -> (0, 199)."""
    if text is None:
        return None
    a, sep, b = text.partition("-")
    if not sep or not a.strip().isdigit() or not b.strip().isdigit():
        raise ValueError(f"--range {text!r}: expected FIRST-LAST frame indices, e.g. 0-199")
    return int(a), int(b)


def model_path(name: str) -> Path:
    """A shipped model's name (``people``) or a file -> the file."""
    from vis.detection.models import SHIPPED_CHECKPOINTS

    path = Path(SHIPPED_CHECKPOINTS.get(name, name))
    if not path.is_file():
        raise FileNotFoundError(
            f"--model {name}: no such model file; give a shipped model "
            f"({', '.join(SHIPPED_CHECKPOINTS)}) or a .pt file tools/train.py wrote"
        )
    return path


def build_parser() -> argparse.ArgumentParser:
    from vis_train.adapt import AdaptConfig as D  # the defaults live with the settings

    p = argparse.ArgumentParser(
        prog="vis-pipeline adapt",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("jsonl", help="the run's vis.frame JSONL (one stream)")
    p.add_argument("--video", required=True, help="the video the run processed")
    p.add_argument("--corrections", required=True, help="vis.corrections/1 file of this run")
    p.add_argument("--model", default="people", help="model to start from (default people)")
    p.add_argument("--output", "-o", required=True, type=Path, help="the adapted model (.pt)")
    p.add_argument(
        "--steps", type=int, default=D.steps, help=f"fine-tuning steps (default {D.steps})"
    )
    p.add_argument("--batch", type=int, default=D.batch)
    p.add_argument("--lr", type=float, default=D.lr)
    p.add_argument(
        "--freeze-blocks",
        type=int,
        default=D.freeze_blocks,
        help="leading backbone blocks not trained",
    )
    p.add_argument(
        "--frames", type=int, default=D.frames, help=f"keyframes sampled (default {D.frames})"
    )
    p.add_argument("--range", default=None, metavar="FIRST-LAST", help="frames to sample from")
    p.add_argument("--holdout", type=float, default=D.holdout, help="last share of frames held out")
    p.add_argument("--precision", choices=("f32", "bf16"), default=D.precision)
    p.add_argument(
        "--blend",
        type=float,
        default=D.blend,
        help="share of the fine-tuning the model keeps: base + blend x (tuned - base) "
        f"(default {D.blend})",
    )
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: all)")
    p.add_argument("--seed", type=int, default=D.seed)
    p.add_argument("--resume", action="store_true", help="continue an interrupted adaptation")
    p.add_argument("--no-progress", action="store_true")
    r = p.add_argument_group("replay: the base model's kind of data, so it does not forget")
    r.add_argument("--replay-pennfudan", type=Path, default=None, metavar="DIR")
    r.add_argument("--replay-coco", type=Path, default=None, metavar="JSON")
    r.add_argument("--replay-images", type=Path, default=None, metavar="DIR")
    r.add_argument(
        "--replay-share",
        type=float,
        default=D.replay_share,
        help=f"share of draws (default {D.replay_share})",
    )
    r.add_argument(
        "--replay-holdout",
        type=float,
        default=D.replay_holdout,
        help="held-out share of each replay set, split as tools/train.py splits (seed 0): "
        f"the shipped models' own held-out images stay unseen (default {D.replay_holdout})",
    )
    return p


def replay_samples(args: argparse.Namespace):
    """The replay sets given on the command line, whole (``adapt`` splits them)."""
    from vis_train.data import read_coco, read_pennfudan

    samples = []
    if args.replay_pennfudan is not None:
        samples += read_pennfudan(args.replay_pennfudan)
    if args.replay_coco is not None:
        if args.replay_images is None:
            raise ValueError("--replay-coco needs --replay-images (the folder of its images)")
        samples += read_coco(args.replay_coco, args.replay_images)
    return samples


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    from vis_train.adapt import AdaptConfig, AdaptError, adapt
    from vis_train.data import DatasetError

    if args.threads:
        torch.set_num_threads(args.threads)
    logging.getLogger("vis_train").setLevel(logging.WARNING)
    try:
        cfg = AdaptConfig(
            out=args.output,
            model=model_path(args.model),
            steps=args.steps,
            batch=args.batch,
            lr=args.lr,
            freeze_blocks=args.freeze_blocks,
            frames=args.frames,
            frame_range=parse_range(args.range),
            holdout=args.holdout,
            replay_share=args.replay_share,
            replay_holdout=args.replay_holdout,
            precision=args.precision,
            blend=args.blend,
            seed=args.seed,
            resume=args.resume,
            progress=not args.no_progress,
        )
        run = RunRecords.open(args.jsonl)
        corrections = load_corrections(args.corrections, run)
        if not Path(args.video).is_file():
            raise FileNotFoundError(
                f"--video {args.video}: no such file; give the video the run processed"
            )
        card = adapt(cfg, run, args.video, corrections, replay=replay_samples(args))
    except (
        AdaptError,
        CorrectionsError,
        ExportError,
        DatasetError,
        FileNotFoundError,
        ValueError,
    ) as exc:
        print(f"vis-pipeline adapt: {exc}", file=sys.stderr)
        return EXIT_INPUT
    d, t = card["data"], card["training"]
    print(
        f"adapted {cfg.model.name} -> {cfg.out} in {card['seconds']} s ({t['steps']} steps, "
        f"{t['seconds_per_step']} s/step, {t['precision']}): {d['train_frames']} frames, "
        f"{d['accepted']} accepted, {d['rejected']} rejected, {d['blanked']} undecided blanked; "
        f"card {cfg.out.with_suffix('')}.card.md"
    )
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
