"""Adapt a model to one camera: fine-tune it on a run's own frames, as a reviewer decided them.

Contract: ``adapt(cfg, run, video, corrections)`` samples ``cfg.frames`` keyframes spread over
the run (or ``cfg.frame_range`` of it), turns each into a training image with the reviewer's
decisions (``streams.review.corrections``: the latest decision covering the frame), fine-tunes
``cfg.model`` from its own weights (``vis_train.engine.train``, resumable) and writes the new
checkpoint, ``cfg.out``, with a model card beside it (``<out>.card.json`` and ``.md``: data,
steps, time, precision, CPU, and AP before/after on frames it was not trained on).

What a decision makes of an instance (its keyframe mask is the pseudo-mask):

* ``accept``: a training instance of its class; ``wrong_class``: one of the label given;
* ``reject``: nothing: its pixels are background, a hard negative (a frame whose only
  instances were rejected is trained on as background alone);
* no decision: its pixels are blanked (filled with the frame's mean colour, a little beyond
  its mask), so it teaches neither "object" nor "background".

The last ``cfg.holdout`` of the sampled frames, in time, are never trained on: the card's AP
is measured there, for the base and the adapted model, against the accepted instances. With
replay sets (``replay``: e.g. the base model's own training data; kept to the model's
classes and split by ``vis_train.data.holdout_split`` with ``cfg.replay_holdout`` and seed 0,
as ``vis-pipeline train`` splits, so the images it held out stay unseen), ``cfg.replay_share`` of
the images drawn come from their training part, which keeps what the model knew; their
held-out images are scored before and after as well.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from pycocotools import mask as mask_utils

from streams.exports.records import RunRecords, video_frames
from streams.review.corrections import Corrections, resolve
from vis.detection.precision import cpu_features
from vis.schema import decode_mask
from vis_train.data import Instance, Sample, holdout_split, select_classes
from vis_train.engine import TrainConfig, train
from vis_train.evaluate import evaluate

log = logging.getLogger(__name__)

#: pixels of blanking around an undecided instance's mask (its detector mask may be tight)
BLANK_MARGIN = 4


class AdaptError(ValueError):
    """Input adaptation cannot use (the message names it and the fix)."""


@dataclasses.dataclass(frozen=True)
class AdaptConfig:
    """Attributes:
    out: the adapted model file (``.pt``); its card and work folder go beside it.
    model: the model to start from: a file ``load_model`` reads (``torch.load`` record with
        ``model``, ``arch``, ``labels``; the shipped ``people`` model is one).
    steps, batch, lr: the fine-tuning schedule (AdamW, warm-up then cosine, as ``train``).
    freeze_blocks: leading backbone blocks kept as they are (``TrainConfig.freeze_blocks``).
    frames: keyframes sampled evenly over the run (or ``frame_range``) as training images.
    frame_range: (first, last) frame index the frames come from (None: the whole run).
    holdout: the last fraction of the sampled frames, in time, kept for the card's AP.
    replay_share: share of the images drawn from the replay sets (when given).
    replay_holdout: share of each replay set held out (scored, never trained on).
    precision: ``f32`` or ``bf16`` (autocast in the forward pass; see ``TrainConfig``).
    blend: share of the fine-tuning the written model keeps: its weights are
        ``base + blend * (tuned - base)`` (1: the fine-tuned weights as they are; smaller
        keeps more of what the base model knew). 0.5 won both PETS folds against 1, 0.7
        and 0.3, on the camera and on the replay sets (docs/results.md): the
        fine-tuned box head separates the camera's people less well, which costs the
        tracker's appearance term. The fine-tuned weights themselves stay in the work folder
        (``tuned.pt``).
    seed: sampling and augmentation seed.
    resume: continue an interrupted adaptation of the same inputs.
    progress: tqdm bars.
    """

    out: Path
    model: Path
    steps: int = 300
    batch: int = 2
    lr: float = 1e-4
    freeze_blocks: int = 4
    frames: int = 120
    frame_range: tuple[int, int] | None = None
    holdout: float = 0.2
    replay_share: float = 0.5
    replay_holdout: float = 0.2
    precision: str = "f32"
    blend: float = 0.5
    seed: int = 0
    resume: bool = False
    progress: bool = True

    def __post_init__(self) -> None:
        if self.steps < 1 or self.batch < 1 or self.frames < 2:
            raise AdaptError("adapt: --steps and --batch must be >= 1 and --frames >= 2")
        shares = (self.holdout, self.replay_share, self.replay_holdout)
        if not all(0.0 <= v < 1.0 for v in shares):
            raise AdaptError(
                "adapt: --holdout, --replay-share and --replay-holdout must be in [0, 1)"
            )
        if not 0.0 < self.blend <= 1.0:
            raise AdaptError(f"adapt: --blend {self.blend}: use a share in (0, 1]")
        if self.precision not in ("f32", "bf16"):
            raise AdaptError(f"adapt: --precision {self.precision!r}: use f32 or bf16")
        if self.frame_range is not None and self.frame_range[0] > self.frame_range[1]:
            raise AdaptError(
                f"adapt: --range {self.frame_range}: the first frame is after the last"
            )


@dataclasses.dataclass
class FrameStats:
    """What the sampled frames hold, by decision."""

    accepted: int = 0
    relabelled: int = 0
    rejected: int = 0
    blanked: int = 0
    negative_frames: int = 0


def pick_frames(run: RunRecords, keyframes: Sequence[int], cfg: AdaptConfig) -> list[int]:
    """``cfg.frames`` keyframe indices spread evenly over the range, in order."""
    lo, hi = cfg.frame_range or (run.frame_indices[0], run.frame_indices[-1])
    pool = [f for f in keyframes if lo <= f <= hi]
    if len(pool) <= cfg.frames:
        return pool
    at = np.linspace(0, len(pool) - 1, cfg.frames).round().astype(int)
    return [pool[i] for i in sorted(set(at.tolist()))]


def keyframe_indices(run: RunRecords) -> list[int]:
    """The run's keyframes (the detector's own masks: the pseudo-labels)."""
    return [int(r["frame_index"]) for r in run.records() if r.get("keyframe")]


def frame_sample(
    record: dict[str, Any],
    image: np.ndarray,
    corrections: Corrections,
    labels: Sequence[str],
    folder: Path,
    stats: FrameStats,
) -> Sample:
    """One keyframe's training image (written under ``folder``) with its instances as decided."""
    h, w = image.shape[:2]
    frame = int(record["frame_index"])
    instances: list[Instance] = []
    blank = np.zeros((h, w), np.uint8)
    for inst in record.get("instances", []):
        tid = inst.get("track_id")
        decision = None if tid is None else resolve(corrections, int(tid), frame)
        mask = decode_mask(inst["mask"], (h, w))
        if decision is None:
            blank |= mask.astype(np.uint8)
            stats.blanked += 1
        elif decision.decision == "reject":
            stats.rejected += 1
        else:
            label = decision.label if decision.decision == "wrong_class" else inst.get("label")
            if label not in labels:
                blank |= mask.astype(np.uint8)  # a class this model does not have: no lesson
                stats.blanked += 1
                continue
            rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
            instances.append(Instance(label, rle))
            if decision.decision == "wrong_class":
                stats.relabelled += 1
            else:
                stats.accepted += 1
    out = image
    if blank.any():
        kernel = np.ones((2 * BLANK_MARGIN + 1, 2 * BLANK_MARGIN + 1), np.uint8)
        region = cv2.dilate(blank, kernel).astype(bool)
        out = image.copy()
        out[region] = image.reshape(-1, 3).mean(axis=0).astype(np.uint8)
    if not instances:
        stats.negative_frames += 1
    path = folder / f"{frame:07d}.png"
    cv2.imwrite(str(path), out)
    return Sample("camera", f"{frame:07d}", path, h, w, tuple(instances))


def build_samples(
    run: RunRecords,
    video: str | Path,
    corrections: Corrections,
    labels: Sequence[str],
    cfg: AdaptConfig,
    folder: Path,
) -> tuple[list[Sample], list[Sample], FrameStats]:
    """(training samples, held-out samples, what they hold) from the run's sampled keyframes."""
    frames = pick_frames(run, keyframe_indices(run), cfg)
    if len(frames) < 2:
        raise AdaptError(
            f"{run.path}: {len(frames)} keyframe(s) in frames "
            f"{cfg.frame_range or 'of the run'}: adapt needs at least 2; widen --range"
        )
    folder.mkdir(parents=True, exist_ok=True)
    wanted = set(frames)
    records = {int(r["frame_index"]): r for r in run.records() if int(r["frame_index"]) in wanted}
    stats = FrameStats()
    samples = [
        frame_sample(records[i], image, corrections, labels, folder, stats)
        for i, image in video_frames(run, video, wanted)
    ]
    n_held = max(1, round(cfg.holdout * len(samples))) if cfg.holdout > 0 else 0
    return samples[: len(samples) - n_held], samples[len(samples) - n_held :], stats


def adapt(
    cfg: AdaptConfig,
    run: RunRecords,
    video: str | Path,
    corrections: Corrections,
    *,
    replay: Sequence[Sample] = (),
) -> dict[str, Any]:
    """Fine-tune ``cfg.model`` on the run's frames as decided; returns the model card (also
    written beside ``cfg.out``). ``AdaptError`` for input that cannot be used."""
    base = torch.load(cfg.model, map_location="cpu", weights_only=True)
    if not isinstance(base, dict) or "model" not in base or "labels" not in base:
        raise AdaptError(
            f"{cfg.model}: not a model file written by tools/train.py (need its weights, arch "
            "and labels); give a shipped model name or such a file"
        )
    labels = list(base["labels"])
    replay, replay_held_out = split_replay(replay, labels, cfg.replay_holdout)
    stem = cfg.out.with_suffix("")
    work = stem.parent / (stem.name + ".adapt")
    train_samples, held, stats = build_samples(
        run, video, corrections, labels, cfg, work / "frames"
    )
    positives = [s for s in train_samples if s.instances]
    if not positives:
        raise AdaptError(
            f"no accepted instance in the {len(train_samples)} training frames of {run.path}: "
            "accept some tracks (vis-pipeline review, or vis-pipeline corrections --accept)"
        )
    negatives = [s for s in train_samples if not s.instances]
    camera_n = len(positives) + len(negatives)
    share = cfg.replay_share if replay else 0.0
    camera_w = (1.0 - share) / camera_n  # per camera image; the replay set shares ``share``
    replay_w = [share / len(replay)] * len(replay) if replay else []
    tuned = work / "tuned.pt"
    tcfg = TrainConfig(
        out=tuned,
        checkpoint=work / "train.ckpt",
        arch=base.get("arch", "mobilenet_v2_fpn"),
        steps=cfg.steps,
        batch=cfg.batch,
        lr=cfg.lr,
        freeze_blocks=cfg.freeze_blocks,
        warmup=max(1, cfg.steps // 10),
        min_size=int(base.get("min_size", 480)),
        max_size=int(base.get("max_size", 800)),
        precision=cfg.precision,
        seed=cfg.seed,
        resume=cfg.resume,
        progress=cfg.progress,
        checkpoint_every=max(10, cfg.steps // 10),
    )
    t0 = time.time()
    summary = train(
        tcfg,
        [*positives, *replay],
        labels,
        init_state=base["model"],
        negatives=negatives,
        sample_weights=[*[camera_w] * len(positives), *replay_w, *[camera_w] * len(negatives)],
    )
    blend_model(cfg.model, tuned, cfg.blend, cfg.out)
    card = {
        "model": str(cfg.out),
        "base_model": str(cfg.model),
        "labels": labels,
        "run": {"jsonl": str(run.path), "stream_id": run.stream_id, "video": str(video)},
        "corrections": {
            "run": corrections.run.to_json(),
            "decisions": len(corrections.decisions),
            "reviewer": corrections.reviewer,
        },
        "data": {
            "frame_range": list(cfg.frame_range) if cfg.frame_range else None,
            "train_frames": len(train_samples),
            "negative_frames": len(negatives),
            "held_out_frames": len(held),
            "held_out_from_frame": int(held[0].key) if held else None,
            **dataclasses.asdict(stats),
            "replay_images": len(replay),
            "replay_share": share,
        },
        "training": {
            **summary,
            "seconds_per_step": round(
                summary["seconds"] / max(1, summary["steps"] - summary["resumed_at"]), 3
            ),
            "lr": cfg.lr,
            "batch": cfg.batch,
            "precision": cfg.precision,
            "blend": cfg.blend,
            "cpu": cpu_features().describe(),
            "threads": torch.get_num_threads(),
        },
        "held_out_ap": held_out_ap(
            {"base": cfg.model, "adapted": cfg.out}, labels, held, replay_held_out, cfg.progress
        ),
        "seconds": round(time.time() - t0, 1),
    }
    write_card(card, stem)
    return card


def split_replay(
    samples: Sequence[Sample], labels: list[str], holdout: float
) -> tuple[list[Sample], list[Sample]]:
    """Replay samples kept to ``labels`` -> (training part, held-out part), split as
    ``vis-pipeline train`` splits (seed 0)."""
    if not samples:
        return [], []
    kept, _ = select_classes(samples, {label: label for label in labels})
    return holdout_split(kept, fraction=holdout, seed=0)


def blend_model(base: Path, tuned: Path, blend: float, out: Path) -> None:
    """Write ``out``: the model file ``tuned`` with weights ``base + blend * (tuned - base)``
    (weight-space ensembling of a fine-tuned model with the one it started from; both must
    be the same architecture with the same classes). Atomic."""
    b = torch.load(base, map_location="cpu", weights_only=True)
    t = torch.load(tuned, map_location="cpu", weights_only=True)
    if t.get("arch") != b.get("arch") or list(t["labels"]) != list(b["labels"]):
        raise AdaptError(f"{tuned}: not a fine-tuning of {base} (architecture or classes differ)")
    if blend != 1.0:
        state = {}
        for k, v in t["model"].items():
            w = b["model"][k]
            state[k] = w + blend * (v - w) if v.is_floating_point() else v
        t["model"] = state
    tmp = out.with_name(out.name + ".tmp")
    torch.save(t, tmp)
    tmp.replace(out)


def held_out_ap(
    models: dict[str, Path],
    labels: list[str],
    camera: Sequence[Sample],
    replay: Sequence[Sample],
    progress: bool = False,
    resamples: int = 0,
) -> dict[str, dict]:
    """AP of each model (name -> file) on the held-out camera frames (against the accepted
    instances) and the replay sets' held-out images, per dataset and class (with
    ``resamples`` paired bootstrap draws: ``vis_train.evaluate``)."""
    from vis.detection.models import load_model

    out: dict[str, dict] = {}
    sets = [s for s in camera if s.instances] + list(replay)
    if not sets:
        return out
    for name, weights in models.items():
        model, _ = load_model(weights=str(weights))
        out[name] = evaluate(model, sets, labels, progress=progress, resamples=resamples)
    return out


def write_card(card: dict[str, Any], stem: Path) -> tuple[Path, Path]:
    """``<stem>.card.json`` and ``<stem>.card.md``."""
    j = stem.parent / (stem.name + ".card.json")
    m = stem.parent / (stem.name + ".card.md")
    j.write_text(json.dumps(card, indent=2, default=str) + "\n")
    m.write_text(card_markdown(card))
    return j, m


def card_markdown(card: dict[str, Any]) -> str:
    d, t = card["data"], card["training"]
    lines = [
        f"# `{Path(card['model']).name}`: `{Path(card['base_model']).name}` adapted to "
        f"stream `{card['run']['stream_id']}`",
        "",
        f"* **Data**: {d['train_frames']} keyframes of `{card['run']['jsonl']}` "
        f"(video `{card['run']['video']}`, frames {d['frame_range'] or 'all'}), "
        f"{d['accepted']} accepted and {d['relabelled']} relabelled instances (keyframe masks "
        f"as pseudo-masks), {d['rejected']} rejected as hard negatives "
        f"({d['negative_frames']} frames of background only), {d['blanked']} undecided "
        f"blanked; {d['replay_images']} replay images at {d['replay_share']:.0%} of draws.",
        f"* **Decisions**: {card['corrections']['decisions']} "
        f"(reviewer {card['corrections']['reviewer'] or 'not named'}).",
        f"* **Training**: {t['steps']} steps x {t['batch']} images, lr {t['lr']}, "
        f"{t['precision']}, {t['seconds']} s ({t['seconds_per_step']} s/step) on {t['cpu']}, "
        f"{t['threads']} threads; the model keeps {t.get('blend', 1.0):g} of the fine-tuning "
        "(base + blend x (tuned - base)).",
        f"* **Held out**: the last {d['held_out_frames']} sampled frames (from frame "
        f"{d['held_out_from_frame']}), never trained on.",
        "",
    ]
    ap = card.get("held_out_ap") or {}
    if ap:
        lines += [
            "| held-out images | class | base mask AP | adapted mask AP | base box AP "
            "| adapted box AP |",
            "|---|---|---:|---:|---:|---:|",
        ]
        for data, r in ap["base"].items():
            for cls, m in r["per_class"].items():
                a = ap["adapted"][data]["per_class"].get(cls)
                if not m or not a:
                    continue
                lines.append(
                    f"| {data} ({r['images']}) | {cls} | {m['mask_AP']:.2f} | {a['mask_AP']:.2f} "
                    f"| {m['box_AP']:.2f} | {a['box_AP']:.2f} |"
                )
    return "\n".join(lines) + "\n"
