"""Mask R-CNN builders and weight loading.

Contract: ``load_model(weights=..., arch=..., ...)`` returns an eval-mode torchvision
``MaskRCNN`` and the list of its class labels, or raises ``WeightsError`` with a one-line
message naming the file and the fix. Only ``coco`` / ``coco_v2`` may download, through
torchvision's weights API (torch hub cache, checksum-checked); local files never do.

The architectures (``ARCHS``) are built by ``vis.detection.architectures``; this module
re-exports the names callers use with the weights (``build_tiny_maskrcnn``,
``MobileNetV2FPNBackbone``, ``load_mobilenet_v2_features``).
"""

from __future__ import annotations

import logging
import socket
import urllib.request
from pathlib import Path
from urllib.parse import urlparse

import torch
from torch import nn
from torchvision.models.detection import MaskRCNN

from vis.detection.architectures import (  # noqa: F401 - re-exported with the weights
    ARCHS,
    MobileNetV2FPNBackbone,
    build_arch,
    build_mobilenet_maskrcnn,
    build_tiny_maskrcnn,
    load_mobilenet_v2_features,
    mobilenet_v2_feature_keys,
)

log = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[2]
DEMO_CHECKPOINT = REPO_ROOT / "models" / "demo_tiny_maskrcnn.pt"
PEOPLE_CHECKPOINT = REPO_ROOT / "models" / "people_maskrcnn.pt"
PEOPLE_CARS_CHECKPOINT = REPO_ROOT / "models" / "people_cars_maskrcnn.pt"
# ``detector.weights`` shortcuts for checkpoints shipped in models/ (cards beside them): the
# synthetic demo's model, the person model the street demo tracks with, and the model that
# also finds cars.
SHIPPED_CHECKPOINTS = {
    "demo": DEMO_CHECKPOINT,
    "people": PEOPLE_CHECKPOINT,
    "people_cars": PEOPLE_CARS_CHECKPOINT,
}
COCO_WEIGHTS = ("coco", "coco_v2")
# Seconds the "are we online?" probe waits for a TCP connection before a missing COCO file
# is reported as "place it by hand" instead of being downloaded.
ONLINE_PROBE_TIMEOUT_S = 5.0


class WeightsError(RuntimeError):
    """Weights missing, unreadable or of the wrong architecture."""


def _coco_weights(arch: str):
    """torchvision's COCO weights enum member for ``arch``."""
    from torchvision.models.detection import (
        MaskRCNN_ResNet50_FPN_V2_Weights,
        MaskRCNN_ResNet50_FPN_Weights,
    )

    if arch == "resnet50_fpn":
        return MaskRCNN_ResNet50_FPN_Weights.COCO_V1
    if arch == "resnet50_fpn_v2":
        return MaskRCNN_ResNet50_FPN_V2_Weights.COCO_V1
    raise WeightsError(f"weights 'coco' need arch resnet50_fpn or resnet50_fpn_v2, not {arch!r}")


def coco_weights_file(arch: str) -> Path:
    """Where torch hub caches the COCO weights of ``arch``: ``<hub dir>/checkpoints/<url name>``
    (the same rule as ``torch.hub.load_state_dict_from_url``)."""
    url = _coco_weights(arch).url
    return Path(torch.hub.get_dir()) / "checkpoints" / Path(urlparse(url).path).name


def _offline_reason(url: str, timeout: float = ONLINE_PROBE_TIMEOUT_S) -> str | None:
    """Why ``url`` cannot be downloaded now, or None if its host (or the proxy urllib would
    use) accepts a TCP connection within ``timeout`` seconds.

    The probe exists so that "offline" never hangs: torch.hub's ``urlopen`` has no timeout,
    and behind a firewall that drops packets a connect waits minutes. Without a network the
    name lookup fails at once (a few ms here); a dropped connect is capped by ``timeout``.
    (A resolver that hangs is not capped: ``getaddrinfo`` takes no timeout.)
    """
    parts = urlparse(url)
    proxy = urllib.request.getproxies().get(parts.scheme)
    if proxy and not urllib.request.proxy_bypass(parts.hostname or ""):
        parts = urlparse(proxy if "://" in proxy else f"http://{proxy}")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        socket.create_connection((parts.hostname, port), timeout=timeout).close()
    except OSError as exc:
        return f"{parts.hostname}:{port} unreachable, {_one_line(exc)}"
    return None


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


def _coco_state_dict(arch: str, *, progress: bool) -> dict:
    """The COCO state dict of ``arch`` the way torchvision gets it: from the torch hub cache
    if the file is there (no network), else downloaded with torchvision's checksum check.
    Every failure is a one-line ``WeightsError`` naming the file to place and where."""
    enum = _coco_weights(arch)
    file = coco_weights_file(arch)
    place = f"place a good copy of {enum.url} at {file}"
    if not file.is_file():
        reason = _offline_reason(enum.url)
        if reason is not None:
            raise WeightsError(
                f"COCO weights {file.name} are not in the torch hub cache and "
                f"cannot be downloaded (offline: {reason}): download {enum.url} "
                f"on a machine with internet and place it at {file}"
            )
        log.info("downloading %s to %s (checksum-checked)", enum.url, file)
        try:
            return enum.get_state_dict(progress=progress, check_hash=True, weights_only=True)
        except OSError as exc:  # URLError, HTTPError, a dropped connection, a full disk
            raise WeightsError(
                f"downloading {enum.url} failed ({_one_line(exc)}): run again online, or {place}"
            ) from exc
        except RuntimeError as exc:  # torch.hub: 'invalid hash value (expected ..., got ...)'
            raise WeightsError(
                f"downloading {enum.url} failed torchvision's checksum check "
                f"({_one_line(exc)}); nothing was kept: run again, or {place}"
            ) from exc
    try:
        # The file is there: torch.hub loads it without touching the network (and, like
        # torchvision, does not re-hash a cached file). weights_only: never unpickle code.
        state = enum.get_state_dict(progress=progress, check_hash=True, weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unpickling failure means a bad file
        raise WeightsError(
            f"COCO weights file {file} is corrupt or truncated "
            f"({_one_line(exc)}): delete it and run again online to re-download "
            f"it (checksum-checked), or {place}"
        ) from exc
    if not isinstance(state, dict):
        raise WeightsError(
            f"COCO weights file {file} holds a {type(state).__name__}, not a "
            f"state dict: delete it and run again online, or {place}"
        )
    return state


def _load_coco(
    arch: str, *, min_size: int | None, max_size: int | None, progress: bool
) -> tuple[MaskRCNN, list[str]]:
    enum = _coco_weights(arch)
    state = _coco_state_dict(arch, progress=progress)
    categories = list(enum.meta["categories"])
    model = build_arch(arch, len(categories) - 1, min_size or 800, max_size or 1333)
    file = coco_weights_file(arch)
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        raise WeightsError(
            f"COCO weights file {file} does not fit arch {arch!r} "
            f"({_one_line(exc)}): delete it and run again online to re-download "
            f"it, or place a good copy of {enum.url} there"
        ) from exc
    if arch == "resnet50_fpn":
        # torchvision builds these weights' backbone with FrozenBatchNorm2d and eps 0
        # (``overwrite_eps(model, 0.0)`` in ``maskrcnn_resnet50_fpn``); our model is built
        # without weights, so it has BatchNorm2d, which in eval mode is the same affine map
        # once its eps matches.
        for m in model.backbone.body.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.eps = 0.0
    return model, categories


def _read_checkpoint(path: Path) -> dict:
    if not path.is_file():
        raise WeightsError(
            f"checkpoint {path} not found: pass an existing state-dict file in detector.weights"
        )
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unpickling failure means a bad file
        raise WeightsError(
            f"checkpoint {path} is not a readable torch state dict "
            f"({type(exc).__name__}): re-save it with torch.save(model.state_dict())"
        ) from exc
    if not isinstance(obj, dict):
        raise WeightsError(f"checkpoint {path} holds a {type(obj).__name__}, not a state dict")
    return obj


def load_model(
    *,
    weights: str,
    arch: str = "resnet50_fpn",
    num_classes: int | None = None,
    labels: list[str] | None = None,
    min_size: int | None = None,
    max_size: int | None = None,
    progress: bool = True,
) -> tuple[MaskRCNN, list[str]]:
    """Build a Mask R-CNN and load its weights.

    Args:
        weights: ``"coco"`` (torchvision's COCO_V1 weights of ``arch``), ``"coco_v2"``
            (those of ``resnet50_fpn_v2``), ``"demo"`` / ``"people"`` / ``"people_cars"`` (the
            checkpoints shipped in ``models/``, see ``SHIPPED_CHECKPOINTS``) or a path to a
            state-dict checkpoint.
            COCO weights come from the torch hub cache, or are downloaded into it with
            torchvision's checksum check when the file is missing and the machine is online.
            A checkpoint may be a bare state dict or ``{"model": state_dict, "arch": ...,
            "labels": [...]}`` as written by ``tools/train_demo.py`` and ``vis-pipeline train``.
        arch: one of ``ARCHS`` (ignored for ``coco_v2``, shipped models and checkpoints that
            name their arch).
        num_classes: foreground classes of a bare checkpoint (default: from ``labels``).
        labels: class labels, index 0 = first foreground class.
        min_size, max_size: the model's input resize bounds (None: the checkpoint's own,
            else torchvision's 800 / 1333).
        progress: show torch hub's download progress bar (stderr) when downloading.

    Returns:
        (model in eval mode, labels with ``labels[0] == "__background__"``).
    """
    if arch not in ARCHS:
        raise WeightsError(f"detector.arch {arch!r} is unknown: use one of {', '.join(ARCHS)}")
    if weights in COCO_WEIGHTS:
        arch = "resnet50_fpn_v2" if weights == "coco_v2" else arch
        model, categories = _load_coco(
            arch, min_size=min_size, max_size=max_size, progress=progress
        )
        return model.eval(), categories

    path = SHIPPED_CHECKPOINTS.get(weights) or Path(weights).expanduser()
    ckpt = _read_checkpoint(path)
    state = ckpt.get("model", ckpt)
    arch = ckpt.get("arch", arch)
    if "labels" in ckpt:
        labels = list(ckpt["labels"])
    min_size = min_size or int(ckpt.get("min_size", 800))
    max_size = max_size or int(ckpt.get("max_size", 1333))
    if labels is None and num_classes is None:
        num_classes = _num_classes_in(state, path)
    n = num_classes if num_classes is not None else len(labels)
    labels = labels or [f"class_{i}" for i in range(1, n + 1)]
    model = build_arch(arch, n, min_size, max_size)
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[0]
        raise WeightsError(
            f"checkpoint {path} does not fit arch {arch!r} with {n} classes "
            f"({first}): set detector.arch / detector.num_classes to match "
            "the file"
        ) from exc
    return model.eval(), ["__background__", *labels]


def set_rpn_top_n(model: MaskRCNN, pre_nms: int | None, post_nms: int | None) -> None:
    """Set the RPN's test-time proposal counts per image (None keeps the model's own)."""
    if pre_nms is not None:
        model.rpn._pre_nms_top_n["testing"] = int(pre_nms)
    if post_nms is not None:
        model.rpn._post_nms_top_n["testing"] = int(post_nms)


def _num_classes_in(state: dict, path: Path) -> int:
    key = "roi_heads.box_predictor.cls_score.weight"
    if key not in state:
        raise WeightsError(f"checkpoint {path} has no {key}: it is not a Mask R-CNN state dict")
    return int(state[key].shape[0]) - 1
