"""Rare classes in training: the class-stratified held-out split, repeat-factor sampling,
copy-paste donors and the DAVIS donor reader, on the tests' own tiny data."""

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from tests.vis_train.conftest import write_davis
from vis_train.cli import main
from vis_train.data import DatasetError, load_target, read_coco, read_davis, read_pennfudan
from vis_train.data import holdout_split
from vis_train.sampling import DonorBank, draw, repeat_factors
from vis_train.split import image_classes, stratified_split


def write_rare_coco(root: Path, n_images: int = 20, car_images: tuple[int, ...] = (3, 11)) -> Path:
    """A COCO export of ``n_images`` tiny images, each with a 'person' box; only the images
    in ``car_images`` also have a 'car'."""
    (root / "images").mkdir(parents=True)
    images, anns = [], []
    for i in range(n_images):
        name = f"im{i:03d}.png"
        cv2.imwrite(str(root / "images" / name), np.full((16, 16, 3), i, np.uint8))
        images.append({"id": i, "file_name": name, "height": 16, "width": 16})
        objects = [(1, [1, 1, 6, 1, 6, 12, 1, 12])]
        if i in car_images:
            objects.append((3, [8, 8, 15, 8, 15, 15, 8, 15]))
        for cat, poly in objects:
            anns.append(
                {"id": len(anns) + 1, "image_id": i, "category_id": cat, "iscrowd": 0,
                 "segmentation": [poly], "bbox": [0, 0, 1, 1], "area": 1}
            )  # fmt: skip
    cats = [{"id": 1, "name": "person"}, {"id": 3, "name": "car"}]
    path = root / "instances.json"
    path.write_text(json.dumps({"images": images, "annotations": anns, "categories": cats}))
    return path


def _car_keys(samples) -> set[str]:
    return {s.key for s in samples if "car" in image_classes(s)}


def test_stratified_split_holds_out_a_rare_class_a_random_split_misses(tmp_path):
    samples = read_coco(write_rare_coco(tmp_path), tmp_path / "images")
    # the by-image split of this seed puts both car images in training ...
    train, held = holdout_split(samples, fraction=0.2, seed=0)
    assert len(held) == 4 and _car_keys(held) == set() and len(_car_keys(train)) == 2
    # ... the stratified one keeps cars on both sides, with the same held-out count
    train, held = stratified_split(samples, fraction=0.2, seed=0)
    assert len(held) == 4 and len(train) == 16
    assert len(_car_keys(held)) == 1 and len(_car_keys(train)) == 1
    assert {s.key for s in train}.isdisjoint({s.key for s in held})
    # deterministic: same seed, any input order -> the same split; another seed differs
    again = stratified_split(samples[::-1], fraction=0.2, seed=0)[1]
    assert [s.key for s in again] == [s.key for s in held]
    other = {
        frozenset(s.key for s in stratified_split(samples, fraction=0.2, seed=k)[1])
        for k in range(1, 6)
    }
    assert len(other | {frozenset(s.key for s in held)}) > 1


def test_stratified_split_takes_the_share_of_every_class_and_keeps_one_for_training(tmp_path):
    samples = read_coco(
        write_rare_coco(tmp_path, n_images=20, car_images=(0, 4, 8, 12, 16, 19)),
        tmp_path / "images",
    )
    held = stratified_split(samples, fraction=0.2, seed=4)[1]
    assert len(_car_keys(held)) == 2  # ceil(0.2 * 6)
    two = read_coco(
        write_rare_coco(tmp_path / "b", n_images=4, car_images=(1,)), tmp_path / "b" / "images"
    )
    train, held = stratified_split(two, fraction=0.5, seed=0)
    assert len(_car_keys(train)) == 1 and _car_keys(held) == set()  # its only image trains


def test_stratified_split_of_a_one_class_dataset_is_the_by_image_split(pennfudan_dir):
    samples = read_pennfudan(pennfudan_dir)
    for seed in range(4):
        a = holdout_split(samples, fraction=0.4, seed=seed)[1]
        b = stratified_split(samples, fraction=0.4, seed=seed)[1]
        assert [s.key for s in a] == [s.key for s in b]
    with pytest.raises(ValueError, match="holdout fraction"):
        stratified_split(samples, fraction=1.0, seed=0)


def test_repeat_factors_draw_rare_class_images_more_often(tmp_path):
    samples = read_coco(
        write_rare_coco(tmp_path, n_images=10, car_images=(7,)), tmp_path / "images"
    )
    r = repeat_factors(samples, ["person", "car"], thresh=0.4)
    # car in 1 of 10 images: sqrt(0.4 / 0.1) = 2; person in all: 1
    assert r[7] == pytest.approx(2.0) and np.allclose(np.delete(r, 7), 1.0)
    assert np.allclose(repeat_factors(samples, ["person", "car"], thresh=0.0), 1.0)
    w = torch.from_numpy(r)
    picks = draw(w, 4000, torch.Generator().manual_seed(5))
    share = picks.count(7) / len(picks)
    assert share == pytest.approx(2 / 11, abs=0.02)  # uniform would be 1/10
    assert picks == draw(w, 4000, torch.Generator().manual_seed(5))  # seeded
    uniform = draw(torch.ones(10, dtype=torch.float64), 4000, torch.Generator().manual_seed(5))
    assert uniform.count(7) / 4000 == pytest.approx(0.1, abs=0.02)


def test_read_davis_keeps_every_kth_annotated_frame(tmp_path):
    davis = write_davis(tmp_path)
    every = read_davis(davis, "toy-car", label="car")
    assert [s.key for s in every] == [f"{i:05d}.jpg" for i in range(5)]  # frame 5 is empty
    assert every[0].dataset == "davis-toy-car" and every[0].instances[0].label == "car"
    _, masks, boxes, _ = load_target(every[1], ["car"])
    assert masks[0][20:44, 8:48].all() and masks[0].sum() == 24 * 40
    assert boxes[0].tolist() == [8, 20, 48, 44]
    assert [s.key for s in read_davis(davis, "toy-car", label="car", every=2)] == [
        "00000.jpg", "00002.jpg", "00004.jpg",
    ]  # fmt: skip
    with pytest.raises(DatasetError, match="no DAVIS sequence 'nope'"):
        read_davis(davis, "nope", label="car")


def test_copy_paste_puts_a_donor_on_top_and_occludes_what_is_below(tmp_path, pennfudan_dir):
    donors = read_davis(write_davis(tmp_path), "toy-car", label="car")
    bank = DonorBank(donors, ["person", "car"], ["car"], min_area=100)
    assert len(bank) == 5 and all(d.class_id == 2 for d in bank.donors)
    target = load_target(read_pennfudan(pennfudan_dir)[1], ["person", "car"])  # 2 pedestrians
    image0, masks0, _, ids0 = target
    pasted = [bank.paste(target, torch.Generator().manual_seed(k)) for k in range(20)]
    for image, masks, boxes, ids in pasted:
        assert (ids == 2).sum() >= 1 and len(masks) == len(boxes) == len(ids)
        cars = masks[ids == 2].astype(bool).any(axis=0)
        # a pasted car's pixels come from the donor (red), the rest of the image is untouched
        assert (image[cars][:, 0].astype(int) - image[cars][:, 2]).mean() > 100
        assert np.array_equal(image[~cars], image0[~cars])
        for m, b in zip(masks, boxes):  # boxes fit the masks
            ys, xs = np.nonzero(m)
            assert b.tolist() == [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]
        # pedestrians lose exactly the pixels a car covers (or vanish when wholly covered)
        people = masks[ids == 1].astype(bool)
        assert not (people & cars).any()
        assert people.sum() == (masks0.astype(bool) & ~cars).sum()
    assert masks0.shape[0] == 2 and np.array_equal(target[0], image0)  # input not modified
    a, b = (bank.paste(target, torch.Generator().manual_seed(3)) for _ in range(2))
    assert all(np.array_equal(x, y) for x, y in zip(a, b))  # seeded
    assert any(not np.array_equal(pasted[0][0], p[0]) for p in pasted[1:])


def test_bad_rare_class_options_fail_in_one_line(tmp_path, pennfudan_dir, capsys):
    davis = write_davis(tmp_path / "d")
    base = ["--pennfudan", str(pennfudan_dir), "--out", str(tmp_path / "m.pt"),
            "--classes", "person,car", "--arch", "tiny_fpn", "--no-progress"]  # fmt: skip
    code = main([*base, "--copy-paste", "0.5", "--paste-classes", "bus"])
    err = capsys.readouterr().err
    assert code == 2 and "paste classes ['bus'] are not trained classes" in err
    assert len(err.strip().splitlines()) == 1
    code = main([*base, "--davis-donor", str(davis), "toy-car", "truck"])
    assert code == 2 and "label 'truck' is not a class" in capsys.readouterr().err
    code = main([*base, "--davis-donor", str(davis), "nope", "car"])
    assert code == 2 and "no DAVIS sequence 'nope'" in capsys.readouterr().err
    assert not (tmp_path / "m.pt").exists()
