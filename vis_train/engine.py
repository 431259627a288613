"""Fine-tune a torchvision Mask R-CNN on instance-segmentation samples, resumably.

Contract: ``train(cfg, samples, labels)`` runs ``cfg.steps`` optimizer steps over
``samples`` (``vis_train.data.Sample``), writes a resume checkpoint (model, optimizer, step,
sampler state) every ``cfg.checkpoint_every`` steps and the final model to ``cfg.out`` in the
format ``vis.detection.models.load_model`` reads. With ``cfg.resume`` it continues from the
resume checkpoint's step with the same sample order it would have had without the stop.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torchvision.models.detection import MaskRCNN
from tqdm import tqdm

from vis.detection.architectures import build_arch, build_tiny_maskrcnn
from vis.detection.precision import pin_torch_f32, torch_autocast
from vis_train.data import Sample, load_target, trainable
from vis_train.sampling import DonorBank, draw, repeat_factors

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Attributes:
    out: the final model file (``{"model", "arch", "labels", "min_size", "max_size"}``).
    checkpoint: the resume checkpoint (adds optimizer, step and sampler state).
    arch: ``mobilenet_v2_fpn`` or ``tiny_fpn`` (see ``vis.detection.models``).
    steps, batch: optimizer steps and images per step.
    lr, backbone_lr_mult, weight_decay, warmup: AdamW, linear warm-up then cosine decay;
        the backbone's learning rate is ``lr * backbone_lr_mult``.
    freeze_blocks: leading backbone blocks (``mobilenet_v2_fpn``: of ``features``) not trained.
    train_sizes: shorter-side sizes drawn per image (scale jitter); ``min_size`` /
        ``max_size``: the inference resize stored in the model file.
    hflip: probability of a horizontal flip; ``photometric``: brightness/contrast jitter.
    checkpoint_every: steps between resume checkpoints.
    seed: sampling and augmentation seed.
    repeat_thresh: repeat-factor sampling threshold ``t`` (``vis_train.sampling``); 0 draws
        every training image equally often.
    copy_paste: probability that a training image gets 1-2 donor objects pasted on it;
        paste_classes: the classes cut out as donors (from training images and ``donors``).
    precision: ``f32`` (IEEE float32, pinned) or ``bf16`` (the forward pass under CPU bf16
        autocast; the weights and optimizer stay float32).
    resume: continue from ``checkpoint`` if it exists.
    stop_after: end this process after that step (a resume checkpoint and the model file
        are written): for time-boxed sessions; ``resume`` continues the same schedule.
    """

    out: Path
    checkpoint: Path
    arch: str = "mobilenet_v2_fpn"
    steps: int = 1000
    batch: int = 2
    lr: float = 1e-3
    backbone_lr_mult: float = 0.25
    weight_decay: float = 1e-4
    warmup: int = 100
    freeze_blocks: int = 4
    train_sizes: tuple[int, ...] = (320, 352, 384, 416, 448, 480, 512)
    min_size: int = 480
    max_size: int = 800
    hflip: float = 0.5
    photometric: float = 0.2
    checkpoint_every: int = 100
    seed: int = 0
    repeat_thresh: float = 0.0
    copy_paste: float = 0.0
    paste_classes: tuple[str, ...] = ()
    precision: str = "f32"
    resume: bool = False
    stop_after: int | None = None
    progress: bool = True


def build_model(cfg: TrainConfig, num_classes: int, backbone_state: dict | None = None) -> MaskRCNN:
    """The model to train: ``cfg.arch`` with ``num_classes`` foreground classes, the
    pretrained backbone loaded when given, ``cfg.freeze_blocks`` leading blocks frozen and
    the scale jitter of ``cfg.train_sizes`` set on the model's transform."""
    if cfg.arch == "tiny_fpn":
        model = build_tiny_maskrcnn(
            num_classes=num_classes, min_size=cfg.min_size, max_size=cfg.max_size
        )
        blocks = list(model.backbone.stages)
    elif cfg.arch == "mobilenet_v2_fpn":
        from vis.detection.models import load_mobilenet_v2_features

        model = build_arch(cfg.arch, num_classes, cfg.min_size, cfg.max_size)
        if backbone_state is not None:
            load_mobilenet_v2_features(model.backbone, backbone_state)
        blocks = list(model.backbone.body)
    else:
        raise ValueError(
            f"arch {cfg.arch!r} cannot be trained here: use mobilenet_v2_fpn or tiny_fpn"
        )
    for block in blocks[: cfg.freeze_blocks]:
        block.requires_grad_(False)
    model.transform.min_size = tuple(cfg.train_sizes)
    return model


def _param_groups(model: MaskRCNN, cfg: TrainConfig) -> list[dict]:
    body = model.backbone.body if hasattr(model.backbone, "body") else model.backbone.stages
    body_ids = {id(p) for p in body.parameters()}
    trainable_params = [p for p in model.parameters() if p.requires_grad]
    return [
        {
            "params": [p for p in trainable_params if id(p) in body_ids],
            "lr_mult": cfg.backbone_lr_mult,
        },
        {"params": [p for p in trainable_params if id(p) not in body_ids], "lr_mult": 1.0},
    ]


def lr_at(cfg: TrainConfig, step: int) -> float:
    """Learning rate of step ``step`` (0-based): linear warm-up from 10 %, then cosine to 0."""
    warmup = min(cfg.warmup, max(1, cfg.steps // 10))
    if step < warmup:
        return cfg.lr * (0.1 + 0.9 * step / warmup)
    return cfg.lr * 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(1, cfg.steps - warmup)))


def augment(
    image: np.ndarray, masks: np.ndarray, boxes: np.ndarray, gen: torch.Generator, cfg: TrainConfig
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Horizontal flip and brightness/contrast jitter (scale jitter is the model transform's).

    Args:
        image: (H, W, 3) uint8 RGB; masks: (N, H, W) uint8; boxes: (N, 4) xyxy.

    Returns:
        image (3, H, W) float in [0, 1], masks (N, H, W) uint8, boxes (N, 4) float32.
    """
    img = torch.from_numpy(image).permute(2, 0, 1).float().div_(255.0)
    m = torch.from_numpy(masks)
    b = torch.from_numpy(boxes).clone()
    if torch.rand((), generator=gen).item() < cfg.hflip:
        img, m = img.flip(-1), m.flip(-1)
        w = image.shape[1]
        b[:, [0, 2]] = w - b[:, [2, 0]]
    if cfg.photometric > 0:
        r = (torch.rand(2, generator=gen) * 2 - 1) * cfg.photometric
        mean = img.mean()
        img = ((img - mean) * (1 + r[0]) + mean + r[1] * 0.5).clamp_(0, 1)
    return img, m, b


def save_model(model: MaskRCNN, cfg: TrainConfig, labels: Sequence[str], path: Path) -> None:
    """Write the inference file ``load_model`` reads (atomically)."""
    _atomic_save(_model_record(model, cfg, labels), path)


def _model_record(model: MaskRCNN, cfg: TrainConfig, labels: Sequence[str]) -> dict:
    return {
        "model": model.state_dict(),
        "arch": cfg.arch,
        "labels": list(labels),
        "min_size": cfg.min_size,
        "max_size": cfg.max_size,
    }


def _atomic_save(obj: dict, path: Path) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    torch.save(obj, tmp)
    tmp.replace(path)


def train(
    cfg: TrainConfig,
    samples: Sequence[Sample],
    labels: Sequence[str],
    *,
    backbone_state: dict | None = None,
    donors: Sequence[Sample] = (),
    init_state: dict | None = None,
    negatives: Sequence[Sample] = (),
    sample_weights: Sequence[float] | None = None,
) -> dict:
    """Train and write ``cfg.out``; returns a summary (steps, seconds, images, last losses).

    Args:
        samples: the training images (those without a trainable instance are skipped).
        labels: the class list; class id k is ``labels[k - 1]``.
        backbone_state: pretrained backbone weights (ignored when resuming).
        donors: more images to cut ``cfg.paste_classes`` objects from for copy-paste
            (never trained on whole: e.g. video frames where other objects are unannotated).
        init_state: the whole model's weights to start from (fine-tuning a trained model of
            the same arch and classes; ignored when resuming).
        negatives: images trained on although they have no instance: all they show is
            background (e.g. frames whose only detections a reviewer rejected).
        sample_weights: per image of ``samples`` then ``negatives``, multiplies the repeat
            factor (how often it is drawn); samples skipped as untrainable drop theirs.
    """
    if cfg.precision not in ("f32", "bf16"):
        raise ValueError(f"precision {cfg.precision!r}: use f32 or bf16")
    keep = [k for k, s in enumerate(samples) if trainable(s, labels)]
    pool = [samples[k] for k in keep] + list(negatives)
    if not keep:
        raise ValueError(f"no training image has an instance of {', '.join(labels)}")
    factors = repeat_factors(pool, labels, cfg.repeat_thresh)
    if sample_weights is not None:
        w = np.asarray(sample_weights, np.float64)
        factors = factors * np.concatenate([w[keep], w[len(samples) :]])
    weights = torch.from_numpy(factors)
    bank = None
    if cfg.copy_paste > 0:
        bank = DonorBank([*pool, *donors], labels, cfg.paste_classes or labels)
        log.info("copy-paste: %d donor objects of %s", len(bank), cfg.paste_classes or labels)
    # Our own generator draws images and augmentations; torchvision draws the scale jitter
    # and the RPN / RoI samples from the global one: both are seeded here and saved in the
    # resume checkpoint, so a resumed run continues as if it had never stopped.
    pin_torch_f32()
    gen = torch.Generator().manual_seed(cfg.seed)
    torch.manual_seed(cfg.seed)
    start = 0
    resumed = cfg.resume and Path(cfg.checkpoint).is_file()
    model = build_model(cfg, len(labels), None if resumed else backbone_state)
    if init_state is not None and not resumed:
        model.load_state_dict(init_state)
    opt = torch.optim.AdamW(_param_groups(model, cfg), lr=cfg.lr, weight_decay=cfg.weight_decay)
    if resumed:
        ck = torch.load(cfg.checkpoint, map_location="cpu", weights_only=True)
        if list(ck["labels"]) != list(labels) or ck["arch"] != cfg.arch:
            raise ValueError(
                f"resume checkpoint {cfg.checkpoint} is {ck['arch']} with classes "
                f"{ck['labels']}, not {cfg.arch} with {list(labels)}"
            )
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["optimizer"])
        gen.set_state(ck["generator"])
        torch.set_rng_state(ck["torch_rng"])
        start = int(ck["step"])
        log.info("resumed from %s at step %d", cfg.checkpoint, start)
    model.train()
    cache: dict[int, tuple] = {}
    t0 = time.time()
    avg: dict[str, float] = {}
    end = cfg.steps if cfg.stop_after is None else max(start, min(cfg.steps, cfg.stop_after))
    bar = tqdm(
        range(start, end),
        initial=start,
        total=cfg.steps,
        disable=not cfg.progress,
        desc="train",
        unit="step",
        dynamic_ncols=True,
    )
    for step in bar:
        lr = lr_at(cfg, step)
        for g in opt.param_groups:
            g["lr"] = lr * g["lr_mult"]
        idx = draw(weights, cfg.batch, gen)
        images, targets = [], []
        for i in idx:
            if i not in cache:
                cache[i] = load_target(pool[i], labels)
            target = cache[i]
            if bank is not None and torch.rand((), generator=gen).item() < cfg.copy_paste:
                target = bank.paste(target, gen)
            image, masks, boxes, class_ids = target
            img, m, b = augment(image, masks, boxes, gen, cfg)
            images.append(img)
            targets.append({"boxes": b, "labels": torch.from_numpy(class_ids), "masks": m})
        with torch_autocast(cfg.precision):
            losses = model(images, targets)
        loss = sum(v.float() for v in losses.values())
        if not torch.isfinite(loss):
            raise FloatingPointError(f"step {step}: loss is {loss.item()} ({losses})")
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_([p for g in opt.param_groups for p in g["params"]], 10.0)
        opt.step()
        for k, v in losses.items():
            avg[k] = 0.95 * avg.get(k, v.item()) + 0.05 * v.item()
        bar.set_postfix(loss=f"{sum(avg.values()):.3f}", lr=f"{lr:.2e}")
        done = step + 1
        if done % cfg.checkpoint_every == 0 or done == end:
            _atomic_save(
                {
                    **_model_record(model, cfg, labels),
                    "optimizer": opt.state_dict(),
                    "generator": gen.get_state(),
                    "torch_rng": torch.get_rng_state(),
                    "step": done,
                },
                cfg.checkpoint,
            )
            log.info(
                "step %d/%d  %.2f s/step  %s",
                done,
                cfg.steps,
                (time.time() - t0) / (done - start),
                " ".join(f"{k.removeprefix('loss_')}={v:.3f}" for k, v in avg.items()),
            )
    bar.close()
    model.transform.min_size = (cfg.min_size,)
    save_model(model.eval(), cfg, labels, cfg.out)
    seconds = time.time() - t0
    return {
        "steps": end,
        "schedule_steps": cfg.steps,
        "resumed_at": start,
        "seconds": round(seconds, 1),
        "train_images": len(keep),
        "negative_images": len(negatives),
        "mean_repeat_factor": round(float(weights.mean()), 3),
        "donor_objects": len(bank) if bank is not None else 0,
        "losses": {k: round(v, 4) for k, v in avg.items()},
    }
