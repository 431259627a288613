"""The shipped ``models/people_cars_maskrcnn.pt`` on a real Penn-Fudan photograph it was not
trained on (held out by ``tools/train.py``'s split). Skips, and says why, when the shared data
beside the project is absent."""

from pathlib import Path

import numpy as np
import pytest
import torch
from pycocotools import mask as mask_utils

from vis.detection.models import PEOPLE_CARS_CHECKPOINT, load_model
from vis_train.data import holdout_split, read_image, read_pennfudan

PENNFUDAN = Path(__file__).resolve().parents[3].parent / "shared" / "data" / "PennFudanPed"
# the split the shipped model was trained with (tools/train.py defaults, models/*.ap.json)
HOLDOUT, SPLIT_SEED = 0.2, 0

if not PENNFUDAN.is_dir():
    pytest.skip(
        f"real-image model test skipped: {PENNFUDAN} is absent (the shared real-data folder "
        "beside the project)",
        allow_module_level=True,
    )


def test_shipped_model_segments_a_held_out_pedestrian():
    assert PEOPLE_CARS_CHECKPOINT.is_file(), f"{PEOPLE_CARS_CHECKPOINT} is not shipped"
    model, labels = load_model(weights="people_cars")
    assert labels == ["__background__", "person", "car"]
    _, held = holdout_split(read_pennfudan(PENNFUDAN), fraction=HOLDOUT, seed=SPLIT_SEED)
    sample = held[0]
    gt = mask_utils.decode([i.rle for i in sample.instances]).transpose(2, 0, 1).astype(bool)

    torch.set_num_threads(1)
    image = torch.from_numpy(read_image(sample)).permute(2, 0, 1).float() / 255
    with torch.no_grad():
        out = model([image])[0]
    person = (out["labels"] == labels.index("person")) & (out["scores"] >= 0.5)
    pred = (out["masks"][person, 0] >= 0.5).numpy()
    assert len(pred), f"no person found in {sample.key}"
    inter = (pred[:, None] & gt[None]).sum(axis=(2, 3))
    union = (pred[:, None] | gt[None]).sum(axis=(2, 3))
    best = (inter / np.maximum(union, 1)).max()
    assert best > 0.5, f"{sample.key}: best person mask IoU {best:.2f}"
