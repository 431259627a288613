"""Train the shipped demo Mask R-CNN (arch ``tiny_fpn``) on synthetic scenes, from scratch.

    python tools/train_demo.py                      # the shipped model (defaults below)
    python tools/train_demo.py --iters 200 --out /tmp/m.pt   # a quick smoke run

Every batch is freshly rendered by ``vis_eval.synthetic`` from a seeded stream of random
scene configs, so the run is reproducible from ``--seed`` alone. Ends by scoring mask AP
on held-out scenes (seeds disjoint from training) with pycocotools.
"""

from __future__ import annotations

import argparse
import json
import os
import logging
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from vis_eval.synthetic import CLASS_NAMES, SceneRenderer, random_scene_config  # noqa: E402
from vis.detection.models import DEMO_CHECKPOINT, build_tiny_maskrcnn  # noqa: E402

log = logging.getLogger("train_demo")
MIN_SIZE, MAX_SIZE = 320, 640


def sample_batch(rng: np.random.Generator, batch: int) -> tuple[list, list]:
    images, targets = [], []
    for _ in range(batch):
        cfg = random_scene_config(rng, n_frames=60)
        frame = SceneRenderer(cfg).render(int(rng.integers(0, 60)))
        img = torch.from_numpy(frame.image[:, :, ::-1].copy()).permute(2, 0, 1).float() / 255
        images.append(img)
        targets.append(
            {
                "boxes": torch.from_numpy(frame.boxes).reshape(-1, 4),
                "labels": torch.from_numpy(frame.class_ids),
                "masks": torch.from_numpy(frame.masks.astype(np.uint8)),
            }
        )
    return images, targets


def train(args: argparse.Namespace) -> Path:
    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    rng = np.random.default_rng(args.seed)
    model = build_tiny_maskrcnn(num_classes=len(CLASS_NAMES), min_size=MIN_SIZE, max_size=MAX_SIZE)
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=1e-4)
    warmup = min(300, args.iters // 10)

    def lr_at(it: int) -> float:
        if it < warmup:
            return args.lr * (0.1 + 0.9 * it / warmup)
        return args.lr * 0.5 * (1 + math.cos(math.pi * (it - warmup) / max(1, args.iters - warmup)))

    t0 = time.time()
    avg: dict[str, float] = {}
    for it in range(args.iters):
        for g in opt.param_groups:
            g["lr"] = lr_at(it)
        images, targets = sample_batch(rng, args.batch)
        losses = model(images, targets)
        loss = sum(losses.values())
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 10.0)
        opt.step()
        for k, v in losses.items():
            avg[k] = 0.98 * avg.get(k, v.item()) + 0.02 * v.item()
        if it % 50 == 0 or it == args.iters - 1:
            el = time.time() - t0
            log.info(
                "it %d/%d  %.2fs/it  lr %.5f  %s",
                it,
                args.iters,
                el / (it + 1),
                lr_at(it),
                " ".join(f"{k[5:]}={v:.3f}" for k, v in avg.items()),
            )
        if args.out and (it + 1) % 500 == 0:
            save(model, args.out)
    save(model, args.out)
    log.info("trained %d iterations in %.1f min", args.iters, (time.time() - t0) / 60)
    return args.out


def save(model: torch.nn.Module, out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp")
    torch.save(
        {
            "model": model.state_dict(),
            "arch": "tiny_fpn",
            "labels": [CLASS_NAMES[c] for c in sorted(CLASS_NAMES)],
            "min_size": MIN_SIZE,
            "max_size": MAX_SIZE,
        },
        tmp,
    )
    tmp.replace(out)


def evaluate_ap(checkpoint: Path, n_images: int, seed: int) -> dict[str, float]:
    """Mask and box AP (pycocotools) on ``n_images`` held-out synthetic frames."""
    from vis.detection.detector import MaskRCNNDetector
    from vis_eval.coco_ap import coco_mask_ap

    det = MaskRCNNDetector.from_weights(
        weights=str(checkpoint), score_threshold=0.05, max_detections=100
    )
    rng = np.random.default_rng(seed)
    gts, preds = [], []
    for _ in range(n_images):
        cfg = random_scene_config(rng, n_frames=60)
        frame = SceneRenderer(cfg).render(int(rng.integers(0, 60)))
        gts.append((frame.masks, frame.class_ids))
        d = det.detect([frame.image])[0]
        preds.append((d.full_masks(), d.class_ids, d.scores))
    return coco_mask_ap(gts, preds, class_names=CLASS_NAMES)


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--iters", type=int, default=3000)
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out", type=Path, default=DEMO_CHECKPOINT)
    p.add_argument("--eval-only", action="store_true", help="only score --out on held-out scenes")
    p.add_argument("--eval-images", type=int, default=200)
    p.add_argument("--eval-json", type=Path, default=Path("models/demo_tiny_maskrcnn.ap.json"))
    args = p.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    if not args.eval_only:
        train(args)
    if args.eval_images <= 0:
        return
    ap = evaluate_ap(args.out, args.eval_images, seed=10_000 + args.seed)
    log.info("held-out AP: %s", json.dumps(ap))
    args.eval_json.write_text(
        json.dumps(
            {"checkpoint": os.path.relpath(args.out), "images": args.eval_images, **ap}, indent=2
        )
        + "\n"
    )


if __name__ == "__main__":
    main()
