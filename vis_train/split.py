"""A held-out split stratified by class, so that a rare class is scored too.

Contract: ``stratified_split(samples, fraction=f, seed=s)`` divides each dataset's images into
(train, held out), deterministically from the seed and the image keys. Every class with
instances in a dataset's images gets at least ``ceil(f * n_c)`` of its ``n_c`` images held
out (at most ``n_c - 1``: a class always keeps a training image), rarest class first; the
dataset is then filled up to ``round(f * n)`` held-out images in the seed's order. For a
dataset with one class in every image this is the same split as ``data.holdout_split``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from vis_train.data import Sample


def image_classes(sample: Sample) -> set[str]:
    """The labels of ``sample``'s non-crowd instances."""
    return {i.label for i in sample.instances if not i.iscrowd}


def _split_one(group: list[Sample], fraction: float, seed: int) -> set[int]:
    """Held-out indices into ``group`` (sorted by key)."""
    n = len(group)
    target = round(fraction * n)
    if fraction > 0 and n > 1:
        target = max(1, target)
    order = np.random.default_rng(seed).permutation(n).tolist()
    classes = [image_classes(s) for s in group]
    count: dict[str, int] = {}
    for cs in classes:
        for c in cs:
            count[c] = count.get(c, 0) + 1
    held: set[int] = set()
    kept = dict(count)  # images of each class still on the training side

    def take(i: int) -> bool:
        # never move a class's last training image to the held-out side
        if i in held or any(kept[c] <= 1 for c in classes[i]):
            return False
        held.add(i)
        for c in classes[i]:
            kept[c] -= 1
        return True

    if fraction > 0:
        for c in sorted(count, key=lambda c: (count[c], c)):  # rarest first
            need = min(math.ceil(fraction * count[c] - 1e-9), count[c] - 1)
            have = sum(1 for i in held if c in classes[i])
            for i in order:
                if have >= need:
                    break
                if c in classes[i] and take(i):
                    have += 1
    for i in order:
        if len(held) >= target:
            break
        take(i)
    return held


def stratified_split(
    samples: Sequence[Sample], *, fraction: float, seed: int
) -> tuple[list[Sample], list[Sample]]:
    """Split by image into (train, held out), per dataset, every class on both sides.

    Args:
        samples: images of one or more datasets (``Sample.dataset``), classes already
            selected (``data.select_classes``): the split stratifies on what is trained.
        fraction: the held-out share of each dataset's images and of each class's images.
        seed: the permutation's seed; the split depends only on the keys, their classes,
            the fraction and the seed, not on the order the samples come in.

    Returns:
        (train, held out); each dataset's images in key order.
    """
    if not 0.0 <= fraction < 1.0:
        raise ValueError(f"holdout fraction must be in [0, 1), got {fraction}")
    train, held = [], []
    for name in sorted({s.dataset for s in samples}):
        group = sorted((s for s in samples if s.dataset == name), key=lambda s: s.key)
        held_idx = _split_one(group, fraction, seed)
        for i, s in enumerate(group):
            (held if i in held_idx else train).append(s)
    return train, held
