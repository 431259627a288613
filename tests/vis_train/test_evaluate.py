"""Held-out AP with a paired bootstrap: is a model's AP difference on a few dozen images a
real loss or the draw of the images?"""

import numpy as np
from pycocotools import mask as mask_utils

from vis_train.data import read_coco
from vis_train.evaluate import evaluate_predictions, paired_interval

LABELS = ["person", "car"]


def red_rectangle(image: np.ndarray, shift_every_other: bool) -> list:
    """A detector of the test images' red 'person': its pixels, as they are, or shifted 8
    pixels right on the images where the rectangle starts at an even column."""
    mask = (image[..., 0] > 200) & (image[..., 1] < 100)
    x1 = int(np.nonzero(mask.any(axis=0))[0][0])
    if shift_every_other and x1 % 2 == 0:
        mask = np.roll(mask, 8, axis=1)
    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    return [(rle, 1, 0.9)]


def test_paired_bootstrap_tells_a_real_loss_from_the_draw(coco_dir):
    samples = read_coco(*coco_dir)
    good = evaluate_predictions(
        lambda im: red_rectangle(im, False), samples, LABELS, progress=False, resamples=40
    )
    worse = evaluate_predictions(
        lambda im: red_rectangle(im, True), samples, LABELS, progress=False, resamples=40
    )
    (name,) = good
    draws_good, draws_worse = good[name]["resampled"]["person"], worse[name]["resampled"]["person"]
    assert len(draws_good) == len(draws_worse) == 40
    assert (
        good[name]["per_class"]["person"]["mask_AP"] > worse[name]["per_class"]["person"]["mask_AP"]
    )
    # the same model against itself: the draws are paired, so the difference is exactly 0
    assert paired_interval(draws_good, draws_good) == (0.0, 0.0)
    # a detector that misplaces half the people loses on every draw of the images
    lo, hi = paired_interval(draws_good, draws_worse)
    assert lo <= hi < 0
    # and the draws vary: some have more misplaced people than others
    assert len({d["mask_AP"] for d in draws_worse}) > 1
    assert "car" in good[name]["resampled"]  # each class with ground truth
