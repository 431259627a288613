"""Tiny datasets written by the tests themselves: a COCO export (polygons, a compressed RLE
and an uncompressed crowd RLE) and a Penn-Fudan folder, both with real image files."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from pycocotools import mask as mask_utils

from tests.conftest import disk_mask

H, W = 64, 80
SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "data"


def _rect_polygon(x1: int, y1: int, x2: int, y2: int) -> list[float]:
    return [x1, y1, x2, y1, x2, y2, x1, y2]


def _image(seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 80, (H, W, 3), dtype=np.uint8)


def uncompressed_rle(mask: np.ndarray) -> list[int]:
    """COCO's uncompressed RLE counts (column-major runs, starting with a run of zeros)."""
    flat = mask.flatten(order="F")
    counts, value, run = [], 0, 0
    for v in flat:
        if v != value:
            counts.append(run)
            value, run = v, 0
        run += 1
    return [*counts, run]


def write_coco(root: Path, n_images: int = 6) -> tuple[Path, Path]:
    """``root/annotations/instances.json`` + ``root/images/*.png``. Every image has a bright
    'person' rectangle (polygon) and a 'car' disk (compressed RLE); image 0 also has a 'dog'
    and a crowd of persons (uncompressed RLE); the JSON lists one image that does not exist."""
    (root / "images").mkdir(parents=True)
    (root / "annotations").mkdir()
    images, anns = [], []
    for i in range(n_images):
        img = _image(i)
        x1, y1 = 5 + 3 * i, 8
        img[y1 : y1 + 40, x1 : x1 + 14] = (220, 60, 60)
        disk = disk_mask(H, W, 60, 45, 9)
        img[disk] = (60, 220, 60)
        name = f"img_{i:03d}.png"
        cv2.imwrite(str(root / "images" / name), img[:, :, ::-1])
        images.append({"id": 100 + i, "file_name": name, "height": H, "width": W})
        anns.append(
            {
                "id": len(anns) + 1,
                "image_id": 100 + i,
                "category_id": 1,
                "iscrowd": 0,
                "segmentation": [_rect_polygon(x1, y1, x1 + 14, y1 + 40)],
                "bbox": [x1, y1, 14, 40],
                "area": 560,
            }
        )
        rle = mask_utils.encode(np.asfortranarray(disk.astype(np.uint8)))
        anns.append(
            {
                "id": len(anns) + 1,
                "image_id": 100 + i,
                "category_id": 3,
                "iscrowd": 0,
                "segmentation": {"size": [H, W], "counts": rle["counts"].decode()},
                "bbox": [51, 36, 18, 18],
                "area": float(disk.sum()),
            }
        )
    crowd = np.zeros((H, W), np.uint8)
    crowd[50:60, 2:30] = 1
    counts = uncompressed_rle(crowd)
    anns.append(
        {
            "id": len(anns) + 1,
            "image_id": 100,
            "category_id": 1,
            "iscrowd": 1,
            "segmentation": {"size": [H, W], "counts": counts},
            "bbox": [2, 50, 28, 10],
            "area": 280,
        }
    )
    anns.append(
        {
            "id": len(anns) + 1,
            "image_id": 100,
            "category_id": 18,
            "iscrowd": 0,
            "segmentation": [_rect_polygon(40, 2, 50, 12)],
            "bbox": [40, 2, 10, 10],
            "area": 100,
        }
    )
    images.append({"id": 999, "file_name": "missing.png", "height": H, "width": W})
    cats = [{"id": 1, "name": "person"}, {"id": 3, "name": "car"}, {"id": 18, "name": "dog"}]
    ann_file = root / "annotations" / "instances.json"
    ann_file.write_text(json.dumps({"images": images, "annotations": anns, "categories": cats}))
    return ann_file, root / "images"


def write_pennfudan(root: Path, n_images: int = 5) -> Path:
    """``root/PennFudanPed`` in the original layout: image k has k % 2 + 1 pedestrians."""
    ped = root / "PennFudanPed"
    (ped / "PNGImages").mkdir(parents=True)
    (ped / "PedMasks").mkdir()
    for i in range(n_images):
        img = _image(50 + i)
        ids = np.zeros((H, W), np.uint8)
        for k in range(i % 2 + 1):
            x1 = 10 + 35 * k
            ids[6:58, x1 : x1 + 16] = k + 1
            img[ids == k + 1] = (200, 200, 90)
        name = f"FudanPed{i + 1:05d}"
        cv2.imwrite(str(ped / "PNGImages" / f"{name}.png"), img[:, :, ::-1])
        cv2.imwrite(str(ped / "PedMasks" / f"{name}_mask.png"), ids)
    return ped


@pytest.fixture
def coco_dir(tmp_path) -> tuple[Path, Path]:
    return write_coco(tmp_path / "tinycoco")


@pytest.fixture
def pennfudan_dir(tmp_path) -> Path:
    return write_pennfudan(tmp_path)


def write_davis(root: Path, sequence: str = "toy-car", n_frames: int = 6) -> Path:
    """``root/DAVIS`` in the DAVIS 2016 layout: one sequence whose frames show a bright 'car'
    rectangle moving right (mask 255); the last frame's annotation is empty."""
    davis = root / "DAVIS"
    img_dir = davis / "JPEGImages" / "480p" / sequence
    ann_dir = davis / "Annotations" / "480p" / sequence
    img_dir.mkdir(parents=True)
    ann_dir.mkdir(parents=True)
    for i in range(n_frames):
        img = _image(200 + i)
        ann = np.zeros((H, W), np.uint8)
        if i < n_frames - 1:
            ann[20:44, 4 + 4 * i : 44 + 4 * i] = 255
            img[ann > 0] = (230, 40, 40)
        cv2.imwrite(str(img_dir / f"{i:05d}.jpg"), img[:, :, ::-1])
        cv2.imwrite(str(ann_dir / f"{i:05d}.png"), ann)
    return davis
