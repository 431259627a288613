"""Instance-segmentation datasets for training: COCO-format and Penn-Fudan readers, class
selection, a seeded held-out split and the training-time sample loader.

Contract: a reader returns a list of ``Sample`` (one per image: path, size and its instances
as compressed COCO RLE with a label string), nothing decoded; ``select_classes`` maps labels
onto the trained class list; ``holdout_split`` divides samples by image, deterministically
from a seed; ``load_target`` decodes one sample into what torchvision's ``MaskRCNN`` trains on.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
from pycocotools import mask as mask_utils

log = logging.getLogger(__name__)

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp")


class DatasetError(ValueError):
    """A dataset folder or annotation file that cannot be read as documented."""


@dataclasses.dataclass(frozen=True)
class Instance:
    """One annotated object: ``rle`` is a compressed COCO RLE (``counts`` bytes) of the
    image's size; crowd regions are scored as "ignore" and never trained on."""

    label: str
    rle: dict
    iscrowd: bool = False


@dataclasses.dataclass(frozen=True)
class Sample:
    """One image of a dataset. ``key`` is unique within ``dataset`` (the file name)."""

    dataset: str
    key: str
    path: Path
    height: int
    width: int
    instances: tuple[Instance, ...]


def _to_rle(segmentation: list | dict, h: int, w: int) -> dict:
    """COCO polygons, uncompressed RLE or compressed RLE -> one compressed RLE."""
    if isinstance(segmentation, list):  # polygons
        polys = [p for p in segmentation if len(p) >= 6]
        if not polys:
            return mask_utils.encode(np.zeros((h, w, 1), np.uint8, order="F"))[0]
        return mask_utils.merge(mask_utils.frPyObjects(polys, h, w))
    if isinstance(segmentation.get("counts"), list):  # uncompressed RLE
        return mask_utils.frPyObjects(segmentation, h, w)
    rle = dict(segmentation)
    if isinstance(rle["counts"], str):
        rle["counts"] = rle["counts"].encode()
    return rle


def coco_dataset_name(annotations: Path) -> str:
    """``.../coco128/annotations/x.json`` -> ``coco128``; elsewhere the file's stem."""
    annotations = Path(annotations)
    if annotations.parent.name == "annotations" and annotations.parent.parent.name:
        return annotations.parent.parent.name
    return annotations.stem


def read_coco(
    annotations: Path,
    images: Path,
    *,
    name: str | None = None,
    crowd_as_instances: bool = False,
) -> list[Sample]:
    """Read a COCO instance-segmentation export (COCO itself, CVAT, Label Studio, ...).

    Args:
        annotations: the COCO JSON file (``images``, ``annotations``, ``categories``).
        images: the folder that ``images[].file_name`` is relative to.
        name: the dataset's name in results (default: ``coco_dataset_name(annotations)``).
        crowd_as_instances: read ``iscrowd: 1`` annotations as ordinary objects. CVAT's
            "COCO 1.0" export writes every brush/mask annotation as an RLE with
            ``iscrowd: 1``; without this they would all be "ignore" regions.

    Returns:
        one ``Sample`` per listed image whose file exists (missing files are logged and
        skipped), in the JSON's image order. Annotations without a segmentation are skipped.
    """
    annotations, images = Path(annotations), Path(images)
    try:
        doc = json.loads(annotations.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise DatasetError(f"COCO annotations {annotations} unreadable: {exc}") from exc
    for field in ("images", "annotations", "categories"):
        if field not in doc:
            raise DatasetError(f"COCO annotations {annotations} have no {field!r} list")
    name = name or coco_dataset_name(annotations)
    cats = {c["id"]: c["name"] for c in doc["categories"]}
    by_image: dict[int, list[dict]] = {}
    for ann in doc["annotations"]:
        by_image.setdefault(ann["image_id"], []).append(ann)
    samples, missing = [], 0
    for img in doc["images"]:
        path = images / img["file_name"]
        if not path.is_file():
            missing += 1
            continue
        h, w = int(img["height"]), int(img["width"])
        instances = tuple(
            Instance(
                label=cats[ann["category_id"]],
                rle=_to_rle(ann["segmentation"], h, w),
                iscrowd=bool(ann.get("iscrowd", 0)) and not crowd_as_instances,
            )
            for ann in by_image.get(img["id"], [])
            if ann.get("segmentation")
        )
        samples.append(Sample(name, img["file_name"], path, h, w, instances))
    crowds = sum(bool(a.get("iscrowd", 0)) for a in doc["annotations"])
    if crowds > len(doc["annotations"]) / 2 and not crowd_as_instances:
        log.warning(
            "%s: %d of %d annotations are iscrowd=1 (ignored in training); a CVAT mask export? "
            "then read it with --crowd-as-instances",
            name,
            crowds,
            len(doc["annotations"]),
        )
    if missing:
        log.warning(
            "%s: %d of %d images not found under %s", name, missing, len(doc["images"]), images
        )
    return samples


def read_pennfudan(root: Path, *, name: str = "pennfudan", label: str = "person") -> list[Sample]:
    """Read the Penn-Fudan pedestrian dataset in its original layout.

    Args:
        root: the ``PennFudanPed`` folder: ``PNGImages/<x>.png`` and ``PedMasks/<x>_mask.png``
            (pixel value k = k-th pedestrian, 0 = background).
        label: the class every pedestrian gets.

    Returns:
        one ``Sample`` per image with a mask file, sorted by file name.
    """
    root = Path(root)
    img_dir, mask_dir = root / "PNGImages", root / "PedMasks"
    if not img_dir.is_dir() or not mask_dir.is_dir():
        raise DatasetError(f"{root} is not a Penn-Fudan folder (no PNGImages/ and PedMasks/)")
    samples = []
    for path in sorted(img_dir.glob("*.png")):
        mask_path = mask_dir / f"{path.stem}_mask.png"
        if not mask_path.is_file():
            log.warning("%s: no mask %s, image skipped", name, mask_path.name)
            continue
        ids = cv2.imread(str(mask_path), cv2.IMREAD_UNCHANGED)
        if ids is None:
            raise DatasetError(f"{mask_path} is not a readable image")
        if ids.ndim == 3:
            ids = ids[:, :, 0]
        h, w = ids.shape
        instances = tuple(
            Instance(label, mask_utils.encode(np.asfortranarray((ids == k).astype(np.uint8))))
            for k in np.unique(ids)
            if k != 0
        )
        samples.append(Sample(name, path.name, path, h, w, instances))
    if not samples:
        raise DatasetError(f"{root}: no PNGImages/*.png with a PedMasks/*_mask.png")
    return samples


def read_davis(
    root: Path, sequence: str, *, label: str, every: int = 1, name: str | None = None
) -> list[Sample]:
    """Read one DAVIS 2016 sequence (one annotated object per frame) as samples.

    Args:
        root: the ``DAVIS`` folder: ``JPEGImages/480p/<seq>/%05d.jpg`` and
            ``Annotations/480p/<seq>/%05d.png`` (0 = background, > 0 = the object).
        label: the class of the annotated object.
        every: keep every ``every``-th frame (consecutive frames are near duplicates).

    Returns:
        one ``Sample`` per kept frame with a non-empty mask, in frame order; dataset
        ``davis-<sequence>``. Other objects in the frames are not annotated: use these as
        copy-paste donors, not as whole training images.
    """
    root = Path(root)
    img_dir = root / "JPEGImages" / "480p" / sequence
    ann_dir = root / "Annotations" / "480p" / sequence
    if not img_dir.is_dir() or not ann_dir.is_dir():
        raise DatasetError(
            f"{root} has no DAVIS sequence {sequence!r} (JPEGImages/480p/{sequence} and "
            f"Annotations/480p/{sequence})"
        )
    if every < 1:
        raise ValueError(f"every must be >= 1, got {every}")
    samples = []
    for path in sorted(img_dir.glob("*.jpg"))[::every]:
        ann = cv2.imread(str(ann_dir / f"{path.stem}.png"), cv2.IMREAD_GRAYSCALE)
        if ann is None or not (ann > 0).any():
            continue
        rle = mask_utils.encode(np.asfortranarray((ann > 0).astype(np.uint8)))
        h, w = ann.shape
        samples.append(
            Sample(name or f"davis-{sequence}", path.name, path, h, w, (Instance(label, rle),))
        )
    if not samples:
        raise DatasetError(f"{img_dir}: no frame with a non-empty annotation")
    return samples


def parse_classes(spec: str) -> dict[str, str]:
    """``"person,vehicle=car+truck"`` -> ``{"person": "person", "car": "vehicle",
    "truck": "vehicle"}`` (source label -> trained class)."""
    mapping: dict[str, str] = {}
    for entry in (e.strip() for e in spec.split(",")):
        if not entry:
            continue
        target, _, sources = entry.partition("=")
        for src in sources.split("+") if sources else [target]:
            if src.strip() in mapping:
                raise ValueError(f"--classes: label {src.strip()!r} is mapped twice in {spec!r}")
            mapping[src.strip()] = target.strip()
    if not mapping:
        raise ValueError(f"--classes {spec!r} names no class")
    return mapping


def select_classes(
    samples: Sequence[Sample], mapping: dict[str, str] | None
) -> tuple[list[Sample], list[str]]:
    """Keep only instances whose label is in ``mapping`` and relabel them.

    Args:
        mapping: source label -> trained class (``parse_classes``); None keeps every label.

    Returns:
        (samples with their instances filtered and relabelled, every image kept; the class
        list: ``mapping``'s targets in order, or all labels in order of first appearance).
    """
    if mapping is None:
        labels = list(dict.fromkeys(i.label for s in samples for i in s.instances))
        return list(samples), labels
    labels = list(dict.fromkeys(mapping.values()))
    out = [
        dataclasses.replace(
            s,
            instances=tuple(
                dataclasses.replace(i, label=mapping[i.label])
                for i in s.instances
                if i.label in mapping
            ),
        )
        for s in samples
    ]
    return out, labels


def holdout_split(
    samples: Sequence[Sample], *, fraction: float, seed: int
) -> tuple[list[Sample], list[Sample]]:
    """Split by image into (train, held out), per dataset, deterministically.

    Each dataset's images are sorted by key and permuted by ``seed``; the first
    ``round(fraction * n)`` (at least 1 when ``fraction > 0`` and ``n > 1``) are held out.
    The split depends only on the keys, the fraction and the seed: not on the order the
    samples come in, nor on the classes selected.
    """
    if not 0.0 <= fraction < 1.0:
        raise ValueError(f"holdout fraction must be in [0, 1), got {fraction}")
    train, held = [], []
    for name in dict.fromkeys(s.dataset for s in samples):
        group = sorted((s for s in samples if s.dataset == name), key=lambda s: s.key)
        n_held = round(fraction * len(group))
        if fraction > 0 and len(group) > 1:
            n_held = max(1, n_held)
        order = np.random.default_rng(seed).permutation(len(group))
        held_idx = set(order[:n_held].tolist())
        for i, s in enumerate(group):
            (held if i in held_idx else train).append(s)
    return train, held


def read_image(sample: Sample) -> np.ndarray:
    """(H, W, 3) uint8 RGB."""
    bgr = cv2.imread(str(sample.path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise DatasetError(f"{sample.path} is not a readable image")
    if bgr.shape[:2] != (sample.height, sample.width):
        raise DatasetError(
            f"{sample.path} is {bgr.shape[1]}x{bgr.shape[0]}, its annotations say "
            f"{sample.width}x{sample.height}"
        )
    return np.ascontiguousarray(bgr[:, :, ::-1])


def load_target(
    sample: Sample, labels: Sequence[str]
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Decode one sample for training (crowd regions and empty masks dropped). A sample with
    no instance left (a hard negative: every detection a reviewer rejected) is valid: its
    masks, boxes and class ids are empty and the whole image is background.

    Returns:
        image (H, W, 3) uint8 RGB, masks (N, H, W) uint8, boxes (N, 4) float32 xyxy from the
        masks, class ids (N,) int64 with 1 = ``labels[0]``.
    """
    image = read_image(sample)
    inst = [i for i in sample.instances if not i.iscrowd and i.label in labels]
    h, w = sample.height, sample.width
    masks = (
        np.moveaxis(mask_utils.decode([i.rle for i in inst]), -1, 0).astype(np.uint8)
        if inst
        else np.zeros((0, h, w), np.uint8)
    )
    keep = masks.any(axis=(1, 2))
    masks = masks[keep]
    class_ids = np.array([labels.index(i.label) + 1 for i in inst], np.int64)[keep]
    boxes = np.zeros((len(masks), 4), np.float32)
    for k, m in enumerate(masks):
        ys, xs = np.nonzero(m)
        boxes[k] = (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1)
    return image, masks, boxes, class_ids


def trainable(sample: Sample, labels: Sequence[str]) -> bool:
    """Whether ``sample`` has at least one non-crowd instance of ``labels``."""
    return any(not i.iscrowd and i.label in labels for i in sample.instances)
