"""The shipped real-image models, ``models/people_maskrcnn.pt`` and
``models/people_cars_maskrcnn.pt``, on a real Penn-Fudan photograph held out by
``tools/train.py``'s split, and ``people_cars`` on frames of DAVIS 2016 ``car-shadow``, a
video it never saw (its training cut cars out of ``car-roundabout`` only). Skips, and says
why, when the shared data beside the project is absent."""

from pathlib import Path

import numpy as np
import pytest
import torch
from pycocotools import mask as mask_utils

from vis.detection.models import SHIPPED_CHECKPOINTS, load_model
from vis_train.data import read_davis, read_image, read_pennfudan
from vis_train.split import stratified_split

SHARED = Path(__file__).resolve().parents[3].parent / "shared" / "data"
PENNFUDAN = SHARED / "PennFudanPed"
DAVIS = SHARED / "davis2016" / "DAVIS"
# the split the shipped models were trained with (tools/train.py defaults, models/*.ap.json;
# Penn-Fudan's held-out images are the same for the random and the stratified split)
HOLDOUT, SPLIT_SEED = 0.2, 0
CAR_IOU = 0.5

if not PENNFUDAN.is_dir():
    pytest.skip(
        f"real-image model test skipped: {PENNFUDAN} is absent (the shared real-data folder "
        "beside the project)",
        allow_module_level=True,
    )


@pytest.mark.parametrize("name", ["people", "people_cars"])
def test_shipped_model_segments_a_held_out_pedestrian(name):
    assert SHIPPED_CHECKPOINTS[name].is_file(), f"{SHIPPED_CHECKPOINTS[name]} is not shipped"
    model, labels = load_model(weights=name)
    assert labels == ["__background__", "person", "car"]
    _, held = stratified_split(read_pennfudan(PENNFUDAN), fraction=HOLDOUT, seed=SPLIT_SEED)
    sample = held[0]
    best = _best_iou(model, sample, labels.index("person"))
    assert best > 0.5, f"{sample.key}: best person mask IoU {best:.2f}"


@pytest.mark.slow
def test_people_cars_model_segments_the_car_of_an_unseen_video():
    if not (DAVIS / "JPEGImages" / "480p" / "car-shadow").is_dir():
        pytest.skip(f"car test skipped: {DAVIS}/JPEGImages/480p/car-shadow is absent")
    model, labels = load_model(weights="people_cars")
    frames = read_davis(DAVIS, "car-shadow", label="car", every=1)  # its 40 frames
    ious = np.array([_best_iou(model, s, labels.index("car")) for s in frames])
    # measured: 35 of 40 (the car leaving the view at the end is missed)
    assert (ious > CAR_IOU).mean() >= 0.8, f"best car mask IoU per frame: {np.round(ious, 2)}"


def _best_iou(model, sample, class_id: int, score: float = 0.5) -> float:
    """The best mask IoU of a ``class_id`` detection (score >= ``score``) with any of the
    sample's annotated objects."""
    gt = mask_utils.decode([i.rle for i in sample.instances]).transpose(2, 0, 1).astype(bool)
    torch.set_num_threads(1)
    image = torch.from_numpy(read_image(sample)).permute(2, 0, 1).float() / 255
    with torch.no_grad():
        out = model([image])[0]
    keep = (out["labels"] == class_id) & (out["scores"] >= score)
    pred = (out["masks"][keep, 0] >= 0.5).numpy()
    if not len(pred):
        return 0.0
    inter = (pred[:, None] & gt[None]).sum(axis=(2, 3))
    union = (pred[:, None] | gt[None]).sum(axis=(2, 3))
    return float((inter / np.maximum(union, 1)).max())
