"""Mask R-CNN builders and weight loading.

Contract: ``load_model(weights=..., arch=..., ...)`` returns an eval-mode torchvision
``MaskRCNN`` and the list of its class labels, or raises ``WeightsError`` with a one-line
message naming the file and the fix. Nothing is downloaded at run time.

Architectures:
    ``resnet50_fpn`` / ``resnet50_fpn_v2``: torchvision's COCO models.
    ``tiny_fpn``: the project's small demo model (a 5-stage CNN + 64-channel FPN, trained
    from scratch on synthetic scenes by ``tools/train_demo.py``).
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from pathlib import Path

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
ARCHS = ("resnet50_fpn", "resnet50_fpn_v2", "tiny_fpn")


class WeightsError(RuntimeError):
    """Weights missing, unreadable or of the wrong architecture."""


def _conv_bn(cin: int, cout: int, stride: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1, bias=False),
                         nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class TinyFPNBackbone(nn.Module):
    """Small CNN with an FPN; returns features at strides 8, 16, 32 and 64 ('0'..'pool').

    Args:
        widths: channels of the five stages (strides 2, 4, 8, 16, 32).
        out_channels: FPN channels.
    """

    def __init__(self, *, widths: tuple[int, ...] = (24, 32, 64, 96, 128),
                 out_channels: int = 64) -> None:
        super().__init__()
        stages, cin = [], 3
        for i, w in enumerate(widths):
            stages.append(nn.Sequential(_conv_bn(cin, w, 2), _conv_bn(w, w, 1),
                                        *([_conv_bn(w, w, 1)] if i >= 2 else [])))
            cin = w
        self.stages = nn.ModuleList(stages)
        self.fpn = FeaturePyramidNetwork(list(widths[2:]), out_channels,
                                         extra_blocks=LastLevelMaxPool())
        self.out_channels = out_channels

    def forward(self, x: torch.Tensor) -> OrderedDict[str, torch.Tensor]:
        feats = OrderedDict()
        for i, stage in enumerate(self.stages):
            x = stage(x)
            if i >= 2:
                feats[str(i - 2)] = x
        return self.fpn(feats)


def build_tiny_maskrcnn(*, num_classes: int, min_size: int = 320, max_size: int = 640,
                        representation_size: int = 256, **kwargs) -> MaskRCNN:
    """The demo architecture. ``num_classes`` excludes background."""
    backbone = TinyFPNBackbone()
    c = backbone.out_channels
    anchors = AnchorGenerator(sizes=((16,), (32,), (64,), (128,)),
                              aspect_ratios=((0.5, 1.0, 2.0),) * 4)
    box_pool = MultiScaleRoIAlign(featmap_names=["0", "1", "2"], output_size=7, sampling_ratio=2)
    mask_pool = MultiScaleRoIAlign(featmap_names=["0", "1", "2"], output_size=14, sampling_ratio=2)
    return MaskRCNN(
        backbone, num_classes=None, min_size=min_size, max_size=max_size,
        rpn_anchor_generator=anchors, box_roi_pool=box_pool,
        box_head=TwoMLPHead(c * 7 * 7, representation_size),
        box_predictor=FastRCNNPredictor(representation_size, num_classes + 1),
        mask_roi_pool=mask_pool, mask_head=MaskRCNNHeads(c, (c, c, c, c), 1),
        mask_predictor=MaskRCNNPredictor(c, c, num_classes + 1),
        rpn_pre_nms_top_n_test=300, rpn_post_nms_top_n_test=150,
        rpn_pre_nms_top_n_train=600, rpn_post_nms_top_n_train=300,
        box_batch_size_per_image=128, **kwargs)


def _build(arch: str, num_classes: int, min_size: int, max_size: int) -> MaskRCNN:
    from torchvision.models.detection import maskrcnn_resnet50_fpn, maskrcnn_resnet50_fpn_v2

    if arch == "tiny_fpn":
        return build_tiny_maskrcnn(num_classes=num_classes, min_size=min_size, max_size=max_size)
    builder = maskrcnn_resnet50_fpn if arch == "resnet50_fpn" else maskrcnn_resnet50_fpn_v2
    return builder(weights=None, weights_backbone=None, num_classes=num_classes + 1,
                   min_size=min_size, max_size=max_size)


def _coco_weights(arch: str):
    from torchvision.models.detection import (
        MaskRCNN_ResNet50_FPN_V2_Weights,
        MaskRCNN_ResNet50_FPN_Weights,
    )

    if arch == "resnet50_fpn":
        return MaskRCNN_ResNet50_FPN_Weights.DEFAULT
    if arch == "resnet50_fpn_v2":
        return MaskRCNN_ResNet50_FPN_V2_Weights.DEFAULT
    raise WeightsError(f"weights 'coco' need arch resnet50_fpn or resnet50_fpn_v2, not {arch!r}")


def _read_checkpoint(path: Path) -> dict:
    if not path.is_file():
        raise WeightsError(f"checkpoint {path} not found: pass an existing state-dict file "
                           "in detector.weights")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unpickling failure means a bad file
        raise WeightsError(f"checkpoint {path} is not a readable torch state dict "
                           f"({type(exc).__name__}): re-save it with torch.save(model.state_dict())"
                           ) from exc
    if not isinstance(obj, dict):
        raise WeightsError(f"checkpoint {path} holds a {type(obj).__name__}, not a state dict")
    return obj


def load_model(*, weights: str, arch: str = "resnet50_fpn", num_classes: int | None = None,
               labels: list[str] | None = None, min_size: int | None = None,
               max_size: int | None = None) -> tuple[MaskRCNN, list[str]]:
    """Build a Mask R-CNN and load its weights; never downloads.

    Args:
        weights: ``"coco"``, ``"demo"`` or a path to a state-dict checkpoint. A checkpoint
            may be a bare state dict or ``{"model": state_dict, "arch": ..., "labels": [...]}``
            as written by ``tools/train_demo.py``.
        arch: one of ``ARCHS`` (ignored for ``demo`` and for checkpoints that name their arch).
        num_classes: foreground classes of a bare checkpoint (default: from ``labels``).
        labels: class labels, index 0 = first foreground class.
        min_size, max_size: the model's input resize bounds (None: the checkpoint's own,
            else torchvision's 800 / 1333).

    Returns:
        (model in eval mode, labels with ``labels[0] == "__background__"``).
    """
    if arch not in ARCHS:
        raise WeightsError(f"detector.arch {arch!r} is unknown: use one of {', '.join(ARCHS)}")
    if weights == "coco":
        enum = _coco_weights(arch)
        hub_dir = Path(torch.hub.get_dir()) / "checkpoints"
        file = hub_dir / Path(enum.url).name
        if not file.is_file():
            raise WeightsError(f"COCO weights {file.name} are not in the torch hub cache "
                               f"({hub_dir}) and nothing is downloaded: copy {enum.url} "
                               f"to {file}")
        model = _build(arch, len(enum.meta["categories"]) - 1, min_size or 800, max_size or 1333)
        model.load_state_dict(torch.load(file, map_location="cpu", weights_only=True))
        return model.eval(), list(enum.meta["categories"])

    path = DEMO_CHECKPOINT if weights == "demo" else Path(weights).expanduser()
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
        raise WeightsError(f"checkpoint {path} does not fit arch {arch!r} with {n} classes "
                           f"({first}): set detector.arch / detector.num_classes to match "
                           "the file") from exc
    return model.eval(), ["__background__", *labels]


def _num_classes_in(state: dict, path: Path) -> int:
    key = "roi_heads.box_predictor.cls_score.weight"
    if key not in state:
        raise WeightsError(f"checkpoint {path} has no {key}: it is not a Mask R-CNN state dict")
    return int(state[key].shape[0]) - 1
